/**
 * Events over the file journal (see registry/FileJournal.ts for how batches commit). A reader keeps its byte offset
 * in the journal and the batch it has read but not yet seen committed; it emits a batch once its mark follows or its
 * task's registry shows it committed, and drops it if the journal is cut back before it. Wake-ups come from one
 * inotify watch of the home directory per process (the journal is replaced, not edited, when it is compacted).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"
import type { AgentEvent } from "../domain/Event.js"
import { Events } from "../events/Events.js"
import { type Cursor, follow, type Page } from "../events/Follow.js"
import { makeWakeups } from "../events/Wakeups.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { type Batch, committedIn, isBatch, journalPath, lastLines, linesOf, seqOf } from "./FileJournal.js"
import { Registry } from "./Registry.js"

/** Most bytes one read takes from the journal. */
const READ_BYTES = 1 << 20
/** How long a follower waits for a wake-up before it looks anyway (a missed inotify event costs at most this). */
const FALLBACK_MS = 1000
/** How soon a follower looks again at a batch whose commit is under way. */
const SOON_MS = 5

interface Pending {
  readonly batch: Batch
  readonly start: number
}

/** Where a reader is in the journal, and the batch it has read but not yet seen committed. */
interface ReaderState {
  ino: number
  offset: number
  pending: Pending | undefined
  oldest: number | undefined
}

/** The journal's bytes from the reader's offset (up to READ_BYTES); empty when none or no journal. */
const readChunk = (file: string, state: ReaderState): string => {
  let stat: Fs.Stats
  try {
    stat = Fs.statSync(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return ""
    throw e
  }
  // A new file (compacted) is read from its start; an old one cut back (an uncommitted batch) from the cut.
  if (stat.ino !== state.ino || stat.size < state.offset) {
    if (stat.ino !== state.ino) state.oldest = undefined
    state.offset = stat.ino !== state.ino ? 0 : Math.min(state.pending?.start ?? stat.size, stat.size)
    state.ino = stat.ino
    state.pending = undefined
  }
  const length = Math.min(stat.size - state.offset, READ_BYTES)
  if (length <= 0) return ""
  const buffer = Buffer.alloc(length)
  const fd = Fs.openSync(file, "r")
  try {
    Fs.readSync(fd, buffer, 0, length, state.offset)
  } finally {
    Fs.closeSync(fd)
  }
  return buffer.toString("utf8")
}

/** The file-journal Events layer. */
export const layer = Layer.effect(
  Events,
  Effect.gen(function*() {
    const { home } = yield* SpawnkitConfig
    const registry = yield* Registry
    const file = journalPath(home)
    const name = NodePath.basename(file)
    const wakeups = yield* makeWakeups((signal) => {
      const watcher = Fs.watch(home, { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) signal()
      })
      watcher.on("error", () => signal())
      return () => watcher.close()
    })
    const ioError = (operation: string) => (e: unknown) =>
      new RegistryIoError({ path: file, operation, ...ioFailure(e) })

    const committed = committedIn(registry.read)

    /** A fresh reader: its position in the journal file (by inode) and the batch waiting for its commit. */
    const open = Effect.sync((): Cursor => {
      const state: ReaderState = { ino: -1, offset: 0, pending: undefined, oldest: undefined }
      const chunk = () => readChunk(file, state)
      const read = (after: number) =>
        Effect.gen(function*() {
          const text = yield* Effect.try({ try: chunk, catch: ioError("read") })
          const events: Array<AgentEvent> = []
          const emit = (batch: Batch) => {
            state.oldest ??= batch.events[0].seq
            for (const e of batch.events) if (e.seq > after) events.push(e)
          }
          for (const located of linesOf(text, state.offset)) {
            state.offset = located.end
            const line = located.line
            if (line === undefined) {
              yield* Effect.logWarning(`skipped an unreadable line at byte ${located.start} of ${file}`)
            } else if (isBatch(line)) {
              if (state.pending !== undefined) emit(state.pending.batch)
              state.pending = { batch: line, start: located.start }
            } else if (state.pending !== undefined && state.pending.batch.tx === line.ok) {
              emit(state.pending.batch)
              state.pending = undefined
            }
          }
          if (state.pending !== undefined && (yield* committed(state.pending.batch))) {
            emit(state.pending.batch)
            state.pending = undefined
          }
          const size = yield* Effect.try({
            try: () => (Fs.existsSync(file) ? Fs.statSync(file).size : 0),
            catch: ioError("stat")
          })
          const more = text.length > 0 && state.offset < size
          return {
            events,
            ...(state.oldest !== undefined ? { oldest: state.oldest } : {}),
            soon: state.pending !== undefined,
            more
          } satisfies Page
        })
      return {
        read,
        generation: wakeups.generation,
        wait: (generation, soon) => wakeups.wait(generation, soon ? SOON_MS : FALLBACK_MS)
      }
    })

    // The newest committed number, from the journal's last lines: a batch still waiting for its commit does not count.
    const head = Effect.gen(function*() {
      const lines = yield* Effect.try({ try: () => lastLines(file), catch: ioError("read") })
      const known = lines.filter((l) => l.line !== undefined).map((l) => l.line!)
      const last = known[known.length - 1]
      if (last === undefined) return 0
      if (!isBatch(last) || (yield* committed(last))) return seqOf(last)
      const before = known[known.length - 2]
      return before === undefined ? 0 : isBatch(before) ? before.tx : before.ok
    })

    return Events.of({ stream: (query) => follow(open, query), head })
  })
)
