/** One line of each CLI's output to its observations: shapes, subtraction of cached input, limits and their bounds. */
import { describe, expect, it } from "@effect/vitest"
import { parseLine, parseResetText } from "../../../src/metering/Formats.js"
import { NOW } from "./Fixtures.js"

const HOUR = 3_600_000
const WEEK = 7 * 24 * HOUR

describe("parseLine: Claude", () => {
  it("init gives the session and the model", () => {
    const line = `{"type":"system","subtype":"init","session_id":"s-1","model":"claude-opus-4-5-20251101","tools":[]}`
    expect(parseLine("claude", line, NOW)).toEqual([
      { _tag: "Session", sessionId: "s-1" },
      { _tag: "Model", model: "claude-opus-4-5-20251101", sessionId: "s-1" }
    ])
  })

  it("an assistant line gives its message's usage; null cache counts are 0", () => {
    const line = `{"type":"assistant","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":` +
      `{"input_tokens":3,"output_tokens":9,"cache_creation_input_tokens":null}},"session_id":"s-1"}`
    expect(parseLine("claude", line, NOW)).toEqual([{
      _tag: "Usage",
      tokens: { input: 3, output: 9, cache_creation: 0, cache_read: 0 },
      messageId: "msg_1",
      model: "claude-sonnet-4-5",
      sessionId: "s-1"
    }])
  })

  it("a result gives its totals, cost and subtype", () => {
    const line = `{"type":"result","subtype":"error_max_budget_usd","is_error":true,"total_cost_usd":1.5,` +
      `"usage":{"input_tokens":10,"output_tokens":20},"session_id":"s-1"}`
    expect(parseLine("claude", line, NOW)).toEqual([{
      _tag: "Total",
      isError: true,
      tokens: { input: 10, output: 20, cache_creation: 0, cache_read: 0 },
      costUsd: 1.5,
      sessionId: "s-1",
      subtype: "error_max_budget_usd"
    }])
  })

  it("api_retry on 429 or 529 is a limit (60 s without a delay); on other statuses it is not", () => {
    const retry = (status: number, delay?: number) =>
      `{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"error_status":${status},` +
      `"error":"rate_limit"${delay === undefined ? "" : `,"retry_delay_ms":${delay}`}}`
    expect(parseLine("claude", retry(429), NOW)).toEqual([
      { _tag: "Limit", resetsAtMs: NOW + 60_000, reason: "Claude API 429 (rate_limit), retry 2 of 10" }
    ])
    expect(parseLine("claude", retry(529, 5000), NOW)).toMatchObject([{ resetsAtMs: NOW + 5000 }])
    expect(parseLine("claude", retry(401), NOW)).toEqual([])
    expect(parseLine("claude", retry(500, 1000), NOW)).toEqual([])
  })

  it("rate_limit_event: only rejected is a limit; its reset is clamped to [now + 1 s, now + 7 days]", () => {
    const event = (status: string, resetsAt: number | null) =>
      `{"type":"rate_limit_event","rate_limit_info":{"status":"${status}","resetsAt":${resetsAt},` +
      `"rateLimitType":"seven_day"}}`
    expect(parseLine("claude", event("allowed", NOW / 1000 + 60), NOW)).toEqual([])
    expect(parseLine("claude", event("allowed_warning", NOW / 1000 + 60), NOW)).toEqual([])
    expect(parseLine("claude", event("rejected", NOW / 1000 + 60), NOW)).toEqual([
      { _tag: "Limit", resetsAtMs: NOW + 60_000, reason: "Claude usage limit reached (seven_day)" }
    ])
    expect(parseLine("claude", event("rejected", NOW / 1000 + 1e9), NOW)).toMatchObject([{ resetsAtMs: NOW + WEEK }])
    expect(parseLine("claude", event("rejected", 0), NOW)).toMatchObject([{ resetsAtMs: NOW + 1000 }])
    expect(parseLine("claude", event("rejected", null), NOW)).toMatchObject([{ resetsAtMs: NOW + HOUR }])
  })

  it("limit text counts only from the CLI's own error lines, not from the model's words", () => {
    const text = "You've hit your session limit · resets 4pm"
    const said = `{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"${text}"}]}}`
    expect(parseLine("claude", said, NOW)).toEqual([])
    const error = `{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"You've hit your ` +
      `weekly limit"}]},"error":"rate_limit"}`
    expect(parseLine("claude", error, NOW)).toMatchObject([{ _tag: "Limit", resetsAtMs: NOW + HOUR }])
    const ok = `{"type":"result","subtype":"success","is_error":false,"result":"${text}"}`
    expect(parseLine("claude", ok, NOW).filter((o) => o._tag === "Limit")).toEqual([])
  })
})

