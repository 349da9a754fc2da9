/**
 * `status --watch` against an in-memory journal and a terminal that records what is written: the first snapshot, one
 * redraw per burst of events (none missed, even one committed while the first snapshot is read), the screen left and
 * the cursor shown again however the watch ends, and snapshots without escape codes when not on a terminal.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import { TestClock } from "effect/testing"
import {
  ENTER_SCREEN,
  LEAVE_SCREEN,
  modeOf,
  plainFrame,
  screenFrame,
  type Terminal,
  type WatchMode,
  watchStatus
} from "../../../src/cli/StatusWatch.js"
import type { EventDraft } from "../../../src/domain/Event.js"
import { AgentId, TaskId } from "../../../src/domain/Ids.js"
import { makeInMemoryEvents } from "../support/InMemoryEvents.js"

const T = Schema.decodeUnknownSync(TaskId)("TASK-20261202-120000-ffffffff")
const OTHER = Schema.decodeUnknownSync(TaskId)("TASK-20261202-120000-00000000")
const A = Schema.decodeUnknownSync(AgentId)("w-120000-aaaaaaaa")
const AT = "2026-12-02T12:00:00.000Z"
const spawned = (taskId = T): EventDraft => ({
  at: AT,
  task_id: taskId,
  agent_id: A,
  kind: "spawned",
  status: "running"
})

/** A terminal that keeps what is written, and the resize and close listeners it was given. */
const recordingTerminal = (isTTY = true) => {
  let written = ""
  const listeners = new Set<() => void>()
  const closeListeners = new Set<() => void>()
  const terminal: Terminal = {
    write: (text) => {
      written += text
    },
    isTTY,
    size: () => ({ columns: 100, rows: 20 }),
    onResize: (changed) => {
      listeners.add(changed)
      return () => listeners.delete(changed)
    },
    onClose: (closed) => {
      closeListeners.add(closed)
      return () => closeListeners.delete(closed)
    }
  }
  return {
    terminal,
    written: () => written,
    resize: () => listeners.forEach((f) => f()),
    close: () => closeListeners.forEach((f) => f()),
    listeners,
    closeListeners
  }
}

/** The frames drawn on a screen, each as its lines (escape codes removed). */
const screenFrames = (written: string) =>
  written.split("\x1b[H").slice(1).map((f) =>
    f.replaceAll("\x1b[2K", "").replace("\x1b[J", "").replace(LEAVE_SCREEN, "").split("\r\n")
  )

/** Let the watch's fibers run until nothing is left to do now. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Start a watch whose snapshot counts its reads (`read N`), with the journal's `append`. */
const startWatch = (mode: WatchMode, options: { readonly task?: string; readonly failOnRead?: number } = {}) =>
  Effect.gen(function*() {
    const journal = yield* makeInMemoryEvents
    const rec = recordingTerminal(mode === "screen")
    let reads = 0
    let onFirstRead: Effect.Effect<unknown> = Effect.void
    const render = Effect.suspend(() => {
      reads++
      if (reads === options.failOnRead) return Effect.fail("the registry could not be read" as const)
      return Effect.as(
        reads === 1 ? onFirstRead : Effect.void,
        mode === "lines" ? `{"read":${reads}}` : `read ${reads}`
      )
    })
    const start = Effect.gen(function*() {
      const fiber = yield* watchStatus({
        render,
        mode,
        terminal: rec.terminal,
        ...(options.task !== undefined ? { task: options.task } : {})
      }).pipe(Effect.provide(journal.layer), Effect.forkChild)
      yield* settle
      return fiber
    })
    return {
      ...rec,
      append: (draft: EventDraft = spawned()) => journal.append(draft),
      reads: () => reads,
      /** Run this while the first snapshot is read (a change committing in between). */
      duringFirstRead: (effect: Effect.Effect<unknown>) => {
        onFirstRead = effect
      },
      start
    }
  })

