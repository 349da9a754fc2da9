/**
 * An agent's end on request: stopping its session's process tree, ending agents chosen inside one registry
 * transaction (kill, and the reconciler's watchdogs), and `kill` itself, with or without its subtree (cascade).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type Agent, type BudgetStop, isLiveStatus } from "../domain/Agent.js"
import { parseAgentId, parseTaskId } from "../domain/Decode.js"
import { AgentNotFound } from "../domain/Errors.js"
import { type AgentId, type SessionName, sessionNameOf, type TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { signalGroup, stopGroup } from "../host/Processes.js"
import { Tmux } from "../host/Tmux.js"
import { Registry } from "../registry/Registry.js"
import { removeAgentFiles } from "../spawn/AgentFiles.js"
import { isoOf, replaceAgent } from "../spawn/AgentRecords.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { settleEnded } from "../worktree/Worktrees.js"

/** What `kill` did. */
export interface KillResult {
  readonly agent_id: string
  readonly task_id: string
  /** `killed`; `cancelled` for a spawn in flight; else the status it had already ended with. */
  readonly status: string
  /** False when the agent had already ended (kill is idempotent), or another kill got there first. */
  readonly killed: boolean
  /** Descendants this kill ended or cancelled (with `cascade`), deepest first. */
  readonly cascaded: ReadonlyArray<string>
}

/**
 * Stop an agent's whole process tree: SIGTERM to the pane's process group, up to the grace period for it to go,
 * then SIGKILL; then remove its session.
 */
export const stopSession = Effect.fn("Kill.stopSession")(function*(session: SessionName) {
  const tmux = yield* Tmux
  const config = yield* SpawnkitConfig
  const pane = yield* tmux.paneState(session)
  // The pane's process leads its own process group; stopping the group reaches the agent's children too.
  if (Option.isSome(pane) && !pane.value.dead) yield* stopGroup(pane.value.panePid, config.killGraceMs)
  yield* tmux.killSession(session)
})

/** One agent a transaction ends, and why (with the figures, when a budget stopped it). */
export interface EndTarget {
  readonly agentId: AgentId
  readonly reason: string
  readonly budgetStop?: BudgetStop
}

/** What ending agents did in its transaction: agents ended, and reservations (spawns in flight) cancelled. */
export interface Ended {
  readonly ended: ReadonlyArray<Agent>
  readonly cancelled: ReadonlyArray<Agent>
}

/** How an agent ends on request: a kill, a watchdog, a spent budget. */
export type EndStatus = "killed" | "timed_out" | "stalled" | "over_budget"

/**
 * Inside a registry transaction, end the targets on `task`: each live one is recorded with `status` and its reason,
 * each reservation (a spawn in flight) is marked cancelled, so its commit fails and its spawn rolls back. The prompt
 * and MCP config files of the ended agents go here, before the transaction commits (a task with no active record
 * holds no agent files). The caller writes the returned registry, then stops the ended agents' sessions.
 */
export const endInTransaction = Effect.fnUntraced(function*(
  home: string,
  task: TaskRegistry,
  targets: ReadonlyArray<EndTarget>,
  status: EndStatus,
  now: string
) {
  let next = task
  const ended: Array<Agent> = []
  const cancelled: Array<Agent> = []
  for (const target of targets) {
    const current = next.agents.find((a) => a.id === target.agentId)
    if (current === undefined) continue
    if (current.status === "reserved" && current.cancelled === undefined) {
      const marked: Agent = { ...current, cancelled: { reason: target.reason, at: now } }
      next = replaceAgent(next, marked)
      cancelled.push(marked)
    } else if (isLiveStatus(current.status)) {
      yield* removeAgentFiles(home, task.task_id, current.id)
      const end: Agent = {
        ...current,
        status,
        completed_at: now,
        last_update: now,
        reason: target.reason,
        ...(target.budgetStop !== undefined ? { budget_stop: target.budgetStop } : {})
      }
      next = replaceAgent(next, end)
      ended.push(end)
    }
  }
  return { next, ended, cancelled }
})

/**
 * End agents chosen inside one registry transaction, on the registry as it is there: `choose` names the targets,
 * ended as endInTransaction says. Then each ended agent's process group and session are stopped, in the order chosen.
 * Recorded first, stopped second: the exit hook then finds the agents already ended and leaves them so; a stop that
 * fails half-way leaves a session no record owns, which the reconciler removes.
 */
export const endAgents = Effect.fn("Kill.endAgents")(function*(
  taskId: TaskId,
  status: EndStatus,
  choose: (task: TaskRegistry) => ReadonlyArray<EndTarget>
) {
  const registry = yield* Registry
  const config = yield* SpawnkitConfig
  const now = isoOf(yield* Clock.currentTimeMillis)
  const result = yield* registry.update(
    taskId,
    (tx) =>
      Effect.map(
        endInTransaction(config.home, tx.task, choose(tx.task), status, now),
        ({ cancelled, ended, next }) =>
          ended.length + cancelled.length === 0
            ? { result: { ended, cancelled } }
            : { result: { ended, cancelled }, next }
      )
  )
  yield* stopSessions(result.ended)
  // Their worktrees, now that nothing runs in them: removed if they hold no work, else kept.
  yield* settleEnded(taskId, result.ended)
  return result satisfies Ended
})

