/**
 * Bounded tail of a text file: the last lines within the last `maxBytes` bytes, without reading the whole file.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"

/** The last `lines` non-empty lines of `file` found in its final `maxBytes` bytes; none when the file is missing. */
export const tailLines = (file: string, lines: number, maxBytes = 64 * 1024) =>
  Effect.scoped(
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const handle = yield* fs.open(file, { flag: "r" })
      const size = (yield* handle.stat).size
      const start = size > BigInt(maxBytes) ? size - BigInt(maxBytes) : 0n
      const bytes = yield* handle.readAlloc(Number(size - start), { position: start })
      const text = Option.match(bytes, { onNone: () => "", onSome: (b) => new TextDecoder().decode(b) })
      // Drop a partial first line when the read started mid-file.
      const all = text.split(/\r?\n/)
      const whole = start > 0n ? all.slice(1) : all
      return whole.filter((l) => l.trim().length > 0).slice(-lines)
    })
  ).pipe(
    Effect.catchTag("PlatformError", (e) =>
      e.reason._tag === "NotFound" ? Effect.succeed<ReadonlyArray<string>>([]) : Effect.fail(e))
  )
