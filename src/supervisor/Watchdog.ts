/**
 * Watchdogs: an agent that runs longer than its wall-clock limit, or writes no output for longer than its stall limit,
 * is stopped (its process group: SIGTERM, grace, SIGKILL) and recorded `timed_out` or `stalled` with the reason. The
 * decision is pure; the reconciler applies it on each pass (an orchestrator's server every
 * SPAWNKIT_RECONCILE_INTERVAL seconds, or `spawnkit reconcile`).
 */
import type { Agent } from "../domain/Agent.js"

/** Why an agent must be stopped now, if it must. */
export interface Overdue {
  readonly status: "timed_out" | "stalled"
  readonly reason: string
}

/** Decide from the agent's limits, the time now and when it last wrote output (its start when it never did). */
export const overdue = (agent: Agent, nowMs: number, lastOutputMs: number | undefined): Overdue | undefined => {
  const startedMs = Date.parse(agent.started_at)
  if (agent.timeout_seconds !== undefined && nowMs - startedMs > agent.timeout_seconds * 1000) {
    return { status: "timed_out", reason: `ran longer than its limit of ${agent.timeout_seconds} s` }
  }
  const quietSince = Math.max(startedMs, lastOutputMs ?? startedMs)
  if (agent.stall_timeout_seconds !== undefined && nowMs - quietSince > agent.stall_timeout_seconds * 1000) {
    return { status: "stalled", reason: `no new output for more than ${agent.stall_timeout_seconds} s` }
  }
  return undefined
}
