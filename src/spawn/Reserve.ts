/**
 * The first step of a spawn: reserve a slot. Admission's decision and the reservation are one registry transaction
 * (locks are held for it only); the reservation is a resource of the spawn's scope, rolled back when the spawn fails
 * before its commit.
 *
 * Invariant: a spawn stays in flight (InFlight.ts) until its reservation is committed or its rollback is over, and a
 * rollback that cannot be written is never dropped: it is retried, then handed to Rollbacks, which keeps retrying in
 * the background.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { randomBytes, randomUUID } from "node:crypto"
import { decide, waitingEntries } from "../admission/Admission.js"
import { remainingUsd } from "../budget/Budget.js"
import { type Agent, type Engine, isActiveStatus, type QueueEntry } from "../domain/Agent.js"
import {
  type AdmissionRejection,
  AgentNotFound,
  BrokerUnavailable,
  NotResumable,
  QueueTimedOut,
  type RegistryError,
  type UsageLimited
} from "../domain/Errors.js"
import { ENDING_KINDS, type EventKind } from "../domain/Event.js"
import { type AgentId, ORCHESTRATOR, type TaskId } from "../domain/Ids.js"
import { DEFAULT_QUEUE_SECONDS, type SpawnRequest } from "../domain/SpawnRequest.js"
import { activeCount, type TaskRegistry } from "../domain/Task.js"
import { Events } from "../events/Events.js"
import { liveBroker } from "../host/Brokers.js"
import { mcpAccessOf, outputFormatOf } from "../host/Engines.js"
import { processAlive } from "../host/Processes.js"
import { UsageWalls } from "../host/UsageWalls.js"
import { Registry } from "../registry/Registry.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { ownerOf } from "../worktree/Plan.js"
import { freshAgentId, isoOf, removeAgent, reservedAgent, sha256 } from "./AgentRecords.js"
import type { Handover } from "./Handover.js"
import { beginSpawn, endSpawn } from "./InFlight.js"
import { Rollbacks } from "./Rollbacks.js"

/** What reserving gave: the agent an idempotency key already names, or a new reservation. */
export type Reservation =
  | { readonly _tag: "Existing"; readonly agent: Agent }
  | {
    readonly _tag: "Reserved"
    readonly agent: Agent
    readonly engine: Engine
    /** The task as the reserving transaction saw it. */
    readonly task: TaskRegistry
    /** The agent's secret (only its sha256 is on the record). */
    readonly secret: string
    /** The broker's MCP endpoint the agent reaches spawnkit through; none for an agent that takes no MCP server. */
    readonly broker: string | undefined
    /** What it may still spend in USD under the cost budgets covering it, as admission saw them; none if none. */
    readonly maxBudgetUsd?: number | undefined
  }

/** A new per-agent secret: 32 random bytes, hex. */
const newSecret = () => randomBytes(32).toString("hex")

/**
 * Reserve a slot for the request, as a resource of the spawn's scope: released (the reservation rolled back) unless
 * handed over at the commit.
 */
export const reserveSlot = Effect.fnUntraced(function*(
  request: SpawnRequest,
  handover: Handover,
  resume?: ResumeOf
) {
  const config = yield* SpawnkitConfig
  const taskId = request.taskId
  // The id of the reservation being written: a write that fails after the file was replaced (e.g. the directory
  // fsync) still leaves the reservation on disk, and acquireRelease runs no release for a failed acquire.
  const written = yield* Ref.make<AgentId | undefined>(undefined)
  // Added first, so it runs last: the spawn stays in flight until its rollback (or commit) is over.
  yield* Effect.addFinalizer(() =>
    Effect.flatMap(Ref.get(written), (id) => Effect.sync(() => id !== undefined && endSpawn(config.home, taskId, id)))
  )
  const reserve = (line?: Line) =>
    handover.resource(
      admit(request, written, line, resume).pipe(
        Effect.onError(() =>
          Effect.flatMap(Ref.get(written), (id) => (id === undefined ? Effect.void : rollback(taskId, id)))
        )
      ),
      (r) => (r._tag === "Reserved" ? rollback(taskId, r.agent.id) : Effect.void)
    )
  if (request.queue !== true) return (yield* reserve()) as Reservation
  return yield* waitInLine(request, reserve)
})

/** A spawn that resumes an ended agent's conversation: which agent, and its conversation id. */
export interface ResumeOf {
  readonly from: AgentId
  readonly sessionId: string
}

/** Statuses of an agent whose conversation may be resumed: it ended without completing. */
const RESUMABLE: ReadonlySet<Agent["status"]> = new Set([
  "failed",
  "killed",
  "lost",
  "timed_out",
  "stalled",
  "over_budget",
  "error",
  "terminated"
])

