/**
 * `spawnkit status --watch`: the status snapshot shown once, then again after every event of the journal (a burst
 * coalesced into one redraw), until interrupted. On a terminal it is redrawn in place on the alternate screen; else
 * (or with --json) each snapshot follows the previous one, with no escape codes.
 *
 * Invariant: no change is missed. The journal's head is taken before the first snapshot is read, and the journal is
 * followed from that head: an event at or before it is in the first snapshot, every later one causes a redraw.
 * Invariant: the terminal is given back as it was found. Entering the alternate screen and hiding the cursor is a
 * scoped resource, released on every exit (Ctrl-C, SIGTERM, a failure); the terminal's modes (echo, canonical input,
 * Ctrl-C as SIGINT) are never changed.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { parseTaskId } from "../domain/Decode.js"
import { Events, events } from "../events/Events.js"

/** Where snapshots are drawn: stdout, or a test's buffer. */
export interface Terminal {
  /** Write text as it is (escape codes included). */
  readonly write: (text: string) => void
  /** Whether it is a terminal (redrawn in place) or not (a pipe or a file: one snapshot after another). */
  readonly isTTY: boolean
  /** Its size now. */
  readonly size: () => Size
  /** Call `changed` whenever its size changes; returns the function that stops it. */
  readonly onResize: (changed: () => void) => () => void
  /** Call `closed` when it can no longer be written (its reader went away: EPIPE); returns the function that stops it. */
  readonly onClose: (closed: () => void) => () => void
}

/** A terminal's size in character cells. */
export interface Size {
  readonly columns: number
  readonly rows: number
}

/** The process's stdout (80×24 when a terminal does not say its size). */
export const stdoutTerminal: Terminal = {
  write: (text) => {
    process.stdout.write(text)
  },
  isTTY: process.stdout.isTTY === true,
  size: () => ({ columns: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 }),
  onResize: (changed) => {
    process.stdout.on("resize", changed)
    return () => process.stdout.off("resize", changed)
  },
  // A failed write is reported as an 'error' event, which would end the process with a stack trace if unheard.
  onClose: (closed) => {
    process.stdout.on("error", closed)
    return () => process.stdout.off("error", closed)
  }
}

/** Switch to the alternate screen and hide the cursor. */
export const ENTER_SCREEN = "\x1b[?1049h\x1b[?25l"
/** Show the cursor and switch back to the main screen, as it was before ENTER_SCREEN. */
export const LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l"
const HOME = "\x1b[H"
const CLEAR_LINE = "\x1b[2K"
const CLEAR_BELOW = "\x1b[J"

/** How long events arriving together are gathered into one redraw. */
export const COALESCE_WINDOW = "100 millis"
/** How often a terminal is redrawn with no event, so the ages it shows stay right. */
export const AGE_REFRESH = "5 seconds"
/** Most events gathered into one redraw (a longer burst is drawn in several). */
const MAX_COALESCED = 10_000

/** One snapshot to show: what status shows, as of which journal event, when. */
export interface Frame {
  readonly body: string
  /** The sequence number of the newest event it reflects (the journal's head for the first). */
  readonly seq: number
  readonly atMs: number
}

const headerOf = (frame: Frame) => `seq ${frame.seq}  ${new Date(frame.atMs).toISOString()}`

/**
 * A frame drawn over the previous one: cursor home, every line cleared before it is written (so nothing of a longer
 * previous frame stays) and cut to the screen's width, the rest of the screen cleared. A frame taller than the screen
 * ends with a line saying how many lines are not shown, so the top never scrolls away. No newline after the last
 * line: the screen never scrolls.
 */
export const screenFrame = (frame: Frame, size: Size): string => {
  const columns = Math.max(1, size.columns)
  const rows = Math.max(1, size.rows)
  const lines = [`spawnkit status --watch  ${headerOf(frame)}  (Ctrl-C quits)`, "", ...frame.body.split("\n")]
  const shown = lines.length <= rows
    ? lines
    : [...lines.slice(0, rows - 1), `… ${lines.length - rows + 1} more lines (a taller terminal shows them)`]
  const cut = (line: string) => Array.from(line).slice(0, columns).join("")
  return HOME + shown.map((line) => CLEAR_LINE + cut(line)).join("\r\n") + CLEAR_BELOW
}

