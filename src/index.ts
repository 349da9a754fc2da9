/**
 * spawnkit's programmatic API: services, layers and the operations on tasks and agents.
 *
 * ```ts
 * import { Effect } from "effect"
 * import * as Spawnkit from "spawnkit"
 * const program = Effect.gen(function*() {
 *   const task = yield* Spawnkit.createTask({ description: "demo", max_concurrent: 4 })
 *   return yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "hello", engine: "custom" })
 * })
 * Effect.runPromise(program.pipe(Effect.provide(Spawnkit.layer())))
 * ```
 */
import { NodeServices } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { FaultInjection } from "./faults/FaultInjection.js"
import type * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import type * as Path from "effect/Path"
import type { InvalidConfiguration, RegistryDatabaseError, RegistryIoError } from "./domain/Errors.js"
import { Registry } from "./registry/Registry.js"
import * as FileRegistry from "./registry/FileRegistry.js"
import * as PgRegistry from "./registry/PgRegistry.js"
import { Tmux } from "./sessions/Tmux.js"
import { Rollbacks } from "./spawn/Rollbacks.js"
import { SpawnkitConfig, type SpawnkitSettings } from "./SpawnkitConfig.js"

export * from "./domain/Agent.js"
export * from "./domain/Errors.js"
export * from "./domain/Ids.js"
export * from "./domain/SpawnRequest.js"
export * from "./domain/Task.js"
export { type Admission, type AdmissionRequest, type AdmissionSnapshot, decide } from "./admission/Admission.js"
export {
  FAULT_STEPS,
  FaultInjection,
  type FaultMode,
  type FaultStep,
  FILE_REGISTRY_FAULT_STEPS,
  PG_REGISTRY_FAULT_STEPS,
  SPAWN_FAULT_STEPS
} from "./faults/FaultInjection.js"
export {
  type ListOptions,
  type Quarantined,
  Registry,
  type RegistryTransaction,
  type TaskPage,
  type Transition,
  type UnreadableTask
} from "./registry/Registry.js"
export { Rollbacks } from "./spawn/Rollbacks.js"
export { buildCommand, parseTemplate } from "./sessions/Engines.js"
export { type NewSession, type PaneState, type SessionInfo, Tmux } from "./sessions/Tmux.js"
export { type ExitRecord, ownerOfPane, recordExit } from "./spawn/ExitHook.js"
export { spawn, type SpawnInput } from "./spawn/Spawner.js"
export { kill, type KillResult } from "./spawn/Kill.js"
export {
  createTask,
  listTasks,
  ListTasksOptions,
  quarantineTask,
  type QuarantineResult,
  status
} from "./spawn/Tasks.js"
export { CONFIRMATIONS, reconcile, type ReconcileReport, type Repair } from "./spawn/Reconciler.js"
export { agentOutput, describeEvent, followOutput, type OutputEntry, OutputOptions } from "./spawn/AgentOutput.js"
export { checkFilter, type LineFilter, makeLineFilter, MAX_FILTER_LENGTH } from "./spawn/LineFilter.js"
export { type Caller, CallerIdentity } from "./spawn/Caller.js"
export { Finding, ProgressReport, reportFinding, updateProgress } from "./spawn/Reports.js"
export { DEFAULT_PROMPT_TEMPLATE, renderPrompt } from "./spawn/AgentPrompt.js"
export { parseTmuxSocket, SpawnkitConfig, type SpawnkitSettings, type TmuxSocket } from "./SpawnkitConfig.js"
/** The file-backed registry layer. */
export const FileRegistryLayer = FileRegistry.layer
/** The PostgreSQL-backed registry layer (needs SPAWNKIT_DATABASE_URL, or `databaseUrl` in the settings). */
export const PgRegistryLayer = PgRegistry.layer
export { describeDatabase, SCHEMA_VERSION } from "./registry/PgRegistry.js"

/** The registry the configuration selects: PostgreSQL when a database URL is set, the file registry otherwise. */
export const registryFromConfig: Layer.Layer<
  Registry,
  RegistryIoError | RegistryDatabaseError,
  SpawnkitConfig | FaultInjection | FileSystem.FileSystem | Path.Path
> = Layer.unwrap(
  Effect.map(
    SpawnkitConfig,
    (c): Layer.Layer<
      Registry,
      RegistryIoError | RegistryDatabaseError,
      SpawnkitConfig | FaultInjection | FileSystem.FileSystem | Path.Path
    > => (Option.isSome(c.databaseUrl) ? PgRegistry.layer : FileRegistry.layer)
  )
)

/** Fault injection as configured (SPAWNKIT_FAULT); a no-op unless a test sets it. */
export const faultsFromConfig: Layer.Layer<FaultInjection, InvalidConfiguration, SpawnkitConfig> = Layer.unwrap(
  Effect.map(SpawnkitConfig, (c) => (c.faultSpec === "" ? FaultInjection.none : FaultInjection.fromSpec(c.faultSpec)))
)

/**
 * Everything spawnkit needs, on Node: configuration from the environment (with `overrides` on top), the registry
 * it selects (PostgreSQL when SPAWNKIT_DATABASE_URL is set, else the file registry), tmux, fault injection (off unless configured, or the `faults` layer given) and Node's file system and
 * process services.
 */
export const layer = (
  overrides: Partial<SpawnkitSettings> = {},
  faults: Layer.Layer<FaultInjection, InvalidConfiguration, SpawnkitConfig> = faultsFromConfig
) => {
  const config = SpawnkitConfig.layerWith(overrides)
  const base = faults.pipe(Layer.provideMerge(config))
  return Layer.mergeAll(registryFromConfig, Tmux.layer, Rollbacks.layer).pipe(
    Layer.provideMerge(base),
    Layer.provideMerge(NodeServices.layer)
  )
}

/** The services spawnkit's operations need, as provided by `layer()`. */
export type Services = Layer.Success<ReturnType<typeof layer>>