/**
 * Whether the agent a resume names may be resumed, on the records as they are under the lock: it ended without
 * completing, and no other agent resuming it, or continuing its conversation, holds a slot. Returns its worktree for
 * the new record, if it had one.
 */
const checkResumable = (task: TaskRegistry, resume: ResumeOf) => {
  const old = task.agents.find((a) => a.id === resume.from)
  const refuse = (reason: string) =>
    Effect.fail(new NotResumable({ taskId: task.task_id, agentId: resume.from, reason }))
  if (old === undefined) return Effect.fail(new AgentNotFound({ taskId: task.task_id, agentId: resume.from }))
  if (!RESUMABLE.has(old.status)) {
    return refuse(
      isActiveStatus(old.status)
        ? `it is ${old.status}; only an agent that ended (failed, killed, lost, timed_out, stalled, over_budget) can be`
        : `it ${old.status}; spawn a new agent for new work`
    )
  }
  const other = task.agents.find((a) => a.resumed_from === resume.from && isActiveStatus(a.status))
  if (other !== undefined) return refuse(`agent ${other.id} resumes it already and is ${other.status}`)
  // Further down a chain of resumes (an agent resuming the one that resumed it), the same conversation may be running.
  const continuing = task.agents.find((a) => a.session_id === resume.sessionId && isActiveStatus(a.status))
  if (continuing !== undefined) {
    return refuse(`agent ${continuing.id} continues its conversation already and is ${continuing.status}`)
  }
  const owner = old.worktree === undefined ? undefined : ownerOf(task, old.worktree.id)
  if (owner !== undefined && owner.id !== old.id && isActiveStatus(owner.status)) {
    return refuse(`its worktree is in use by agent ${owner.id} (${owner.status})`)
  }
  return Effect.succeed(old.worktree === undefined ? undefined : { ...old.worktree, state: "active" as const })
}

/** How often a queued spawn looks again when no event woke it. */
const QUEUE_RETRY_MS = 1000
/** Events after which a queued spawn may have its turn. */
const FREES_A_SLOT: ReadonlySet<EventKind> = new Set([...ENDING_KINDS, "dequeued"])

/** A queued spawn's standing: when it gives up, and its entry once it has one. */
interface Line {
  readonly deadlineMs: number
  readonly entry?: QueueEntry
}

/** A reserving transaction's answer to a queued spawn that must wait: its entry in the queue. */
interface Queued {
  readonly _tag: "Queued"
  readonly entry: QueueEntry
}

/**
 * A queued spawn: try to reserve; while the only refusal is a concurrency limit, keep a place in the task's queue and
 * try again on the next event (a slot freed, a waiter ahead gone) until admitted or the deadline. The wait between
 * tries is interruptible; the place in line leaves with the spawn's scope, whatever ends it, unless admitted.
 */
const waitInLine = <E, R>(
  request: SpawnRequest,
  reserve: (line: Line) => Effect.Effect<Reservation | Queued, E, R>
) =>
  Effect.gen(function*() {
    const events = yield* Events
    const registry = yield* Registry
    const seconds = request.queueTimeoutSeconds ?? DEFAULT_QUEUE_SECONDS
    const deadlineMs = (yield* Clock.currentTimeMillis) + seconds * 1000
    let entry: QueueEntry | undefined
    let admitted = false
    yield* Effect.addFinalizer(() =>
      entry === undefined || admitted ? Effect.void : leaveQueue(registry, request.taskId, entry.id)
    )
    let head = yield* events.head
    for (;;) {
      const result = yield* reserve(entry === undefined ? { deadlineMs } : { deadlineMs, entry })
      if (result._tag !== "Queued") {
        admitted = true
        return result
      }
      entry = result.entry
      // Wait, without the lock, until this spawn is at the head of the line with a slot free in its task: only then
      // is the admitting transaction worth taking (the others in line would only queue on the lock behind it).
      for (;;) {
        const left = deadlineMs - (yield* Clock.currentTimeMillis)
        if (left <= 0) return yield* new QueueTimedOut({ taskId: request.taskId, waitedSeconds: seconds })
        // Woken by a slot freed or a waiter ahead gone; a slot freed without an event (a spawn rolled back) is found
        // by the look every QUEUE_RETRY_MS.
        yield* events.stream({ since: head, follow: true }).pipe(
          Stream.filter((e) => FREES_A_SLOT.has(e.kind)),
          Stream.take(1),
          Stream.runDrain,
          Effect.timeoutOption(Duration.millis(Math.min(left, QUEUE_RETRY_MS)))
        )
        head = yield* events.head
        if (yield* mayGo(registry, request.taskId, entry.id)) break
      }
    }
  })

