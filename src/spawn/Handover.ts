/**
 * The handover of a spawn: what the spawn's scope acquires is released on failure, defect or interruption (in reverse
 * order of acquisition, as a Scope's finalizers run) unless it was handed over to the agent record at the commit.
 *
 * Invariant: the handover and the commit that causes it are one uninterruptible step, so a resource is either
 * released by the scope or owned by a committed record, never both and never neither.
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type { SpawnResources } from "../worktree/Worktrees.js"

/**
 * Resources of one spawn's scope, released unless handed over to the record: `resource` and `guarded` (see
 * SpawnResources, which the worktree step takes), and the commit that hands them over.
 */
export interface Handover extends SpawnResources {
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
