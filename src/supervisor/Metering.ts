/**
 * Metering a task: one registry transaction reads what its agents' logs gained since the offsets their records
 * hold, folds it into their usage (Meter.ts), and, when that spend reaches a budget, stops every active agent under
 * it as `over_budget` in the same transaction. Then the stopped agents' sessions are stopped, deepest first, and the
 * usage limits the lines reported are recorded as walls (UsageWalls).
 *
 * Invariants:
 * - a log line is counted once: the offset read up to is written with the usage it gave, in one transaction;
 * - the decision to stop is made on the spend the transaction writes, so the crossing line itself triggers it;
 * - logs are found from validated ids (never from a stored path), and only this host's agents' logs are read;
 * - a log that cannot be read is skipped and read again next time: metering never fails a task for it.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { overBudgetTargets } from "../budget/Budget.js"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import type { TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { type AgentUsage, emptyUsage } from "../domain/Usage.js"
import { UsageWalls } from "../host/UsageWalls.js"
import { logPath } from "../host/Workspace.js"
import { endInTransaction, stopSessions } from "../lifecycle/Kill.js"
import { MAX_LINE_BYTES, meterChunk } from "../metering/Meter.js"
import { engineOfFormat, type PriceTable } from "../metering/Prices.js"
import { Registry } from "../registry/Registry.js"
import { isoOf, replaceAgent } from "../spawn/AgentRecords.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { settleEnded } from "../worktree/Worktrees.js"

/**
 * Most bytes of one log read in one transaction; a log further behind is read on by the next one. More than the
 * longest line metered, so a chunk always ends a line or shows it too long to parse (never the same bytes again).
 */
export const READ_BYTES = 2 * MAX_LINE_BYTES

/** Whether an agent's log is metered by this host: it prints a known format and runs here. */
export const isMetered = (agent: Agent, hostId: string): boolean =>
  agent.output_format !== undefined && agent.output_format !== "none" && (agent.host ?? hostId) === hostId &&
  agent.status !== "reserved" && agent.usage?.complete !== true

/** What metering a task did. */
export interface Metered {
  /** Agents stopped because a budget covering them was spent (deepest first). */
  readonly stopped: ReadonlyArray<Agent>
  /** Log bytes still unread after this pass (the next pass reads on at once). */
  readonly behind: boolean
}

/** The bytes of a log from `offset`, at most READ_BYTES, and the log's size; none when it cannot be read. */
const readFrom = (file: string, offset: number): { readonly bytes: Uint8Array; readonly size: number } | undefined => {
  let fd: number | undefined
  try {
    fd = Fs.openSync(file, "r")
    const size = Fs.fstatSync(fd).size
    if (size <= offset) return { bytes: new Uint8Array(0), size }
    const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, size - offset))
    const read = Fs.readSync(fd, buffer, 0, buffer.length, offset)
    return { bytes: buffer.subarray(0, read), size }
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) Fs.closeSync(fd)
  }
}

/** A limit an agent's output reported, for the walls. */
interface Limit {
  readonly agent: Agent
  readonly resetsAtMs: number
  readonly reason: string
}

/**
 * Meter one agent on a snapshot: its usage after the bytes its log gained (unchanged when none), the limits they
 * reported, and whether bytes remain unread.
 */
const meterAgent = (
  home: string,
  taskId: TaskId,
  agent: Agent,
  prices: PriceTable,
  nowMs: number
): { readonly usage?: AgentUsage; readonly limits: ReadonlyArray<Limit>; readonly behind: boolean } => {
  const format = agent.output_format
  const engine = format === undefined ? undefined : engineOfFormat(format)
  if (format === undefined || engine === undefined) return { limits: [], behind: false }
  const stored = agent.usage ?? emptyUsage
  const ended = !isLiveStatus(agent.status)
  const file = logPath(home, taskId, agent.id)
  let before = stored
  let read = readFrom(file, stored.log_offset)
  // A log shorter than what was read of it was cut (by the agent: it can write its own log). What it held stays
  // counted (nothing is lowered), and reading starts over at its beginning, so what is written after the cut counts
  // too: a cut hides nothing, and a line written again only adds to the agent's own spend.
  if (read !== undefined && read.size < stored.log_offset) {
    before = { ...stored, log_offset: 0, skipping: false, truncations: (stored.truncations ?? 0) + 1 }
    read = readFrom(file, 0)
  }
  if (read === undefined || read.bytes.length === 0) {
    // Nothing new (no log yet, or it is gone): an ended agent has nothing left to give.
    if (ended) return { usage: { ...before, complete: true }, limits: [], behind: false }
    return before === stored ? { limits: [], behind: false } : { usage: before, limits: [], behind: false }
  }
  const final = ended && before.log_offset + read.bytes.length >= read.size
  const { limits, usage } = meterChunk(before, read.bytes, {
    format,
    engine,
    prices,
    nowMs,
    final,
    ...(agent.claude_session_id !== undefined ? { expectedSession: agent.claude_session_id } : {})
  })
  const done = ended && usage.log_offset >= read.size
  return {
    usage: done ? { ...usage, complete: true } : usage,
    limits: limits.map((l) => ({ agent, resetsAtMs: l.resetsAtMs, reason: l.reason })),
    behind: usage.log_offset < read.size && usage.log_offset > before.log_offset
  }
}

/** Meter a task's agents in one transaction, stop what a spent budget covers, then record the walls reported. */
export const meterTask = Effect.fn("Metering.meterTask")(function*(taskId: TaskId, prices: PriceTable) {
  const registry = yield* Registry
  const config = yield* SpawnkitConfig
  const walls = yield* UsageWalls
  const result = yield* registry.update(taskId, (tx) =>
    Effect.gen(function*() {
      const nowMs = yield* Clock.currentTimeMillis
      let next: TaskRegistry = tx.task
      let grew = 0
      let behind = false
      const limits: Array<Limit> = []
      for (const agent of tx.task.agents) {
        if (!isMetered(agent, config.hostId)) continue
        const metered = meterAgent(config.home, taskId, agent, prices, nowMs)
        limits.push(...metered.limits)
        behind ||= metered.behind
        if (metered.usage === undefined) continue
        const limit = metered.limits.at(-1)
        next = replaceAgent(next, {
          ...agent,
          usage: limit === undefined
            ? metered.usage
            : { ...metered.usage, limit: { resets_at: isoOf(limit.resetsAtMs), reason: limit.reason } }
        })
        grew++
      }
      const targets = overBudgetTargets(next)
      // The time of the decision, taken after the logs were read: no line it counted was printed later.
      const decidedAt = isoOf(yield* Clock.currentTimeMillis)
      const ends = targets.length === 0
        ? { next, ended: [], cancelled: [] }
        : yield* endInTransaction(config.home, next, targets, "over_budget", decidedAt)
      const changed = grew > 0 || ends.ended.length + ends.cancelled.length > 0
      return {
        result: { stopped: ends.ended, behind, limits, at: decidedAt },
        ...(changed ? { next: ends.next } : {})
      }
    }))
  yield* stopSessions(result.stopped)
  yield* settleEnded(taskId, result.stopped)
  for (const limit of result.limits) {
    if (limit.agent.engine === undefined) continue
    yield* walls.record({
      engine: limit.agent.engine,
      resets_at: isoOf(limit.resetsAtMs),
      reason: limit.reason.slice(0, 500),
      task_id: taskId,
      agent_id: limit.agent.id,
      at: result.at
    })
  }
  return { stopped: result.stopped, behind: result.behind } satisfies Metered
})