/**
 * Whether a waiting spawn may have its turn, from a read without the lock: its entry is first among those still
 * waiting and its task has a slot free (or the read failed, or its entry is gone: the transaction decides).
 */
const mayGo = (registry: Registry["Service"], taskId: TaskId, entryId: AgentId) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const task = yield* registry.read(taskId)
    const nowMs = yield* Clock.currentTimeMillis
    const waiting = waitingEntries(task, nowMs).filter((e) => stillWaiting(e, config.hostId))
    const place = waiting.findIndex((e) => e.id === entryId)
    return place < 0 || (place === 0 && activeCount(task.agents) < task.max_concurrent)
  }).pipe(Effect.orElseSucceed(() => true))

/** An entry whose spawner may still come for it: another host's, this process's, or one whose process is alive. */
const stillWaiting = (e: QueueEntry, hostId: string) =>
  e.owner_host !== hostId || e.owner_pid === process.pid || processAlive(e.owner_pid)

/** Take a waiting spawn's entry out of the queue (its spawn failed, timed out or was cancelled). */
const leaveQueue = (registry: Registry["Service"], taskId: TaskId, entryId: AgentId) =>
  registry.update(taskId, (tx) =>
    Effect.succeed(
      (tx.task.queue ?? []).some((e) => e.id === entryId)
        ? { result: undefined, next: { ...tx.task, queue: (tx.task.queue ?? []).filter((e) => e.id !== entryId) } }
        : { result: undefined }
    )).pipe(
      Effect.catch((e) =>
        Effect.logWarning(`queue entry ${entryId} of ${taskId} left for the reconciler: ${e.message}`)
      )
    )

/**
 * The reserving transaction: admission decides on the registry as it is under the lock, and the record is written.
 * A queued spawn (`line`) that only a concurrency limit refuses gets, or keeps, its entry in the queue instead; once
 * admitted, its entry becomes its reservation (same id) in the same write.
 */
const admit = Effect.fnUntraced(function*(
  request: SpawnRequest,
  written: Ref.Ref<AgentId | undefined>,
  line?: Line,
  resume?: ResumeOf
) {
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const nowMs = yield* Clock.currentTimeMillis
  const suffix = yield* Random.nextIntBetween(0, 0xffffffff)
  const secret = newSecret()
  const sessionUuid = randomUUID()
  const parent = request.parent ?? ORCHESTRATOR
  const promptSha256 = sha256(request.prompt)
  const walls = yield* UsageWalls
  return yield* registry.update<
    Reservation | Queued,
    AdmissionRejection | UsageLimited | RegistryError | NotResumable | AgentNotFound | BrokerUnavailable
  >(
    request.taskId,
    (tx) =>
      Effect.gen(function*() {
        const engine: Engine = request.engine ?? (tx.task.engine as Engine | undefined) ?? config.defaultEngine
        yield* walls.refuseIfWalled(engine, nowMs)
        const globalActive = yield* tx.globalActive
        // Entries past their deadline have given up, and entries of this host whose spawner is gone never will go:
        // both are dropped by this write, whatever it is, so a dead waiter never holds up the line behind it.
        const waiting = waitingEntries(tx.task, nowMs).filter((e) => stillWaiting(e, config.hostId))
        const mine = line?.entry !== undefined && waiting.some((e) => e.id === line.entry!.id) ? line.entry : undefined
        const decision = decide(
          { task: { ...tx.task, queue: waiting }, globalActive, globalMaxConcurrent: config.globalMaxConcurrent },
          {
            agentType: request.agentType,
            parent,
            promptSha256,
            engine,
            idempotencyKey: request.idempotencyKey,
            queueEntryId: mine?.id
          },
          nowMs
        )
        if (Result.isFailure(decision)) {
          if (line === undefined || !waitsForSlot(decision.failure)) return yield* Effect.fail(decision.failure)
          if (mine !== undefined) return { result: { _tag: "Queued", entry: mine } as Queued }
          const id = freshAgentId(tx.task, request.agentType, nowMs, suffix)
          const entry = queueEntry(request, id, { parent, promptSha256, hostId: config.hostId, nowMs, line })
          return { result: { _tag: "Queued", entry } as Queued, next: { ...tx.task, queue: [...waiting, entry] } }
        }
        if (decision.success._tag === "Existing") {
          return { result: { _tag: "Existing", agent: decision.success.agent } as Reservation }
        }
        const agentId = mine?.id ?? freshAgentId(tx.task, request.agentType, nowMs, suffix)
        const worktree = resume !== undefined
          ? yield* checkResumable(tx.task, resume)
          : ownWorktree(request, tx.task, agentId)
        const broker = yield* brokerFor(engine, worktree !== undefined, config.home)
        const agent = reservedAgent({
          agentId,
          request,
          parent,
          depth: decision.success.depth,
          engine,
          task: tx.task,
          home: config.home,
          hostId: config.hostId,
          ownerPid: process.pid,
          nowMs,
          promptSha256,
          secretSha256: sha256(secret),
          sessionUuid,
          outputFormat: outputFormatOf(engine, config.agentFormat),
          worktree,
          resume
        })
        yield* Ref.set(written, agent.id)
        beginSpawn(config.home, request.taskId, agent.id)
        return reserved(tx.task, agent, { engine, secret, broker }, waiting, request.maxCostUsd)
      })
  )
})

