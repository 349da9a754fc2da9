/**
 * spawnkit's composition root: the layers that put configuration, the registry, tmux, git, rollbacks, fault injection and
 * Node's services together. The command line, the MCP server and the benchmark build their services here; the public
 * barrel (`index.ts`) re-exports it.
 *
 * The PostgreSQL registry (and its driver, `pg`) is imported only when a database URL is configured, so a process
 * on the file registry never loads it.
 */
import { NodeServices } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Path from "effect/Path"
import type { InvalidConfiguration, RegistryDatabaseError, RegistryIoError } from "./domain/Errors.js"
import type { Events } from "./events/Events.js"
import { FaultInjection } from "./faults/FaultInjection.js"
import { Git } from "./host/Git.js"
import { Tmux } from "./host/Tmux.js"
import { UsageWalls } from "./host/UsageWalls.js"
import * as FileEvents from "./registry/FileEvents.js"
import * as FileRegistry from "./registry/FileRegistry.js"
import type { Registry } from "./registry/Registry.js"
import { Rollbacks } from "./spawn/Rollbacks.js"
import { SpawnkitConfig, type SpawnkitSettings } from "./SpawnkitConfig.js"

/** What a registry layer needs from the layers below it. */
type RegistryNeeds = SpawnkitConfig | FaultInjection | FileSystem.FileSystem | Path.Path

/** The PostgreSQL registry's layer (with its events), its module imported when the layer is built. */
const pgRegistry: Layer.Layer<Registry | Events, RegistryDatabaseError, RegistryNeeds> = Layer.unwrap(
  Effect.promise(() => import("./registry/PgRegistry.js")).pipe(Effect.map((pg) => pg.layer))
)

/** The file registry with the events of its journal. */
const fileRegistry = FileEvents.layer.pipe(Layer.provideMerge(FileRegistry.layer))

/** The registry the configuration selects: PostgreSQL when a database URL is set, the file registry otherwise. */
export const registryFromConfig: Layer.Layer<
  Registry | Events,
  RegistryIoError | RegistryDatabaseError,
  RegistryNeeds
> = Layer.unwrap(
  Effect.map(
    SpawnkitConfig,
    (c): Layer.Layer<Registry | Events, RegistryIoError | RegistryDatabaseError, RegistryNeeds> =>
      Option.isSome(c.databaseUrl) ? pgRegistry : fileRegistry
  )
)

/** Fault injection as configured (SPAWNKIT_FAULT); a no-op unless a test sets it. */
export const faultsFromConfig: Layer.Layer<FaultInjection, InvalidConfiguration, SpawnkitConfig> = Layer.unwrap(
  Effect.map(SpawnkitConfig, (c) => (c.faultSpec === "" ? FaultInjection.none : FaultInjection.fromSpec(c.faultSpec)))
)

/**
 * Everything spawnkit needs, on Node: configuration from the environment (with `overrides` on top), the registry
 * it selects (PostgreSQL when SPAWNKIT_DATABASE_URL is set, else the file registry), tmux, fault injection (off
 * unless configured, or the `faults` layer given) and Node's file system and process services.
 */
export const layer = (
  overrides: Partial<SpawnkitSettings> = {},
  faults: Layer.Layer<FaultInjection, InvalidConfiguration, SpawnkitConfig> = faultsFromConfig
) => {
  const config = SpawnkitConfig.layerWith(overrides)
  const base = faults.pipe(Layer.provideMerge(config))
  return Layer.mergeAll(registryFromConfig, Tmux.layer, Rollbacks.layer, UsageWalls.layer, Git.layer).pipe(
    Layer.provideMerge(base),
    Layer.provideMerge(NodeServices.layer)
  )
}

/** The services spawnkit's operations need, as provided by `layer()`. */
export type Services = Layer.Success<ReturnType<typeof layer>>