describe("watchStatus on a terminal", () => {
  it.effect("draws the first snapshot, then one redraw per burst of events, with the newest event's seq", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("screen")
      yield* w.append()
      const fiber = yield* w.start
      expect(w.written().startsWith(ENTER_SCREEN)).toBe(true)
      expect(screenFrames(w.written())).toEqual([[
        "spawnkit status --watch  seq 1  1970-01-01T00:00:00.000Z  (Ctrl-C quits)",
        "",
        "read 1"
      ]])
      // Three events within the coalescing window: one redraw, once the window has passed.
      yield* w.append()
      yield* w.append()
      yield* w.append()
      yield* settle
      expect(w.reads()).toBe(1)
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect(w.reads()).toBe(2)
      expect(screenFrames(w.written()).at(-1)).toEqual([
        "spawnkit status --watch  seq 4  1970-01-01T00:00:00.100Z  (Ctrl-C quits)",
        "",
        "read 2"
      ])
      yield* Fiber.interrupt(fiber)
      expect(w.written().endsWith(LEAVE_SCREEN)).toBe(true)
      expect(w.listeners.size).toBe(0)
    }))

  it.effect("misses no event: one committed while the first snapshot is read is redrawn", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("screen")
      w.duringFirstRead(w.append())
      const fiber = yield* w.start
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect(w.reads()).toBe(2)
      expect(screenFrames(w.written()).map((f) => f[0]!.split("  ")[1])).toEqual(["seq 0", "seq 1"])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("with a task, only that task's events redraw it", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("screen", { task: T })
      const fiber = yield* w.start
      yield* w.append(spawned(OTHER))
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect(w.reads()).toBe(1)
      yield* w.append(spawned(T))
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect(w.reads()).toBe(2)
      expect(screenFrames(w.written()).at(-1)![0]).toContain("seq 2")
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("redraws on a resize, and every 5 s for the ages it shows", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("screen")
      const fiber = yield* w.start
      expect(w.listeners.size).toBe(1)
      w.resize()
      yield* settle
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect(w.reads()).toBe(2)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      expect(w.reads()).toBe(3)
      // Neither is an event: the seq stays the head's.
      expect(screenFrames(w.written()).map((f) => f[0]!.split("  ")[1])).toEqual(["seq 0", "seq 0", "seq 0"])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a snapshot that cannot be read ends the watch with its error, the screen left and the cursor shown", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("screen", { failOnRead: 2 })
      const fiber = yield* w.start
      yield* w.append()
      yield* TestClock.adjust("100 millis")
      yield* settle
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag === "Failure" && String(exit.cause)).toContain("the registry could not be read")
      expect(w.written().endsWith(LEAVE_SCREEN)).toBe(true)
    }))

  it.effect("a first snapshot that cannot be read fails before the screen is entered", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("screen", { failOnRead: 1 })
      const fiber = yield* w.start
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
      expect(w.written()).toBe("")
    }))
})

describe("watchStatus without a terminal", () => {
  it.effect("ends quietly when its reader has gone (a closed pipe), and stops listening", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("plain")
      const fiber = yield* w.start
      expect(w.closeListeners.size).toBe(1)
      w.close()
      yield* settle
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Success")
      expect(w.closeListeners.size).toBe(0)
      expect(w.reads()).toBe(1)
    }))

  it.effect("prints one snapshot per change, each under a header with its seq and time, no escape codes", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("plain")
      const fiber = yield* w.start
      yield* w.append()
      yield* TestClock.adjust("100 millis")
      yield* settle
      yield* w.append()
      yield* TestClock.adjust("100 millis")
      yield* settle
      yield* Fiber.interrupt(fiber)
      expect(w.written()).toBe(
        [
          "--- seq 0  1970-01-01T00:00:00.000Z ---",
          "read 1",
          "",
          "--- seq 1  1970-01-01T00:00:00.100Z ---",
          "read 2",
          "",
          "--- seq 2  1970-01-01T00:00:00.200Z ---",
          "read 3",
          ""
        ].join("\n")
      )
      // No timer either: with no event, nothing more is printed.
      yield* TestClock.adjust("1 minute")
      expect(w.reads()).toBe(3)
    }))

  it.effect("with --json, one document per line per change", () =>
    Effect.gen(function*() {
      const w = yield* startWatch("lines")
      const fiber = yield* w.start
      yield* w.append()
      yield* TestClock.adjust("100 millis")
      yield* settle
      yield* Fiber.interrupt(fiber)
      expect(w.written()).toBe("{\"read\":1}\n{\"read\":2}\n")
    }))
})

describe("frames", () => {
  it.effect("a screen frame is cut to the screen's width and height and never scrolls it", () =>
    Effect.sync(() => {
      const body = ["x".repeat(30), ...Array.from({ length: 10 }, (_, i) => `line ${i}`)].join("\n")
      const frame = screenFrame({ body, seq: 7, atMs: 0 }, { columns: 12, rows: 6 })
      expect(frame.startsWith("\x1b[H")).toBe(true)
      expect(frame.endsWith("\x1b[J")).toBe(true)
      expect(frame.slice(3, -3).split("\r\n")).toEqual([
        "\x1b[2Kspawnkit sta",
        "\x1b[2K",
        "\x1b[2K" + "x".repeat(12),
        "\x1b[2Kline 0",
        "\x1b[2Kline 1",
        "\x1b[2K… 8 more lin"
      ])
    }))

  it.effect("a plain frame has a header and, after the first, a blank line before it", () =>
    Effect.sync(() => {
      expect(plainFrame({ body: "a\nb", seq: 3, atMs: 0 }, true)).toBe(
        "--- seq 3  1970-01-01T00:00:00.000Z ---\na\nb\n"
      )
      expect(plainFrame({ body: "a", seq: 4, atMs: 0 }, false)).toBe("\n--- seq 4  1970-01-01T00:00:00.000Z ---\na\n")
    }))

  it.effect("JSON is one document per line, on a terminal too; text is redrawn in place only on a terminal", () =>
    Effect.sync(() => {
      expect(modeOf({ isTTY: true }, true)).toBe("lines")
      expect(modeOf({ isTTY: false }, true)).toBe("lines")
      expect(modeOf({ isTTY: true }, false)).toBe("screen")
      expect(modeOf({ isTTY: false }, false)).toBe("plain")
    }))
})
