/**
 * The file event journal, `<home>/.spawnkit-events.jsonl`: one line per transaction that made events, written under
 * the home's registry lock, so sequence numbers are per home, strictly increasing and without gaps.
 *
 * Two files cannot change in one atomic step, so a transaction's events are committed in this order:
 *   1. append its batch `{"tx":L,"events":[…]}` (L: the last sequence number in it) and fsync it;
 *   2. write the task's registry with `event_seq: L` (the commit point, an atomic replace);
 *   3. append a mark `{"ok":L}` (no fsync: it only saves the next reader a check).
 * A batch is committed exactly when its task's registry holds `event_seq >= L`. If step 2 fails the batch is cut
 * off again at once; if the process dies between 1 and 3, the next transaction finds an unmarked batch at the end,
 * checks the registry, and marks it or cuts it off before it appends. Readers emit a batch only once it is marked or
 * its registry shows it committed, so no reader ever sees an event whose change did not commit.
 *
 * Stored lines are untrusted input: every line is parsed and decoded; a line that fails is skipped with a warning by
 * readers and never trusted by writers (a damaged last line is cut off like an uncommitted batch).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"
import { AgentEvent, Seq } from "../domain/Event.js"
import type { TaskId } from "../domain/Ids.js"

/** The journal of a home. */
export const journalPath = (home: string) => NodePath.join(home, ".spawnkit-events.jsonl")

/** A transaction's events, as one journal line. */
export const Batch = Schema.Struct({ tx: Seq, events: Schema.NonEmptyArray(AgentEvent) })
/** @see Batch */
export type Batch = typeof Batch.Type
/** The mark that says the batch ending at `ok` committed. */
const Mark = Schema.Struct({ ok: Seq })
const Line = Schema.Union([Batch, Mark])
/** A decoded journal line. */
export type Line = typeof Line.Type
const decodeLine = Schema.decodeUnknownOption(Line)

