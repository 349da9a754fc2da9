/**
 * Waiting for agents to end, woken by the event journal instead of polled by the caller: `waitFor` returns as soon as
 * the condition holds (all of the agents ended, or any one), or at its timeout with the states as they are and
 * `timed_out: true`, so the caller can wait again.
 *
 * No change is missed: the journal's head is taken before the registry is read, and the wait follows the journal
 * from that head, so an agent that ends between the read and the follow is seen by the follow.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type Agent, isActiveStatus } from "../domain/Agent.js"
import { invalidInput, parseAgentId, parseTaskId } from "../domain/Decode.js"
import { AgentNotFound, InvalidInput } from "../domain/Errors.js"
import { LIFECYCLE_KINDS } from "../domain/Event.js"
import { type AgentId, ORCHESTRATOR, type TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { Events } from "../events/Events.js"
import { findingsPath } from "../host/Workspace.js"
import { Registry } from "../registry/Registry.js"
import { readJsonLines } from "../reports/Reports.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { exitFileNames, supervisorAlive, sweepExitFiles } from "../supervisor/ExitFiles.js"

/** A wait's timeout when none is given, in seconds. */
export const DEFAULT_WAIT_SECONDS = 300
/** The longest wait one call may ask for, in seconds (wait again for longer). */
export const MAX_WAIT_SECONDS = 3600
/** Most agents one wait may name. */
export const MAX_WAIT_AGENTS = 1000
/** Findings returned per agent (its newest). */
export const WAIT_FINDINGS = 20

/** What to wait for. */
export const WaitRequest = Schema.Struct({
  taskId: Schema.String,
  /** These agents; or, without them, every agent below `parent` (default: the whole task). */
  agentIds: Schema.optionalKey(Schema.Array(Schema.String).check(Schema.isMaxLength(MAX_WAIT_AGENTS))),
  parent: Schema.optionalKey(Schema.String),
  /** `all` (default): until every one has ended; `any`: until one has. */
  mode: Schema.optionalKey(Schema.Literals(["all", "any"])),
  timeoutSeconds: Schema.optionalKey(
    Schema.Number.check(Schema.isFinite(), Schema.isBetween({ minimum: 0, maximum: MAX_WAIT_SECONDS }))
  )
})
/** @see WaitRequest */
export type WaitRequest = typeof WaitRequest.Type

/** One waited-for agent as the wait returns it. */
export interface WaitedAgent {
  readonly agent_id: string
  readonly agent_type: string
  readonly parent: string
  readonly status: string
  readonly ended: boolean
  readonly exit_code?: number
  readonly reason?: string
  readonly progress?: number
  readonly last_lines: ReadonlyArray<string>
  readonly findings: ReadonlyArray<unknown>
}

/** What a wait returns. */
export interface WaitResult {
  readonly task_id: string
  readonly mode: "all" | "any"
  /** The condition held when the wait returned. */
  readonly satisfied: boolean
  /** The wait ran out of time first (not an error: wait again). */
  readonly timed_out: boolean
  readonly agents: ReadonlyArray<WaitedAgent>
}

/** Progress of a wait: how many of the agents have ended. */
export type OnProgress = (ended: number, total: number) => Effect.Effect<void>

/** Events that can change whether a wait holds: an agent's end, or a new agent joining a waited subtree. */
const RELEVANT = LIFECYCLE_KINDS

/** The agents below `parent` (all of the task's for the orchestrator), in record order. */
export const subtreeOf = (agents: ReadonlyArray<Agent>, parent: string): ReadonlyArray<Agent> => {
  const below = new Set<string>([parent])
  // Records are appended as agents spawn, so a parent precedes its children; passes repeat until nothing is added,
  // which also covers stored records in another order (and ends on a cycle of stored parents).
  for (let grew = true; grew;) {
    grew = false
    for (const agent of agents) {
      if (!below.has(agent.id) && below.has(agent.parent)) {
        below.add(agent.id)
        grew = true
      }
    }
  }
  return agents.filter((a) => a.id !== parent && below.has(a.id))
}

/** Whether a wait holds over these agents: every one ended (`all`; vacuously for none), or any one (`any`). */
export const holds = (targets: ReadonlyArray<Agent>, mode: "all" | "any"): boolean => {
  if (targets.length === 0) return true
  const ended = targets.filter((a) => !isActiveStatus(a.status)).length
  return mode === "all" ? ended === targets.length : ended > 0
}

const decodeRequest = (input: unknown) =>
  Schema.decodeUnknownEffect(WaitRequest)(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((e) => invalidInput(e, "wait"))
  )

/** The waited-for agents of a task as it is now. */
const targetsIn = (
  task: TaskRegistry,
  agentIds: ReadonlyArray<AgentId> | undefined,
  parent: AgentId
): ReadonlyArray<Agent> =>
  agentIds !== undefined
    ? task.agents.filter((a) => agentIds.includes(a.id))
    : subtreeOf(task.agents.filter((a) => a.status !== "reserved"), parent)

