/**
 * Wake-ups shared by every reader of one process: one watcher (inotify, a LISTEN connection), started by the first
 * reader and kept until the layer's scope closes, instead of one per stream.
 *
 * No change is missed between a read and the wait after it: a reader takes the generation before it reads, and a
 * wait for a generation that has already moved on returns at once.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** Start watching; call `signal` on every change; return the function that stops watching. */
export type Watch = (signal: () => void) => () => void

/** The wake-ups of one watcher. */
export interface Wakeups {
  /** The current generation: take it before reading, pass it to `wait`. */
  readonly generation: Effect.Effect<number>
  /** Return at the first change after `generation`, or after `ms`. */
  readonly wait: (generation: number, ms: number) => Effect.Effect<void>
}

/** Make the wake-ups of a watcher, stopped when the scope closes. */
export const makeWakeups = (watch: Watch): Effect.Effect<Wakeups, never, Scope.Scope> =>
  Effect.gen(function*() {
    const waiters = new Set<() => void>()
    let generation = 0
    let stop: (() => void) | undefined
    const signal = () => {
      generation++
      for (const wake of [...waiters]) wake()
    }
    const ensureWatching = () => {
      if (stop !== undefined) return
      try {
        stop = watch(signal)
      } catch {
        // Nothing to watch yet (no journal, no connection): waits end by their timer, and the next read tries again.
      }
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => stop?.()))
    return {
      generation: Effect.sync(() => {
        ensureWatching()
        return generation
      }),
      wait: (seen, ms) =>
        Effect.callback<void>((resume) => {
          if (generation !== seen) return resume(Effect.void)
          const done = () => {
            clearTimeout(timer)
            waiters.delete(done)
            resume(Effect.void)
          }
          const timer = setTimeout(done, ms)
          waiters.add(done)
          return Effect.sync(() => {
            clearTimeout(timer)
            waiters.delete(done)
          })
        })
    }
  })