/** The broker an agent reaches spawnkit through over MCP, or none for one that takes no MCP server; else refused. */
const brokerFor = (
  engine: Engine,
  isolated: boolean,
  home: string
): Effect.Effect<string | undefined, BrokerUnavailable> => {
  if (mcpAccessOf(engine, isolated) === "none") return Effect.succeed(undefined)
  const broker = liveBroker(home)
  return broker === undefined ? Effect.fail(new BrokerUnavailable({ engine, home })) : Effect.succeed(broker)
}

/** The reserving transaction's answer: the reservation, and the registry with its record (its queue entry gone). */
const reserved = (
  task: TaskRegistry,
  agent: Agent,
  launch: { readonly engine: Engine; readonly secret: string; readonly broker: string | undefined },
  waiting: ReadonlyArray<QueueEntry>,
  maxCostUsd: number | undefined
) => {
  const queue = waiting.filter((e) => e.id !== agent.id)
  const maxBudgetUsd = remainingUsd(task, agent.parent, maxCostUsd)
  return {
    result: { _tag: "Reserved", agent, task, maxBudgetUsd, ...launch } as Reservation,
    next: { ...task, agents: [...task.agents, agent], ...(task.queue !== undefined ? { queue } : {}) }
  }
}

/** A new agent's worktree record, with isolation worktree (the spawn's, else its task's): made by its spawn. */
const ownWorktree = (request: SpawnRequest, task: TaskRegistry, agentId: AgentId) =>
  (request.isolation ?? task.isolation) === "worktree" ? { id: agentId, state: "active" as const } : undefined

/** A queued spawn's entry in its task's line. */
const queueEntry = (
  request: SpawnRequest,
  id: AgentId,
  at: {
    readonly parent: AgentId
    readonly promptSha256: string
    readonly hostId: string
    readonly nowMs: number
    readonly line: Line
  }
): QueueEntry => ({
  id,
  type: request.agentType,
  parent: at.parent,
  prompt_sha256: at.promptSha256,
  ...(request.idempotencyKey !== undefined ? { idempotency_key: request.idempotencyKey } : {}),
  owner_pid: process.pid,
  owner_host: at.hostId,
  queued_at: isoOf(at.nowMs),
  deadline: isoOf(at.line.deadlineMs)
})

/** Whether a refusal is one a queued spawn waits out: a concurrency limit, which frees as agents end. */
const waitsForSlot = (failure: AdmissionRejection) =>
  failure._tag === "LimitReached" && (failure.limit === "max_concurrent" || failure.limit === "global_max_concurrent")

/**
 * Undo a reservation. The reservation goes, and so does a record that already says `running` without `committed`
 * set: it comes from a commit whose write failed after replacing the file, and the spawn reports failure. Nothing
 * else: the record may have ended since (a kill, the exit hook), and a task gone is nothing to undo.
 */
const undoReservation = (registry: Registry["Service"], taskId: TaskId, agentId: AgentId) =>
  registry.update(taskId, (tx) => {
    const current = tx.task.agents.find((a) => a.id === agentId)
    return Effect.succeed(
      current !== undefined && (current.status === "reserved" || current.status === "running")
        ? { result: undefined, next: removeAgent(tx.task, agentId) }
        : { result: undefined }
    )
  }).pipe(Effect.catchTag("TaskNotFound", () => Effect.void))

/** Roll a reservation back: a few quick retries, then the background retries of Rollbacks. */
const rollback = (taskId: TaskId, agentId: AgentId) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const rollbacks = yield* Rollbacks
    const undo = undoReservation(registry, taskId, agentId)
    yield* undo.pipe(
      Effect.retry({ schedule: Schedule.exponential("20 millis"), times: 4 }),
      Effect.catch((e) =>
        Effect.logError(
          `could not roll back reservation ${agentId} of ${taskId} (${e.message}); retrying in the background`
        )
          .pipe(Effect.andThen(rollbacks.keepTrying(`rollback of reservation ${agentId} of ${taskId}`, undo)))
      )
    )
  })