/**
 * Stop the sessions of agents just ended: SIGTERM to each one's process group in the order given (deepest first, as
 * chosen), all within milliseconds, then each group waited for (SIGKILL after the grace period) and its session
 * removed, all at once. A tree stops as fast as its slowest agent, not as the sum of them.
 *
 * Uninterruptible: the agents are already recorded ended, so a caller interrupted now (a supervisor shutting down, a
 * cancelled call) still stops what it recorded, within the grace period, rather than leave live agents whose records
 * say they ended until the next reconcile pass.
 */
export const stopSessions = (ended: ReadonlyArray<Agent>) =>
  Effect.uninterruptible(Effect.gen(function*() {
    const tmux = yield* Tmux
    const config = yield* SpawnkitConfig
    if (ended.length === 0) return
    // One tmux call for the panes of a whole tree (a call per agent would delay the last signal by the sum of them).
    const panes = ended.length === 1
      ? [{ session: sessionNameOf(ended[0]!.id), pane: yield* tmux.paneState(sessionNameOf(ended[0]!.id)) }]
      : yield* Effect.map(tmux.listPanes, (all) => {
        const byName = new Map(all.map((p) => [p.name, p.pane]))
        return ended.map((agent) => {
          const session = sessionNameOf(agent.id)
          return { session, pane: Option.fromUndefinedOr(byName.get(session)) }
        })
      })
    for (const { pane } of panes) {
      if (Option.isSome(pane) && !pane.value.dead) yield* signalGroup(pane.value.panePid, "SIGTERM")
    }
    yield* Effect.forEach(
      panes,
      ({ pane, session }) =>
        (Option.isSome(pane) && !pane.value.dead ? stopGroup(pane.value.panePid, config.killGraceMs) : Effect.void)
          .pipe(Effect.andThen(tmux.killSession(session))),
      { concurrency: "unbounded", discard: true }
    )
  }))

/**
 * The targets of a kill, on the registry as the transaction sees it: the agent and, with `cascade`, every agent
 * below it (reservations included: a child whose spawn is in flight is covered too), deepest first.
 */
export const killTargets = (
  agents: ReadonlyArray<Agent>,
  rootId: AgentId,
  cascade: boolean,
  reason: string
): ReadonlyArray<EndTarget> => {
  const children = new Map<string, Array<Agent>>()
  for (const a of agents) children.set(a.parent, [...(children.get(a.parent) ?? []), a])
  const seen = new Set<string>([rootId])
  const below = (id: string): Array<EndTarget> =>
    (children.get(id) ?? []).flatMap((child) => {
      // A record naming an ancestor as its child (a cycle in a hand-edited file) is visited once.
      if (seen.has(child.id)) return []
      seen.add(child.id)
      return [...below(child.id), { agentId: child.id, reason: `parent ${rootId} was killed (cascade)` }]
    })
  return [...(cascade ? below(rootId) : []), { agentId: rootId, reason }]
}

/**
 * Kill an agent (and with `cascade` every agent below it): mark it `killed`, stop its process group (SIGTERM, grace,
 * SIGKILL), remove its session, delete its prompt and MCP config; its log stays. A spawn still in flight is cancelled
 * instead (its commit fails and rolls back). Killing an agent that already ended changes nothing. The result comes
 * from the transaction that decided it: of two concurrent kills, one reports `killed: true`.
 */
export const kill = Effect.fn("Kill.kill")(function*(
  taskIdInput: string,
  agentIdInput: string,
  reason?: string,
  options: { readonly cascade?: boolean } = {}
) {
  const taskId = yield* parseTaskId(taskIdInput)
  const agentId = yield* parseAgentId(agentIdInput)
  const registry = yield* Registry
  const found = (yield* registry.read(taskId)).agents.some((a) => a.id === agentId)
  if (!found) return yield* new AgentNotFound({ taskId, agentId })
  let before: Agent | undefined
  let targets: ReadonlyArray<EndTarget> = []
  const { cancelled, ended } = yield* endAgents(taskId, "killed", (task) => {
    before = task.agents.find((a) => a.id === agentId)
    targets = before === undefined
      ? []
      : killTargets(task.agents, agentId, options.cascade ?? false, reason ?? "killed on request")
    return targets
  })
  if (before === undefined) return yield* new AgentNotFound({ taskId, agentId })
  const touched = new Set<string>([...ended, ...cancelled].map((a) => a.id))
  const rootEnded = ended.some((a) => a.id === agentId)
  const rootCancelled = cancelled.some((a) => a.id === agentId)
  return {
    agent_id: agentId,
    task_id: taskId,
    status: rootEnded ? "killed" : rootCancelled ? "cancelled" : before.status,
    killed: rootEnded || rootCancelled,
    cascaded: targets.map((t) => t.agentId).filter((id) => id !== agentId && touched.has(id))
  } satisfies KillResult
})
