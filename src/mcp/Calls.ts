/**
 * How the MCP server runs a request's Effect: in the one ManagedRuntime of the process, as a fiber tracked until it
 * ends (so a shutdown interrupts it and waits for its finalizers), interrupted when the client cancels the request or
 * its connection closes. Also how a failure reads: its tag, then what was wrong and what to do.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import type { Services } from "../Spawnkit.js"
import { type Caller, CallerIdentity } from "./Caller.js"

/** The runtime every tool call and resource read runs in. */
export type ToolRuntime = ManagedRuntime.ManagedRuntime<Services | CallerIdentity, unknown>

/** Tracks running calls, so a shutdown can interrupt them and wait for their finalizers. */
export interface InFlight {
  readonly fibers: Set<Fiber.Fiber<unknown, unknown>>
}

/**
 * Run a request's Effect as a tracked fiber, interrupted when `signal` aborts; resolves with its Exit. `caller`, when
 * given, is who makes the request (a broker's session: the principal its bearer token named); else the runtime's.
 */
export const runCall = async <A, E>(
  runtime: ToolRuntime,
  inFlight: InFlight,
  effect: Effect.Effect<A, E, Services | CallerIdentity>,
  signal: AbortSignal,
  caller?: Caller
) => {
  const fiber = runtime.runFork(
    caller === undefined ? effect : Effect.provideService(effect, CallerIdentity, caller),
    { signal }
  )
  inFlight.fibers.add(fiber)
  return runtime.runPromise(Fiber.await(fiber)).finally(() => inFlight.fibers.delete(fiber))
}

/** The tag of a failure (`Defect` for a defect, `Interrupted` for an interruption). */
export const failureTag = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const tag = (failure.value as { readonly _tag?: unknown })._tag
    return typeof tag === "string" ? tag : "Error"
  }
  return Cause.hasInterruptsOnly(cause) ? "Interrupted" : "Defect"
}

/** A failure as a caller reads it: the tag, then what was wrong and what to do, then its fields. */
export const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const e = failure.value as { readonly _tag?: unknown; readonly message?: unknown }
    const details = JSON.stringify(
      Object.fromEntries(Object.entries(e as object).filter(([k]) => k !== "_tag" && k !== "stack"))
    )
    return `${failureTag(cause)}: ${typeof e.message === "string" ? e.message : String(e)}${
      details === "{}" ? "" : ` ${details}`
    }`
  }
  return `Defect: ${Cause.pretty(cause)}`
}
