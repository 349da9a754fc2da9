/**
 * Admission policy: a pure decision over one consistent registry snapshot. No I/O, no clock; the caller passes `now`.
 *
 * Invariant: reservations count against every limit, so concurrent spawns that each see the others' reservations can
 * never overshoot, however they interleave.
 */
import * as Result from "effect/Result"
import { budgetRefusal } from "../budget/Budget.js"
import { type Agent, isActiveStatus, isLiveStatus, type QueueEntry } from "../domain/Agent.js"
import {
  type AdmissionRejection,
  DepthExceeded,
  DuplicateAgent,
  IdempotencyConflict,
  LimitReached,
  ParentNotActive,
  ParentNotFound,
  RateLimited
} from "../domain/Errors.js"
import { ORCHESTRATOR } from "../domain/Ids.js"
import { limitsOf, type TaskRegistry } from "../domain/Task.js"

/** Length of the spawn-rate window. */
export const RATE_WINDOW_MS = 60_000

/** What admission sees: the task's registry and the number of slots held across all tasks. */
export interface AdmissionSnapshot {
  readonly task: TaskRegistry
  readonly globalActive: number
  readonly globalMaxConcurrent: number
}

/** The parts of a spawn request admission decides on. */
export interface AdmissionRequest {
  readonly agentType: string
  readonly parent: string
  /** sha256 of the prompt: duplicates and idempotent retries compare prompts by hash. */
  readonly promptSha256: string
  readonly engine: string
  readonly idempotencyKey?: string | undefined
  /** The request's own queue entry, when it is a queued spawn waiting its turn. */
  readonly queueEntryId?: string | undefined
}

/** The queue entries still waiting at `nowMs` (an entry past its deadline has given up). */
export const waitingEntries = (task: TaskRegistry, nowMs: number): ReadonlyArray<QueueEntry> =>
  (task.queue ?? []).filter((e) => Date.parse(e.deadline) > nowMs)

/**
 * How many waiting spawns come before this request: the entries before its own, or every entry for a request that
 * has none. Invariant: a slot goes to the oldest waiting spawn first: a waiting spawn is admitted only at the head of
 * the line, and any other request counts the waiting ones as taking the next slots.
 */
export const queuedAhead = (waiting: ReadonlyArray<QueueEntry>, entryId: string | undefined): number => {
  const mine = entryId === undefined ? -1 : waiting.findIndex((e) => e.id === entryId)
  return mine < 0 ? waiting.length : mine
}

/** Admit a new agent at `depth`, or return the agent an idempotency key already names. */
export type Admission =
  | { readonly _tag: "Admit"; readonly depth: number }
  | { readonly _tag: "Existing"; readonly agent: Agent }

/** Same parent, type and prompt: what makes a second active agent a duplicate, whatever its engine. */
const sameWork = (agent: Agent, request: AdmissionRequest): boolean =>
  agent.type === request.agentType &&
  agent.parent === request.parent &&
  agent.prompt_sha256 === request.promptSha256

/** Same work on the same engine: what an idempotent retry must repeat exactly. */
const sameSpawn = (agent: Agent, request: AdmissionRequest): boolean =>
  sameWork(agent, request) && (agent.engine === undefined || agent.engine === request.engine)

/** Decide a spawn request against one snapshot taken inside the registry transaction. */
export const decide = (
  snapshot: AdmissionSnapshot,
  request: AdmissionRequest,
  nowMs: number
): Result.Result<Admission, AdmissionRejection> => {
  const { task } = snapshot
  const taskId = task.task_id
  const limits = limitsOf(task)
  const agents = task.agents

  if (request.idempotencyKey !== undefined) {
    const previous = agents.find((a) => a.idempotency_key === request.idempotencyKey)
    if (previous !== undefined) {
      return sameSpawn(previous, request)
        ? Result.succeed({ _tag: "Existing", agent: previous })
        : Result.fail(new IdempotencyConflict({ key: request.idempotencyKey, existingAgentId: previous.id, taskId }))
    }
  }

  let depth = 1
  if (request.parent !== ORCHESTRATOR) {
    const parent = agents.find((a) => a.id === request.parent)
    if (parent === undefined) return Result.fail(new ParentNotFound({ parent: request.parent, taskId }))
    if (!isLiveStatus(parent.status)) {
      return Result.fail(new ParentNotActive({ parent: request.parent, status: parent.status, taskId }))
    }
    depth = parent.depth + 1
  }
  if (depth > limits.max_depth) return Result.fail(new DepthExceeded({ depth, max: limits.max_depth, taskId }))
  const spent = budgetRefusal(task, request.parent)
  if (spent !== undefined) return Result.fail(spent)

  const duplicate = agents.find((a) => isActiveStatus(a.status) && sameWork(a, request))
  if (duplicate !== undefined) return Result.fail(new DuplicateAgent({ existingAgentId: duplicate.id, taskId }))
  const waiting = waitingEntries(task, nowMs)
  const twin = waiting.find((e) =>
    e.id !== request.queueEntryId &&
    ((e.type === request.agentType && e.parent === request.parent && e.prompt_sha256 === request.promptSha256) ||
      (request.idempotencyKey !== undefined && e.idempotency_key === request.idempotencyKey))
  )
  if (twin !== undefined) return Result.fail(new DuplicateAgent({ existingAgentId: twin.id, taskId }))
  const ahead = queuedAhead(waiting, request.queueEntryId)

  if (agents.length >= limits.max_agents) {
    return Result.fail(
      new LimitReached({ limit: "max_agents", current: agents.length, max: limits.max_agents, taskId })
    )
  }
  let active = 0
  let activeChildren = 0
  const recentStarts: Array<number> = []
  for (const a of agents) {
    if (isActiveStatus(a.status)) {
      active++
      if (a.parent === request.parent) activeChildren++
    }
    const startedMs = Date.parse(a.started_at)
    if (startedMs > nowMs - RATE_WINDOW_MS) recentStarts.push(Math.min(startedMs, nowMs))
  }
  // A waiting spawn goes only from the head of the line (strict first come, first served); anyone else counts those
  // waiting as taking the next slots.
  const notYourTurn = request.queueEntryId !== undefined && ahead > 0
  if (notYourTurn || active + ahead >= limits.max_concurrent) {
    return Result.fail(
      new LimitReached({ limit: "max_concurrent", current: active, max: limits.max_concurrent, taskId })
    )
  }
  if (snapshot.globalActive + ahead >= snapshot.globalMaxConcurrent) {
    return Result.fail(
      new LimitReached({
        limit: "global_max_concurrent",
        current: snapshot.globalActive,
        max: snapshot.globalMaxConcurrent,
        taskId
      })
    )
  }
  if (request.parent !== ORCHESTRATOR && activeChildren >= limits.max_children_per_parent) {
    return Result.fail(
      new LimitReached({
        limit: "max_children_per_parent",
        current: activeChildren,
        max: limits.max_children_per_parent,
        taskId
      })
    )
  }
  if (recentStarts.length >= limits.max_spawns_per_minute) {
    // A slot opens when enough of the recent spawns have left the window to bring the count below the limit.
    recentStarts.sort((a, b) => a - b)
    const freeing = recentStarts[recentStarts.length - limits.max_spawns_per_minute] ?? nowMs
    return Result.fail(
      new RateLimited({
        taskId,
        max: limits.max_spawns_per_minute,
        windowMs: RATE_WINDOW_MS,
        retryAfterMs: Math.max(1, freeing + RATE_WINDOW_MS - nowMs)
      })
    )
  }
  return Result.succeed({ _tag: "Admit", depth })
}
