/**
 * The pure parts of the MCP resources and logging: URI parsing, which resources an event changes, the timeline's
 * merge, log levels and event records; and the subscription follower on an in-memory journal (every event after the
 * head, in order, none repeated).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type { AgentEvent, EventDraft } from "../../../src/domain/Event.js"
import type { AgentId, TaskId } from "../../../src/domain/Ids.js"
import { isAtLeast, isLogLevel, recordOfEvent, recordOfToolFailure } from "../../../src/mcp/Logging.js"
import { parseResourceUri, urisChangedBy } from "../../../src/mcp/resources/ResourceUris.js"
import { followEvents } from "../../../src/mcp/resources/Subscriptions.js"
import { buildTimeline } from "../../../src/mcp/resources/Timeline.js"
import { makeInMemoryEvents } from "../support/InMemoryEvents.js"

const TASK = "TASK-20260101-000000-abcdef12" as TaskId
const OTHER = "TASK-20260101-000000-00000000" as TaskId
const AGENT = "alpha-000000-aaaaaa" as AgentId

const draft = (kind: AgentEvent["kind"], at: string, extra: Partial<EventDraft> = {}): EventDraft => ({
  at,
  task_id: TASK,
  agent_id: AGENT,
  kind,
  status: "running",
  ...extra
})

describe("resource URIs", () => {
  it.effect("parses the three resources", () =>
    Effect.gen(function*() {
      expect(yield* parseResourceUri("tasks://list")).toEqual({ _tag: "TasksList" })
      expect(yield* parseResourceUri(`task://${TASK}/status`)).toEqual({ _tag: "Task", taskId: TASK, view: "status" })
      expect(yield* parseResourceUri(`task://${TASK}/progress-timeline`)).toMatchObject({ view: "progress-timeline" })
    }))

  it.effect("refuses anything else as InvalidInput on uri", () =>
    Effect.gen(function*() {
      for (const uri of ["", "tasks://", `task://${TASK}`, `task://${TASK}/status/x`, "task://../status", "x://y"]) {
        const exit = yield* Effect.exit(parseResourceUri(uri))
        expect(Exit.isFailure(exit), uri).toBe(true)
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        expect(error, uri).toMatchObject({ error: { _tag: "InvalidInput", field: "uri" } })
      }
    }))

  it("an event changes its task's status and timeline and the listing", () => {
    expect(urisChangedBy({ ...draft("spawned", "2026-01-01T00:00:00.000Z"), seq: 1 })).toEqual([
      `task://${TASK}/status`,
      `task://${TASK}/progress-timeline`,
      "tasks://list"
    ])
  })
})

describe("timeline", () => {
  it("merges state changes from the journal with the report logs, in time order, the latest kept", () => {
    const events: Array<AgentEvent> = [
      { ...draft("spawned", "2026-01-01T00:00:01.000Z"), seq: 1 },
      { ...draft("progress", "2026-01-01T00:00:02.000Z", { message: "dup" }), seq: 2 },
      { ...draft("exited", "2026-01-01T00:00:04.000Z", { status: "completed", exit_code: 0 }), seq: 3 }
    ]
    const progress = [{ timestamp: "2026-01-01T00:00:02.000Z", agent_id: AGENT, status: "working", message: "half" }]
    const findings = [
      { timestamp: "2026-01-01T00:00:03.000Z", agent_id: AGENT, finding_type: "issue", message: "slow" },
      { unparsed: "garbage" }
    ]
    const timeline = buildTimeline(TASK, events, { progress, findings })
    expect(timeline.entries.map((e) => e.kind)).toEqual(["spawned", "progress", "finding", "exited"])
    expect(timeline.entries[1]).toMatchObject({ message: "half" })
    expect(timeline.entries[3]).toMatchObject({ status: "completed", exit_code: 0 })
    expect(timeline.truncated).toBe(false)
    const latest = buildTimeline(TASK, events, { progress, findings }, 2)
    expect(latest.entries.map((e) => e.kind)).toEqual(["finding", "exited"])
    expect(latest.truncated).toBe(true)
  })
})

describe("logging", () => {
  it("orders the eight levels and validates a level", () => {
    expect(isAtLeast("error", "warning")).toBe(true)
    expect(isAtLeast("warning", "warning")).toBe(true)
    expect(isAtLeast("notice", "warning")).toBe(false)
    expect(isLogLevel("emergency")).toBe(true)
    expect(isLogLevel("loud")).toBe(false)
    expect(isLogLevel(3)).toBe(false)
  })

  it("events become records of their task: ends not asked for warn", () => {
    const spawned = recordOfEvent({ ...draft("spawned", "2026-01-01T00:00:00.000Z"), seq: 1 })
    expect(spawned).toMatchObject({ level: "notice", taskId: TASK })
    expect(spawned.message).toContain(AGENT)
    const ok = recordOfEvent({ ...draft("exited", "2026-01-01T00:00:00.000Z", { status: "completed" }), seq: 2 })
    expect(ok.level).toBe("notice")
    const failed = recordOfEvent({
      ...draft("exited", "2026-01-01T00:00:00.000Z", { status: "failed", exit_code: 3 }),
      seq: 3
    })
    expect(failed.level).toBe("warning")
    expect(failed.message).toContain("exit code 3")
    expect(recordOfEvent({ ...draft("lost", "2026-01-01T00:00:00.000Z"), seq: 4 }).level).toBe("warning")
  })

  it("a refused call warns; the server's own failure is an error", () => {
    expect(recordOfToolFailure("spawn_child_agent", "LimitReached", "x").level).toBe("warning")
    expect(recordOfToolFailure("get_real_task_status", "RegistryCorrupt", "x").level).toBe("error")
    expect(recordOfToolFailure("kill_real_agent", "Defect", "x").level).toBe("error")
  })
})

describe("following the journal", () => {
  it.live("emits every event after the head, in order, of the task followed", () =>
    Effect.gen(function*() {
      const journal = yield* makeInMemoryEvents
      yield* journal.append(draft("spawned", "2026-01-01T00:00:00.000Z"))
      const seen: Array<AgentEvent> = []
      const fiber = yield* Effect.forkChild(
        followEvents(1, TASK, (event) => Effect.sync(() => void seen.push(event))).pipe(Effect.provide(journal.layer))
      )
      yield* journal.append(draft("progress", "2026-01-01T00:00:01.000Z"))
      yield* journal.append(draft("spawned", "2026-01-01T00:00:02.000Z", { task_id: OTHER }))
      yield* journal.append(draft("killed", "2026-01-01T00:00:03.000Z", { status: "killed" }))
      while (seen.length < 2) yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      expect(seen.map((e) => [e.seq, e.kind])).toEqual([[2, "progress"], [4, "killed"]])
    }))
})
