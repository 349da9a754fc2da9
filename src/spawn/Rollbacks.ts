/**
 * Rollbacks that must not be forgotten. When a spawn fails while the registry cannot be written (a database that is
 * down, a disk that is full), the reservation it could not roll back is retried here in the background, with a
 * capped backoff, for as long as the services live (a server's whole life), until the registry answers. A process
 * that ends first leaves the reservation to the reconciler (its owner is then gone).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"

/** Backoff of a background rollback: 100 ms doubling, at most 5 s apart. */
const backoff = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")])

/** The background retries of this process's failed rollbacks. */
export class Rollbacks extends Context.Service<Rollbacks, {
  /** Keep retrying `undo` in the background until it succeeds; `what` names it in the logs. */
  readonly keepTrying: (what: string, undo: Effect.Effect<void, { readonly message: string }>) => Effect.Effect<void>
}>()("spawnkit/Rollbacks") {
  /** Retries live in the layer's scope: disposing of the services (a server's exit) stops them. */
  static readonly layer: Layer.Layer<Rollbacks> = Layer.effect(
    Rollbacks,
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      return Rollbacks.of({
        keepTrying: (what, undo) =>
          undo.pipe(
            Effect.tapError((e) => Effect.logWarning(`${what}: still failing (${e.message}); retrying`)),
            Effect.retry(backoff),
            Effect.tap(() => Effect.logInfo(`${what}: done`)),
            Effect.forkIn(scope),
            Effect.asVoid
          )
      })
    })
  )
}
