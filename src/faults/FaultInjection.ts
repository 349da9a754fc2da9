/**
 * Fault-injection points between the steps of a spawn and inside the registry write. A no-op unless a test turns it
 * on, in-process with `FaultInjection.layer(...)` or across processes with
 * `SPAWNKIT_FAULT=<step>:<fail|kill|hang|fail-while=<file>>` (`fail-while` fails while the file exists: an outage a
 * test can start and end, e.g. a registry that cannot be written). A spec naming an unknown step or mode is refused
 * with InvalidConfiguration, never ignored.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Fs from "node:fs"
import { InjectedFault, InvalidConfiguration } from "../domain/Errors.js"

/** The points of a spawn, in the order it passes them. */
export const SPAWN_FAULT_STEPS = [
  "after-reserve",
  "after-prompt",
  "after-worktree",
  "before-session",
  "after-session",
  "after-check",
  "commit",
  "after-commit"
] as const

/** The points inside a file registry's atomic write. */
export const FILE_REGISTRY_FAULT_STEPS = [
  "registry-after-write",
  "registry-after-fsync",
  "registry-after-rename"
] as const

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

const isFaultStep = (step: string): step is FaultStep => (FAULT_STEPS as ReadonlyArray<string>).includes(step)

/**
 * Parse a spec such as `after-session:kill`, `commit:fail,after-prompt:hang` or
 * `registry-after-write:fail-while=/tmp/outage` into its rules; an empty spec has none. A part without `:`, an
 * unknown step, an unknown mode or a `fail-while=` without a file is refused.
 */
export const parseFaultSpec = (
  spec: string
): Result.Result<ReadonlyMap<FaultStep, FaultMode>, InvalidConfiguration> => {
  const rules = new Map<FaultStep, FaultMode>()
  const refuse = (reason: string) => Result.fail(new InvalidConfiguration({ variable: "SPAWNKIT_FAULT", reason }))
  for (const part of spec.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
    const colon = part.indexOf(":")
    if (colon < 0) return refuse(`${JSON.stringify(part)} is not <step>:<mode>`)
    const step = part.slice(0, colon)
    const mode = part.slice(colon + 1)
    if (!isFaultStep(step)) {
      return refuse(`unknown step ${JSON.stringify(step)}; the steps are ${FAULT_STEPS.join(", ")}`)
    }
    if (mode === "fail" || mode === "kill" || mode === "hang") rules.set(step, mode)
    else if (mode.startsWith("fail-while=") && mode.length > "fail-while=".length) {
      rules.set(step, { failWhile: mode.slice("fail-while=".length) })
    } else {
      return refuse(
        `unknown mode ${JSON.stringify(mode)} at ${step}; the modes are fail, kill, hang, fail-while=<file>`
      )
    }
  }
  return Result.succeed(rules)
}

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
   * `registry-after-write:fail-while=/tmp/outage` (SPAWNKIT_FAULT); see parseFaultSpec for what is refused.
   */
  static readonly fromSpec = (spec: string): Layer.Layer<FaultInjection, InvalidConfiguration> => {
    const parsed = parseFaultSpec(spec)
    if (Result.isFailure(parsed)) return Layer.effect(FaultInjection, Effect.fail(parsed.failure))
    const rules = parsed.success
    return FaultInjection.layer((step) => {
      const rule = rules.get(step)
      if (typeof rule === "object") {
        return Effect.suspend(
          () => (Fs.existsSync(rule.failWhile) ? Effect.fail(new InjectedFault({ step })) : Effect.void)
        )
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
