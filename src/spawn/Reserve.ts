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
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import { randomBytes, randomUUID } from "node:crypto"
import { decide } from "../admission/Admission.js"
import type { Agent, Engine } from "../domain/Agent.js"
import type { AdmissionRejection, RegistryError } from "../domain/Errors.js"
import { type AgentId, ORCHESTRATOR, type TaskId } from "../domain/Ids.js"
import type { SpawnRequest } from "../domain/SpawnRequest.js"
import type { TaskRegistry } from "../domain/Task.js"
import { Registry } from "../registry/Registry.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { freshAgentId, removeAgent, reservedAgent, sha256 } from "./AgentRecords.js"
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
  }

/** A new per-agent secret: 32 random bytes, hex. */
const newSecret = () => randomBytes(32).toString("hex")

/**
 * Reserve a slot for the request, as a resource of the spawn's scope: released (the reservation rolled back) unless
 * handed over at the commit.
 */
export const reserveSlot = Effect.fnUntraced(function*(request: SpawnRequest, handover: Handover) {
  const config = yield* SpawnkitConfig
  const taskId = request.taskId
  // The id of the reservation being written: a write that fails after the file was replaced (e.g. the directory
  // fsync) still leaves the reservation on disk, and acquireRelease runs no release for a failed acquire.
  const written = yield* Ref.make<AgentId | undefined>(undefined)
  // Added first, so it runs last: the spawn stays in flight until its rollback (or commit) is over.
  yield* Effect.addFinalizer(() =>
    Effect.flatMap(Ref.get(written), (id) => Effect.sync(() => id !== undefined && endSpawn(config.home, taskId, id)))
  )
  return yield* handover.resource(
    admit(request, written).pipe(
      Effect.onError(() =>
        Effect.flatMap(Ref.get(written), (id) => (id === undefined ? Effect.void : rollback(taskId, id)))
      )
    ),
    (r) => (r._tag === "Reserved" ? rollback(taskId, r.agent.id) : Effect.void)
  )
})

/** The reserving transaction: admission decides on the registry as it is under the lock, and the record is written. */
const admit = Effect.fnUntraced(function*(request: SpawnRequest, written: Ref.Ref<AgentId | undefined>) {
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const nowMs = yield* Clock.currentTimeMillis
  const suffix = yield* Random.nextIntBetween(0, 0xffffffff)
  const secret = newSecret()
  const sessionUuid = randomUUID()
  const parent = request.parent ?? ORCHESTRATOR
  const promptSha256 = sha256(request.prompt)
  return yield* registry.update<Reservation, AdmissionRejection | RegistryError>(
    request.taskId,
    (tx) =>
      Effect.gen(function*() {
        const engine: Engine = request.engine ?? (tx.task.engine as Engine | undefined) ?? config.defaultEngine
        const globalActive = yield* tx.globalActive
        const decision = decide(
          { task: tx.task, globalActive, globalMaxConcurrent: config.globalMaxConcurrent },
          { agentType: request.agentType, parent, promptSha256, engine, idempotencyKey: request.idempotencyKey },
          nowMs
        )
        if (Result.isFailure(decision)) return yield* Effect.fail(decision.failure)
        if (decision.success._tag === "Existing") {
          return { result: { _tag: "Existing", agent: decision.success.agent } as Reservation }
        }
        const agent = reservedAgent({
          agentId: freshAgentId(tx.task, request.agentType, nowMs, suffix),
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
          sessionUuid
        })
        yield* Ref.set(written, agent.id)
        beginSpawn(config.home, request.taskId, agent.id)
        return {
          result: { _tag: "Reserved", agent, engine, task: tx.task, secret } as Reservation,
          next: { ...tx.task, agents: [...tx.task.agents, agent] }
        }
      })
  )
})

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