/** Check the request's agents against the task: each named agent, and the parent, must be in it. */
const checkAgents = (task: TaskRegistry, agentIds: ReadonlyArray<AgentId> | undefined, parent: AgentId) =>
  Effect.gen(function*() {
    const ids = new Set(task.agents.map((a) => a.id as string))
    for (const id of agentIds ?? []) {
      if (!ids.has(id)) return yield* new AgentNotFound({ taskId: task.task_id, agentId: id })
    }
    if (parent !== ORCHESTRATOR && !ids.has(parent)) {
      return yield* new AgentNotFound({ taskId: task.task_id, agentId: parent })
    }
  })

const describe = (home: string, taskId: TaskId) => (agent: Agent) =>
  readJsonLines(findingsPath(home, taskId, agent.id), WAIT_FINDINGS).pipe(
    Effect.map((findings): WaitedAgent => ({
      agent_id: agent.id,
      agent_type: agent.type,
      parent: agent.parent,
      status: agent.status,
      ended: !isActiveStatus(agent.status),
      ...(agent.exit !== undefined ? { exit_code: agent.exit.exit_code } : {}),
      ...(agent.reason !== undefined ? { reason: agent.reason } : {}),
      ...(agent.progress !== undefined ? { progress: agent.progress } : {}),
      last_lines: agent.exit?.last_lines ?? [],
      findings
    }))
  )

/** Wait for agents of a task to end; see WaitRequest. */
/**
 * While nobody supervises the home, the waiter records what it is owed itself: an agent runner that saw a live
 * supervisor told tmux's pane-died hook to do nothing, and a supervisor killed before it recorded that exit leaves only
 * the exit file. Every few seconds, when no supervisor is alive, the exit files left are handled (idempotently, as a
 * reconcile pass would); each recorded exit wakes the wait through the journal. Never ends by itself.
 */
const withoutSupervisor = (home: string) =>
  Effect.gen(function*() {
    const names = yield* exitFileNames(home)
    // Whole (one attempt per file): a wait that returns meanwhile leaves no file recorded but not yet removed.
    if (names.length > 0 && !supervisorAlive(names)) yield* Effect.uninterruptible(sweepExitFiles(home))
  }).pipe(
    Effect.repeat(Schedule.spaced(UNSUPERVISED_SWEEP)),
    Effect.andThen(Effect.never)
  )

/** How often a waiter looks for exits nobody supervises. */
const UNSUPERVISED_SWEEP = Duration.seconds(2)

export const waitFor = Effect.fn("Wait.waitFor")(function*(input: unknown, onProgress?: OnProgress) {
  const request = yield* decodeRequest(input)
  const taskId = yield* parseTaskId(request.taskId)
  if (request.agentIds !== undefined && request.parent !== undefined) {
    return yield* new InvalidInput({ field: "agent_ids", reason: "give agent_ids or parent, not both" })
  }
  const agentIds = request.agentIds === undefined
    ? undefined
    : yield* Effect.forEach(request.agentIds, (id) => parseAgentId(id, "agent_ids"))
  const parent = request.parent === undefined ? ORCHESTRATOR : yield* parseAgentId(request.parent, "parent")
  const mode = request.mode ?? "all"
  const seconds = request.timeoutSeconds ?? DEFAULT_WAIT_SECONDS
  const events = yield* Events
  const registry = yield* Registry
  const { home } = yield* SpawnkitConfig
  const from = yield* events.head
  const first = yield* registry.read(taskId)
  yield* checkAgents(first, agentIds, parent)
  const report = (task: TaskRegistry) => {
    const targets = targetsIn(task, agentIds, parent)
    const ended = targets.filter((a) => !isActiveStatus(a.status)).length
    return (onProgress ?? (() => Effect.void))(ended, targets.length).pipe(Effect.as(task))
  }
  yield* report(first)
  const last = holds(targetsIn(first, agentIds, parent), mode) ? Option.some(first) : yield* events.stream({
    since: from,
    taskId,
    follow: true
  }).pipe(
    Stream.filter((e) => RELEVANT.has(e.kind)),
    Stream.mapEffect(() => registry.read(taskId).pipe(Effect.flatMap(report))),
    Stream.takeUntil((task) => holds(targetsIn(task, agentIds, parent), mode)),
    Stream.runLast,
    Effect.timeoutOption(Duration.seconds(seconds)),
    Effect.map(Option.flatten),
    Effect.raceFirst(withoutSupervisor(home))
  )
  const task = Option.isSome(last) ? last.value : yield* registry.read(taskId)
  const targets = targetsIn(task, agentIds, parent)
  const satisfied = holds(targets, mode)
  return {
    task_id: taskId,
    mode,
    satisfied,
    timed_out: !satisfied,
    agents: yield* Effect.forEach(targets, describe(home, taskId))
  } satisfies WaitResult
})
