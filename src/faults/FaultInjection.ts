/**
 * Fault-injection points between the steps of a spawn and inside the registry write. A no-op unless a test turns it
 * on, in-process with `FaultInjection.layer(...)` or across processes with
 * `SPAWNKIT_FAULT=<step>:<fail|kill|hang|fail-while=<file>>` (`fail-while` fails while the file exists: an outage a
 * test can start and end, e.g. a registry that cannot be written).
 */
import * as Fs from "node:fs"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { InjectedFault } from "../domain/Errors.js"

/** The points of a spawn, in the order it passes them. */
export const SPAWN_FAULT_STEPS = [
  "after-reserve",
  "after-prompt",
  "before-session",
  "after-session",
  "after-check",
  "commit",
  "after-commit"
] as const

/** The points inside a file registry's atomic write. */
export const FILE_REGISTRY_FAULT_STEPS = ["registry-after-write", "registry-after-fsync", "registry-after-rename"] as const

/** The points of a PostgreSQL registry transaction that writes: before its COMMIT, and once it is durable. */
export const PG_REGISTRY_FAULT_STEPS = ["registry-before-commit", "registry-after-commit"] as const

/** Every named point. */
export const FAULT_STEPS = [...SPAWN_FAULT_STEPS, ...FILE_REGISTRY_FAULT_STEPS, ...PG_REGISTRY_FAULT_STEPS] as const
/** @see FAULT_STEPS */
export type FaultStep = (typeof FAULT_STEPS)[number]

/**
 * What happens at a point: fail with `InjectedFault`, SIGKILL the process, hang until interrupted, or fail while a
 * file exists.
 */
export type FaultMode = "fail" | "kill" | "hang" | { readonly failWhile: string }

/** The fault-injection service: `point(step)` is passed at each step. */
export class FaultInjection extends Context.Service<FaultInjection, {
  readonly point: (step: FaultStep) => Effect.Effect<void, InjectedFault>
}>()("spawnkit/FaultInjection") {
  /** No faults: every point is a no-op. */
  static readonly none = Layer.succeed(FaultInjection, FaultInjection.of({ point: () => Effect.void }))

  /** Faults decided by a function of the step (tests). */
  static readonly layer = (
    decide: (step: FaultStep) => Effect.Effect<void, InjectedFault>
  ): Layer.Layer<FaultInjection> => Layer.succeed(FaultInjection, FaultInjection.of({ point: decide }))

  /**
   * Faults from a spec such as `after-session:kill`, `commit:fail,after-prompt:hang` or
   * `registry-after-write:fail-while=/tmp/outage` (SPAWNKIT_FAULT).
   */
  static readonly fromSpec = (spec: string): Layer.Layer<FaultInjection> => {
    const rules = new Map<string, FaultMode>()
    for (const part of spec.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
      const colon = part.indexOf(":")
      const step = part.slice(0, colon)
      const mode = part.slice(colon + 1)
      if (colon < 0) continue
      if (mode === "fail" || mode === "kill" || mode === "hang") rules.set(step, mode)
      else if (mode.startsWith("fail-while=")) rules.set(step, { failWhile: mode.slice("fail-while=".length) })
    }
    return FaultInjection.layer((step) => {
      const rule = rules.get(step)
      if (typeof rule === "object") {
        return Effect.suspend(() => (Fs.existsSync(rule.failWhile) ? Effect.fail(new InjectedFault({ step })) : Effect.void))
      }
      switch (rule) {
        case "fail":
          return Effect.fail(new InjectedFault({ step }))
        case "kill":
          return Effect.sync(() => process.kill(process.pid, "SIGKILL"))
        case "hang":
          return Effect.never
        default:
          return Effect.void
      }
    })
  }
}
