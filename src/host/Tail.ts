/**
 * Bounded tail of a text file: the last lines within the last `maxBytes` bytes, without reading the whole file.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"

/** The lines of a tail read, and the file's size when it was read (where a follower goes on from). */
export interface Tail {
  /** The non-empty lines, the last one included even when no line break ends it yet. */
  readonly lines: ReadonlyArray<string>
  readonly end: bigint
  /** The text after the last line break (empty when the file ends with one): a line still being written. */
  readonly unterminated: string
}

/**
 * The last `lines` non-empty lines of `file` found in its final `maxBytes` bytes, and the size it had then; none (and
 * size 0) when the file is missing.
 */
export const tailOf = (file: string, lines: number, maxBytes = 64 * 1024) =>
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
      return {
        lines: whole.filter((l) => l.trim().length > 0).slice(-lines),
        end: size,
        unterminated: whole.length > 0 ? whole[whole.length - 1]! : ""
      } satisfies Tail
    })
  ).pipe(
    Effect.catchTag("PlatformError", (e) =>
      e.reason._tag === "NotFound" ? Effect.succeed<Tail>({ lines: [], end: 0n, unterminated: "" }) : Effect.fail(e))
  )

/** The last `lines` non-empty lines of `file` found in its final `maxBytes` bytes; none when the file is missing. */
export const tailLines = (file: string, lines: number, maxBytes = 64 * 1024) =>
  Effect.map(tailOf(file, lines, maxBytes), (t) => t.lines)
