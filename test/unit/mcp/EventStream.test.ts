/** What a GET /events request asks for: Last-Event-ID over `since`, digits only, the task as given. */
import { describe, expect, it } from "@effect/vitest"
import { eventRequest, parseSeq } from "../../../src/mcp/EventStream.js"

const url = (query = "") => new URL(`http://127.0.0.1/events${query}`)

describe("event stream requests", () => {
  it("parseSeq takes plain decimal sequence numbers only", () => {
    expect(parseSeq("0")).toBe(0)
    expect(parseSeq("42")).toBe(42)
    for (const bad of ["", "-1", "1.5", "1e3", "0x10", " 7", "12345678901234567", "abc"]) {
      expect(parseSeq(bad)).toBeUndefined()
    }
  })

  it("Last-Event-ID wins over since; the task is passed on for validation", () => {
    expect(eventRequest(url("?since=3&task=TASK-x"), "9")).toEqual({ since: 9, task: "TASK-x" })
    expect(eventRequest(url("?since=3"), undefined)).toEqual({ since: 3 })
    expect(eventRequest(url(), undefined)).toEqual({})
  })

  it("a malformed Last-Event-ID or since is refused, naming which", () => {
    expect(eventRequest(url(), "x1")).toEqual({ refused: "Last-Event-ID must be a sequence number" })
    expect(eventRequest(url("?since=-2"), undefined)).toEqual({ refused: "since must be a sequence number" })
  })
})
