/**
 * The handover of a spawn: what the spawn's scope acquires is released on failure, defect or interruption (in reverse
 * order of acquisition, as a Scope's finalizers run) unless it was handed over to the agent record at the commit.
 *
 * Invariant: the handover and the commit that causes it are one uninterruptible step, so a resource is either
 * released by the scope or owned by a committed record, never both and never neither.
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"

/** Resources of one spawn's scope, released unless handed over to the record. */
export interface Handover {
  /**
   * Acquire a resource whose release needs what was acquired (Effect's acquireRelease: the acquisition is
   * uninterruptible). The release stands down once the resources are handed over.
   */
  readonly resource: <A, E, R, R2>(
    acquire: Effect.Effect<A, E, R>,
    release: (a: A) => Effect.Effect<void, never, R2>
  ) => Effect.Effect<A, E, R | R2 | Scope.Scope>
  /**
   * Acquire a resource whose release is known beforehand: the release is registered first, so an acquisition that
   * fails or is interrupted half-way (a file half-written, a session tmux made before the call failed) is released
   * too. The acquisition stays interruptible. The release stands down once the resources are handed over.
   */
  readonly guarded: <A, E, R, R2>(
    release: Effect.Effect<void, never, R2>,
    acquire: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R | R2 | Scope.Scope>
  /** Run the commit, uninterruptibly; when it succeeds, every resource belongs to the record and no release runs. */
  readonly handOver: <A, E, R>(commit: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** A new handover for one spawn's scope. */
export const make: Effect.Effect<Handover> = Effect.map(Ref.make(false), (handedOver): Handover => {
  const unlessHandedOver = <R>(release: Effect.Effect<void, never, R>) =>
    Effect.flatMap(Ref.get(handedOver), (done) => (done ? Effect.void : release))
  return {
    resource: (acquire, release) => Effect.acquireRelease(acquire, (a) => unlessHandedOver(release(a))),
    guarded: (release, acquire) => Effect.andThen(Effect.addFinalizer(() => unlessHandedOver(release)), acquire),
    handOver: (commit) => Effect.uninterruptible(Effect.tap(commit, () => Ref.set(handedOver, true)))
  }
})