/** Parse one line of the journal; undefined for a line that is not valid JSON or not a journal line. */
export const parseLine = (text: string): Line | undefined => {
  try {
    const decoded = decodeLine(JSON.parse(text))
    return decoded._tag === "Some" ? decoded.value : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether a batch's change committed: its task's registry (read by `read`) holds its last sequence number. A task
 * that cannot be read never had the batch committed as far as anyone can tell.
 */
export const committedIn =
  <E>(read: (taskId: TaskId) => Effect.Effect<{ readonly event_seq?: number }, E>) => (batch: Batch) =>
    read(batch.events[0].task_id as TaskId).pipe(
      Effect.map((task) => (task.event_seq ?? 0) >= batch.tx),
      Effect.orElseSucceed(() => false)
    )

/** Whether a decoded line is a batch. */
export const isBatch = (line: Line): line is Batch => "tx" in line

/** A line of the journal with where it starts. */
export interface Located {
  readonly line: Line | undefined
  readonly start: number
  readonly end: number
}

/** Bytes read from the end of the journal to find its last lines. */
const TAIL_BYTES = 64 * 1024

const ioError = (file: string, operation: string) => (e: unknown) =>
  new RegistryIoError({ path: file, operation, ...ioFailure(e) })

/** The complete lines in `text` (which starts at byte `base` of the file), in order. */
export const linesOf = (text: string, base: number): Array<Located> => {
  const out: Array<Located> = []
  let start = 0
  for (;;) {
    const nl = text.indexOf("\n", start)
    if (nl < 0) break
    const raw = text.slice(start, nl)
    const from = base + Buffer.byteLength(text.slice(0, start))
    out.push({
      line: raw.length === 0 ? undefined : parseLine(raw),
      start: from,
      end: from + Buffer.byteLength(raw) + 1
    })
    start = nl + 1
  }
  return out
}

/** The last complete lines of the journal (up to TAIL_BYTES of them, or more if one batch is longer). */
const tailOf = (fd: number, size: number): Array<Located> => {
  let span = Math.min(size, TAIL_BYTES)
  for (;;) {
    const from = size - span
    const buffer = Buffer.alloc(span)
    Fs.readSync(fd, buffer, 0, span, from)
    const text = buffer.toString("utf8")
    // The first line of the window may be cut: skip to the first newline unless the window starts the file.
    const skip = from === 0 ? 0 : text.indexOf("\n") + 1
    const lines = skip === 0 && from !== 0
      ? []
      : linesOf(text.slice(skip), from + Buffer.byteLength(text.slice(0, skip)))
    if (lines.length >= 2 || from === 0) return lines
    span = Math.min(size, span * 4)
  }
}

/** The last complete lines of a journal file, read without the lock (none when it does not exist). */
export const lastLines = (file: string): Array<Located> => {
  let fd: number
  try {
    fd = Fs.openSync(file, "r")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return []
    throw e
  }
  try {
    return tailOf(fd, Fs.fstatSync(fd).size)
  } finally {
    Fs.closeSync(fd)
  }
}

/** The sequence number a line ends at. */
export const seqOf = (line: Line): number => (isBatch(line) ? line.tx : line.ok)

/** What the journal's end says, once resolved: the newest committed sequence number and the file's size. */
export interface Head {
  readonly seq: number
  readonly size: number
}

/**
 * Under the registry lock: settle the journal's end (mark a committed unmarked batch, cut off an uncommitted or
 * damaged one) and return its head. `committed(batch)` reads the batch's task registry.
 */
export const settle = <E>(file: string, committed: (batch: Batch) => Effect.Effect<boolean, E>) =>
  Effect.gen(function*() {
    const fd = yield* Effect.try({ try: () => Fs.openSync(file, "a+"), catch: ioError(file, "open") })
    return yield* Effect.gen(function*() {
      const size = yield* Effect.try({ try: () => Fs.fstatSync(fd).size, catch: ioError(file, "stat") })
      if (size === 0) return { seq: 0, size } satisfies Head
      const lines = yield* Effect.try({ try: () => tailOf(fd, size), catch: ioError(file, "read") })
      const complete = lines.length > 0 ? lines[lines.length - 1]!.end : 0
      // A torn last line (no newline: a crash mid-append) never committed: its registry write comes after.
      if (complete < size) yield* truncate(file, fd, complete)
      const last = lines[lines.length - 1]
      if (last === undefined) return { seq: 0, size: complete } satisfies Head
      if (last.line !== undefined && !isBatch(last.line)) return { seq: last.line.ok, size: complete } satisfies Head
      if (last.line !== undefined && (yield* committed(last.line))) {
        yield* appendText(file, fd, `${JSON.stringify({ ok: last.line.tx })}\n`, false)
        return { seq: last.line.tx, size: complete + markBytes(last.line.tx) } satisfies Head
      }
      yield* truncate(file, fd, last.start)
      const before = lines[lines.length - 2]?.line
      const seq = before === undefined ? 0 : isBatch(before) ? before.tx : before.ok
      return { seq, size: last.start } satisfies Head
    }).pipe(Effect.ensuring(Effect.sync(() => Fs.closeSync(fd))))
  })

const markBytes = (seq: number) => Buffer.byteLength(`${JSON.stringify({ ok: seq })}\n`)

const truncate = (file: string, fd: number, size: number) =>
  Effect.try({ try: () => Fs.ftruncateSync(fd, size), catch: ioError(file, "truncate") })

const appendText = (file: string, fd: number, text: string, durable: boolean) =>
  Effect.try({
    try: () => {
      Fs.writeSync(fd, text)
      if (durable) Fs.fsyncSync(fd)
    },
    catch: ioError(file, "append to")
  })

/** Append a batch durably (step 1); returns the size to cut back to if the registry write fails. */
export const appendBatch = (file: string, batch: Batch) =>
  Effect.try({ try: () => Fs.openSync(file, "a"), catch: ioError(file, "open") }).pipe(
    Effect.flatMap((fd) =>
      Effect.try({ try: () => Fs.fstatSync(fd).size, catch: ioError(file, "stat") }).pipe(
        Effect.tap(() => appendText(file, fd, `${JSON.stringify(batch)}\n`, true)),
        Effect.ensuring(Effect.sync(() => Fs.closeSync(fd)))
      )
    )
  )

/** Mark a batch committed (step 3). */
export const appendMark = (file: string, seq: number) =>
  Effect.try({
    try: () => Fs.appendFileSync(file, `${JSON.stringify({ ok: seq })}\n`),
    catch: ioError(file, "append to")
  })

/** Cut the journal back to `size` (a batch whose registry write failed). */
export const cutBack = (file: string, size: number) =>
  Effect.try({ try: () => Fs.truncateSync(file, size), catch: ioError(file, "truncate") })

/**
 * Under the registry lock, with the journal settled: if it holds more than twice `retain` events, replace it (an
 * atomic rename; readers notice the new file and go on from their sequence number) with its newest whole batches
 * holding at least `retain` events. Returns the journal's size after.
 */
export const compact = <E>(
  file: string,
  retain: number,
  write: (file: string, text: string) => Effect.Effect<void, E>
) =>
  Effect.gen(function*() {
    const text = yield* Effect.try({ try: () => Fs.readFileSync(file, "utf8"), catch: ioError(file, "read") })
    const batches = linesOf(text, 0).flatMap((l) => (l.line !== undefined && isBatch(l.line) ? [l.line] : []))
    const total = batches.reduce((n, b) => n + b.events.length, 0)
    if (total <= 2 * retain) return Buffer.byteLength(text)
    let kept = 0
    let from = batches.length
    while (from > 0 && kept < retain) kept += batches[--from]!.events.length
    const rest = batches.slice(from).map((b) => `${JSON.stringify(b)}\n${JSON.stringify({ ok: b.tx })}\n`).join("")
    yield* write(file, rest)
    return Buffer.byteLength(rest)
  })
