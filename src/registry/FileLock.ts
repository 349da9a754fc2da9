/**
 * Cross-process exclusive lock on one file, paired with an in-process Semaphore.
 *
 * The lock is an `fcntl` record lock (through `os-lock`): the kernel releases it the moment its holder dies, even by
 * SIGKILL, so there is no stale-lock timeout to wait out. fcntl locks belong to a process, not to a file descriptor
 * holder, so a second fiber of the same process would "get" the lock too: the Semaphore serializes fibers first.
 */
import * as Fs from "node:fs"
import * as OsLock from "os-lock"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { RegistryIoError } from "../domain/Errors.js"

/** A held-while-running lock: `withLock(effect)` runs the effect as the only holder across all processes. */
export interface FileLock {
  readonly path: string
  readonly withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RegistryIoError, R>
}

const ioError = (path: string, operation: string) => (cause: unknown) =>
  new RegistryIoError({ path, operation, reason: cause instanceof Error ? cause.message : String(cause) })

/**
 * Open (creating if needed) the lock file and return its lock. The file descriptor stays open for the scope's life:
 * closing any descriptor of the file would drop this process's lock.
 */
export const make = (path: string): Effect.Effect<FileLock, RegistryIoError, Scope.Scope> =>
  Effect.gen(function*() {
    const fd = yield* Effect.acquireRelease(
      Effect.try({ try: () => Fs.openSync(path, "a+", 0o600), catch: ioError(path, "open lock file") }),
      (fd) => Effect.sync(() => Fs.closeSync(fd))
    )
    const semaphore = yield* Semaphore.make(1)
    // Acquisition is uninterruptible: a blocked fcntl wait cannot be cancelled, so an interrupted waiter must still
    // take the lock when it comes and hand it straight back, or the lock would be held by nobody forever.
    const acquire = Effect.acquireRelease(
      Effect.tryPromise({
        try: () => OsLock.lock(fd, { exclusive: true }),
        catch: ioError(path, "lock")
      }),
      () =>
        Effect.tryPromise({ try: () => OsLock.unlock(fd), catch: ioError(path, "unlock") }).pipe(Effect.orDie)
    )
    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      semaphore.withPermits(1)(Effect.scoped(Effect.andThen(acquire, effect)))
    return { path, withLock }
  })
