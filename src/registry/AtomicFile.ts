/**
 * Atomic file replacement: write a temp file beside the target, fsync it, rename it over the target, fsync the
 * directory. Invariant: a reader sees the old bytes or the new bytes, never a mix, even after a crash.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import { RegistryIoError } from "../domain/Errors.js"
import type { FaultInjection } from "../faults/FaultInjection.js"

const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** Suffix of temp files: `<name>.tmp-<pid>-<random>`; a reconciler may remove those whose pid is gone. */
export const tempSuffix = (pid: number) => `.tmp-${pid}-${Math.random().toString(16).slice(2, 10)}`

/** Replace `target` with `contents` atomically and durably. */
export const writeAtomic = Effect.fn("AtomicFile.writeAtomic")(function*(
  target: string,
  contents: string,
  faults: FaultInjection["Service"],
  mode = 0o644
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const temp = target + tempSuffix(process.pid)
  const fail = (operation: string) => (cause: unknown) =>
    new RegistryIoError({ path: target, operation, reason: reasonOf(cause) })
  const writeTemp = Effect.scoped(
    Effect.gen(function*() {
      const file = yield* fs.open(temp, { flag: "wx", mode }).pipe(Effect.mapError(fail("create temp file for")))
      yield* file.writeAll(new TextEncoder().encode(contents)).pipe(Effect.mapError(fail("write")))
      yield* faults.point("registry-after-write")
      yield* file.sync.pipe(Effect.mapError(fail("fsync")))
    })
  )
  yield* writeTemp.pipe(
    Effect.andThen(faults.point("registry-after-fsync")),
    Effect.andThen(fs.rename(temp, target).pipe(Effect.mapError(fail("rename temp file over")))),
    Effect.onError(() =>
      fs.remove(temp, { force: true }).pipe(
        Effect.catch((e) => Effect.logWarning(`could not remove temp file ${temp}: ${e.message}`))
      )
    )
  )
  yield* faults.point("registry-after-rename")
  yield* Effect.scoped(
    Effect.gen(function*() {
      const dir = yield* fs.open(path.dirname(target), { flag: "r" })
      yield* dir.sync
    })
  ).pipe(Effect.mapError(fail("fsync directory of")))
})
