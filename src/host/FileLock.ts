/**
 * Cross-process exclusive lock on one file, paired with an in-process Semaphore.
 *
 * The lock is an `fcntl` record lock (through `os-lock`): the kernel releases it the moment its holder dies, even by
 * SIGKILL, so there is no stale-lock timeout to wait out. fcntl locks belong to a process, not to a file descriptor,
 * and closing *any* descriptor of the file drops them all. So every FileLock on one path in one process shares a
 * single open descriptor and a single Semaphore (reference-counted, closed with its last user): a fiber first
 * takes the process's Semaphore, then the process takes the fcntl lock.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { performance } from "node:perf_hooks"
import * as OsLock from "os-lock"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"

/** A held-while-running lock: `withLock(effect)` runs the effect as the only holder across all processes. */
export interface FileLock {
  readonly path: string
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RegistryIoError, R>
}

/**
 * How long each acquisition waited, in milliseconds, from the call to holding both the Semaphore and the fcntl lock
 * (buckets from 0.05 ms up by a factor of 1.25).
 */
export const lockWaitMs = Metric.histogram("spawnkit_registry_lock_wait_ms", {
  description: "Wait for the registry lock (in-process Semaphore + fcntl), in milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 0.05, factor: 1.25, count: 60 })
})

interface SharedLock {
  readonly fd: number
  readonly semaphore: Semaphore.Semaphore
  users: number
}

// Invariant: one entry per lock file per process, because the kernel keeps one fcntl lock per (process, file).
const shared = new Map<string, SharedLock>()

const ioError = (path: string, operation: string) => (cause: unknown) =>
  new RegistryIoError({ path, operation, ...ioFailure(cause) })

const open = (path: string) =>
  Effect.try({
    try: () => {
      const key = NodePath.resolve(path)
      let entry = shared.get(key)
      if (entry === undefined) {
        entry = { fd: Fs.openSync(key, "a+", 0o600), semaphore: Semaphore.makeUnsafe(1), users: 0 }
        shared.set(key, entry)
      }
      entry.users++
      return { key, entry }
    },
    catch: ioError(path, "open lock file")
  })

const close = ({ key, entry }: { readonly key: string; readonly entry: SharedLock }) =>
  Effect.sync(() => {
    entry.users--
    if (entry.users === 0) {
      shared.delete(key)
      Fs.closeSync(entry.fd)
    }
  })

/** Open (creating if needed) the lock file and return its lock, usable for the scope's life. */
export const make = (path: string): Effect.Effect<FileLock, RegistryIoError, Scope.Scope> =>
  Effect.gen(function*() {
    const { entry } = yield* Effect.acquireRelease(open(path), close)
    // Acquisition is uninterruptible: a blocked fcntl wait cannot be cancelled, so an interrupted waiter must still
    // take the lock when it comes and hand it straight back, or the lock would be held by nobody forever.
    const acquire = (requested: number) =>
      Effect.acquireRelease(
        Effect.tryPromise({
          try: () => OsLock.lock(entry.fd, { exclusive: true }),
          catch: ioError(path, "lock")
        }).pipe(Effect.tap(() => Metric.update(lockWaitMs, performance.now() - requested))),
        () =>
          Effect.tryPromise({ try: () => OsLock.unlock(entry.fd), catch: ioError(path, "unlock") }).pipe(Effect.orDie)
      )
    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        const requested = performance.now()
        return entry.semaphore.withPermits(1)(Effect.scoped(Effect.andThen(acquire(requested), effect)))
      })
    return { path, withLock }
  })