/** A frame printed after the previous one (not a terminal): a blank line between them, a header, the snapshot. */
export const plainFrame = (frame: Frame, first: boolean): string =>
  `${first ? "" : "\n"}--- ${headerOf(frame)} ---\n${frame.body}\n`

/** A frame as one line (--json: the snapshot is one JSON document). */
export const lineFrame = (frame: Frame): string => `${frame.body}\n`

/** How snapshots are shown: redrawn in place, printed one after another, or one JSON document per line. */
export type WatchMode = "screen" | "plain" | "lines"

/** The mode for a terminal: JSON is always one document per line; text is redrawn in place only on a terminal. */
export const modeOf = (terminal: Pick<Terminal, "isTTY">, json: boolean): WatchMode =>
  json ? "lines" : terminal.isTTY ? "screen" : "plain"

/** What `watchStatus` is given. */
export interface WatchOptions<E, R> {
  /** The snapshot, read afresh for every frame (text, or a JSON document on one line). */
  readonly render: Effect.Effect<string, E, R>
  /** Only this task's events cause a redraw (the one task shown). */
  readonly task?: string
  readonly mode: WatchMode
  readonly terminal: Terminal
}

/** A redraw's cause: an event (its sequence number) or something else (a tick for ages, a resize). */
type Trigger = Option.Option<number>

/** The terminal's size changes, as a stream. */
const resizes = (terminal: Terminal): Stream.Stream<Trigger> =>
  Stream.callback<Trigger>((queue) =>
    Effect.acquireRelease(
      Effect.sync(() => terminal.onResize(() => Queue.offerUnsafe(queue, Option.none()))),
      (stop) => Effect.sync(stop)
    )
  )

/**
 * Show the status until interrupted, or until the terminal can no longer be written (`status --watch | head`: the
 * reader has gone, and the watch ends quietly); fails when a snapshot or the journal cannot be read.
 */
export const watchStatus = <E, R>(options: WatchOptions<E, R>) =>
  Effect.gen(function*() {
    const { mode, render, terminal } = options
    const taskId = options.task === undefined ? undefined : yield* parseTaskId(options.task)
    // Invariant: the head first, then the snapshot (see the module's header).
    const head = yield* Events.use((e) => e.head)
    let frame: Frame = { body: yield* render, seq: head, atMs: yield* Clock.currentTimeMillis }
    let first = true
    // Listened to before anything is written: a write to a reader that has gone ends the watch.
    const gone = yield* Deferred.make<void>()
    yield* Effect.acquireRelease(
      Effect.sync(() => terminal.onClose(() => Deferred.doneUnsafe(gone, Effect.void))),
      (stop) => Effect.sync(stop)
    )
    if (mode === "screen") {
      yield* Effect.acquireRelease(
        Effect.sync(() => terminal.write(ENTER_SCREEN)),
        () => Effect.sync(() => terminal.write(LEAVE_SCREEN))
      )
    }
    const draw = Effect.sync(() => {
      terminal.write(
        mode === "screen"
          ? screenFrame(frame, terminal.size())
          : mode === "plain"
          ? plainFrame(frame, first)
          : lineFrame(frame)
      )
      first = false
    })
    yield* draw
    const changes = events({ since: head, follow: true, ...(taskId !== undefined ? { taskId } : {}) }).pipe(
      Stream.map((e): Trigger => Option.some(e.seq))
    )
    const triggers = mode === "screen"
      ? Stream.mergeAll([
        changes,
        resizes(terminal),
        Stream.tick(AGE_REFRESH).pipe(Stream.drop(1), Stream.map((): Trigger => Option.none()))
      ], { concurrency: "unbounded" })
      : changes
    const redraws = triggers.pipe(
      Stream.groupedWithin(MAX_COALESCED, COALESCE_WINDOW),
      Stream.runForEach((group) =>
        Effect.gen(function*() {
          const seq = group.reduce((newest, t) => (Option.isSome(t) && t.value > newest ? t.value : newest), frame.seq)
          frame = { body: yield* render, seq, atMs: yield* Clock.currentTimeMillis }
          yield* draw
        })
      ),
      Effect.andThen(Effect.never)
    )
    return yield* Effect.raceFirst(redraws, Deferred.await(gone))
  }).pipe(Effect.scoped)