describe("parseLine: Codex", () => {
  it("thread.started gives the session; turn.completed a total without the cached input", () => {
    expect(parseLine("codex", `{"type":"thread.started","thread_id":"t-1"}`, NOW)).toEqual([
      { _tag: "Session", sessionId: "t-1" }
    ])
    const turn = `{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":800,` +
      `"cache_write_input_tokens":50,"output_tokens":70,"reasoning_output_tokens":30}}`
    expect(parseLine("codex", turn, NOW)).toEqual([{
      _tag: "Total",
      isError: false,
      tokens: { input: 150, output: 70, cache_creation: 50, cache_read: 800 }
    }])
  })

  it("cached input above the input never makes it negative", () => {
    const turn = `{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":800,"output_tokens":1}}`
    expect(parseLine("codex", turn, NOW)).toMatchObject([{ tokens: { input: 0, cache_read: 800 } }])
  })

  it("a usage-limit message is a limit at the time named, else in an hour; other errors are not", () => {
    const failed = (message: string) => `{"type":"turn.failed","error":{"message":"${message}"}}`
    const later = new Date(NOW)
    later.setHours(later.getHours() + 2, 30, 0, 0)
    const clock = `${later.getHours() % 12 || 12}:30 ${later.getHours() < 12 ? "AM" : "PM"}`
    expect(parseLine("codex", failed(`You've hit your usage limit. Try again at ${clock}.`), NOW)).toMatchObject([
      { _tag: "Limit", resetsAtMs: later.getTime() }
    ])
    expect(parseLine("codex", failed("You've hit your usage limit."), NOW)).toMatchObject([
      { resetsAtMs: NOW + HOUR }
    ])
    expect(parseLine("codex", `{"type":"error","message":"Reconnecting... 2/5"}`, NOW)).toEqual([])
    expect(parseLine("codex", failed("Missing environment variable: `OPENAI_API_KEY`."), NOW)).toEqual([])
  })
})

describe("parseLine: Gemini", () => {
  it("init gives session and model; the result's stats a total", () => {
    expect(parseLine("gemini", `{"type":"init","timestamp":"t","session_id":"g-1","model":"gemini-3-pro"}`, NOW))
      .toEqual([{ _tag: "Session", sessionId: "g-1" }, { _tag: "Model", model: "gemini-3-pro", sessionId: "g-1" }])
    const result = `{"type":"result","status":"success","stats":{"total_tokens":130,"input_tokens":100,` +
      `"output_tokens":20,"cached":40,"input":60,"duration_ms":1,"tool_calls":0,"models":{}}}`
    expect(parseLine("gemini", result, NOW)).toEqual([{
      _tag: "Total",
      isError: false,
      tokens: { input: 60, output: 30, cache_creation: 0, cache_read: 40 }
    }])
  })

  it("quota errors are limits: the delay named (s or ms), else a minute; other errors are not", () => {
    const error = (message: string) => `{"type":"error","timestamp":"t","severity":"error","message":"${message}"}`
    expect(parseLine("gemini", error("RESOURCE_EXHAUSTED. Please retry in 23.5s."), NOW)).toMatchObject([
      { resetsAtMs: NOW + 23_500 }
    ])
    expect(parseLine("gemini", error("Quota exceeded, retry in 800ms"), NOW)).toMatchObject([
      { resetsAtMs: NOW + 1000 }
    ])
    expect(parseLine("gemini", error("status 429 Too Many Requests"), NOW)).toMatchObject([
      { resetsAtMs: NOW + 60_000 }
    ])
    expect(parseLine("gemini", error("Maximum session turns exceeded"), NOW)).toEqual([])
  })
})

describe("parseLine: anything else", () => {
  it("none, non-objects, unknown types and wrong field types say nothing", () => {
    const init = `{"type":"system","subtype":"init","session_id":"s","model":"m"}`
    expect(parseLine("none", init, NOW)).toEqual([])
    for (const line of ["", "[]", "null", `"x"`, "42", "{", `{"type":"nope"}`, `{"session_id":1,"type":"system"}`]) {
      for (const format of ["claude", "codex", "gemini"] as const) expect(parseLine(format, line, NOW)).toEqual([])
    }
    expect(parseLine("claude", `{"type":"system","subtype":"init","session_id":42}`, NOW)).toEqual([])
    expect(parseLine("codex", `{"type":"turn.completed","usage":{"input_tokens":"5","output_tokens":1}}`, NOW))
      .toEqual([])
  })

  it("a session id over 200 characters drops the line; a long model name is cut", () => {
    const long = "s".repeat(201)
    expect(parseLine("claude", `{"type":"system","subtype":"init","session_id":"${long}"}`, NOW)).toEqual([])
    const model = "claude-sonnet-4-" + "x".repeat(300)
    const [, named] = parseLine("gemini", `{"type":"init","session_id":"g","model":"${model}"}`, NOW)
    expect(named).toEqual({ _tag: "Model", model: model.slice(0, 200), sessionId: "g" })
  })
})

describe("parseResetText", () => {
  it("a clock time is its next occurrence; a full date is taken when ahead; nothing else parses", () => {
    const at = (h: number, m: number) => {
      const d = new Date(NOW)
      d.setHours(h, m, 0, 0)
      return d.getTime() > NOW ? d.getTime() : d.getTime() + 24 * HOUR
    }
    expect(parseResetText("3:45pm", NOW)).toBe(at(15, 45))
    expect(parseResetText("3pm (Europe/Paris)", NOW)).toBe(at(15, 0))
    expect(parseResetText("12am", NOW)).toBe(at(0, 0))
    expect(parseResetText("Jan 20th, 2026 10:00 AM.", NOW)).toBe(new Date(2026, 0, 20, 10, 0).getTime())
    expect(parseResetText("soon", NOW)).toBeUndefined()
    expect(parseResetText("13pm", NOW)).toBeUndefined()
  })
})
