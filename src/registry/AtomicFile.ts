/**
 * Atomic file replacement: write a temp file beside the target, fsync it, rename it over the target, fsync the
 * directory. Invariant: a reader sees the old bytes or the new bytes, never a mix, even after a crash.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"
import type { FaultInjection } from "../faults/FaultInjection.js"

const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** Suffix of temp files: `<name>.tmp-<pid>-<random>`; a reconciler may remove those whose pid is gone. */
export const tempSuffix = (pid: number) => `.tmp-${pid}-${Math.random().toString(16).slice(2, 10)}`

/**
 * Replace `target` with `contents` atomically and durably. The steps are synchronous system calls: this runs inside
 * the registry's critical section, where a round trip through the thread pool per step cost more than the step.
 */
export const writeAtomic = Effect.fn("AtomicFile.writeAtomic")(function*(
  target: string,
  contents: string,
  faults: FaultInjection["Service"],
  mode = 0o644
) {
  const temp = target + tempSuffix(process.pid)
  const step = <A>(operation: string, f: () => A) =>
    Effect.try({ try: f, catch: (cause) => new RegistryIoError({ path: target, operation, ...ioFailure(cause) }) })
  const writeTemp = Effect.acquireUseRelease(
    step("create temp file for", () => Fs.openSync(temp, "wx", mode)),
    (fd) =>
      step("write", () => Fs.writeFileSync(fd, contents)).pipe(
        Effect.andThen(faults.point("registry-after-write")),
        Effect.andThen(step("fsync", () => Fs.fsyncSync(fd)))
      ),
    (fd) => Effect.sync(() => Fs.closeSync(fd))
  )
  yield* writeTemp.pipe(
    Effect.andThen(faults.point("registry-after-fsync")),
    Effect.andThen(step("rename temp file over", () => Fs.renameSync(temp, target))),
    Effect.onError(() =>
      Effect.try(() => Fs.rmSync(temp, { force: true })).pipe(
        Effect.catch((e) => Effect.logWarning(`could not remove temp file ${temp}: ${reasonOf(e)}`))
      )
    )
  )
  yield* faults.point("registry-after-rename")
  yield* Effect.acquireUseRelease(
    step("open directory of", () => Fs.openSync(NodePath.dirname(target), "r")),
    (fd) => step("fsync directory of", () => Fs.fsyncSync(fd)),
    (fd) => Effect.sync(() => Fs.closeSync(fd))
  )
})
