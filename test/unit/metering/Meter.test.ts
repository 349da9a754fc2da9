/**
 * The meter's fold: each fixture to its hand-computed totals; the same state whatever the chunking; hostile lines that
 * never throw and never lower a count, a cost or the offset.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { AgentUsage, emptyUsage } from "../../../src/domain/Usage.js"
import { MAX_LINE_BYTES, meterChunk } from "../../../src/metering/Meter.js"
import { assertNotLower, context, fixture, FIXTURES, lines, meterInSteps, NOW, random } from "./Fixtures.js"

const CLAUDE_SESSION = "5d1c0f0e-7f4b-4a43-9c1e-3b2f6a1d9e10"
const decodeUsage = Schema.decodeUnknownSync(AgentUsage)

/** The local time of the next 4 pm after NOW (Claude prints reset times in local time). */
const expectNextLocal4pm = (ms: number) => {
  const at = new Date(ms)
  expect([at.getHours(), at.getMinutes()]).toEqual([16, 0])
  expect(ms).toBeGreaterThan(NOW)
  expect(ms).toBeLessThanOrEqual(NOW + 24 * 3600_000)
}

describe("meterChunk: the fixtures", () => {
  it("claude-stream: a message id counted once at its largest usage; the result's excess added; cost the max", () => {
    const bytes = fixture("claude-stream.jsonl")
    const { usage, limits } = meterChunk(emptyUsage, bytes, context("claude"))
    // Messages: 13 input, 420 output, 2500 written, 22000 read; the result's modelUsage adds 400 input, 50 output.
    expect(usage.tokens).toEqual({ input: 413, output: 470, cache_creation: 2500, cache_read: 22000 })
    // Sonnet (3/15/3.75/0.3 per million): message A 12309e-6, message B 10005e-6, excess 400*3 + 50*15 = 1950e-6.
    expect(usage.estimated_cost_usd).toBeCloseTo(0.024264, 12)
    expect(usage.reported_cost_usd).toBe(0.022964)
    expect(usage.cost_usd).toBeCloseTo(0.024264, 12)
    expect(usage.model).toBe("claude-sonnet-4-5-20250929")
    expect(usage.session_id).toBe(CLAUDE_SESSION)
    expect(usage.log_offset).toBe(bytes.length)
    expect(usage.messages).toEqual([
      { id: "msg_01AbCdEfGhIjKlMnOpQrStUv", input: 3, output: 120, cache_creation: 2000, cache_read: 10000 },
      { id: "msg_01XyZaBcDeFgHiJkLmNoPqRs", input: 10, output: 300, cache_creation: 500, cache_read: 12000 }
    ])
    // The api_retry on 529 waits 2 s; the rate_limit_event "allowed" is no limit.
    expect(limits).toEqual([{ resetsAtMs: NOW + 2000, reason: "Claude API 529 (overloaded), retry 1 of 10" }])
    expect(usage.limit).toEqual({ resets_at: "2026-01-15T12:00:02.000Z", reason: limits[0]!.reason })
    expect(usage.skipping).toBeUndefined()
    // What the fold returns is a valid stored record.
    expect(decodeUsage(usage)).toEqual(usage)
  })

  it("claude-rate-limited: the rejected rate_limit_event at its resetsAt, the limit texts at the next 4 pm", () => {
    const { usage, limits } = meterChunk(emptyUsage, fixture("claude-rate-limited.jsonl"), context("claude"))
    expect(usage.tokens).toEqual({ input: 4, output: 50, cache_creation: 1000, cache_read: 0 })
    // 4*3 + 50*15 + 1000*3.75 = 4512 millionths.
    expect(usage.estimated_cost_usd).toBeCloseTo(0.004512, 12)
    expect(usage.reported_cost_usd).toBe(0.004512)
    expect(limits.map((l) => l.reason)).toEqual([
      "Claude usage limit reached (five_hour)",
      "You've hit your session limit · resets 4pm",
      "You've hit your session limit · resets 4pm"
    ])
    expect(limits[0]!.resetsAtMs).toBe(1_768_492_800_000)
    expectNextLocal4pm(limits[1]!.resetsAtMs)
    expect(limits[2]!.resetsAtMs).toBe(limits[1]!.resetsAtMs)
    expect(usage.limit?.resets_at).toBe(new Date(limits[2]!.resetsAtMs).toISOString())
  })

  it("claude-max-budget: opus 4.5 prices; the reported cost wins", () => {
    const { usage } = meterChunk(emptyUsage, fixture("claude-max-budget.jsonl"), context("claude"))
    expect(usage.tokens).toEqual({ input: 2, output: 400, cache_creation: 20000, cache_read: 60000 })
    // 2*5 + 400*25 + 20000*6.25 + 60000*0.5 = 165010 millionths.
    expect(usage.estimated_cost_usd).toBeCloseTo(0.16501, 12)
    expect(usage.reported_cost_usd).toBe(0.52)
    expect(usage.cost_usd).toBe(0.52)
    expect(usage.model).toBe("claude-opus-4-5-20251101")
  })

  it("codex-exec: turn.completed is the thread's running total, cached input taken out", () => {
    const { usage, limits } = meterChunk(emptyUsage, fixture("codex-exec.jsonl"), context("codex"))
    // Last total: 50102 input of which 48896 cached, 310 output.
    expect(usage.tokens).toEqual({ input: 1206, output: 310, cache_creation: 0, cache_read: 48896 })
    // gpt-5: 1206*1.25 + 48896*0.125 + 310*10 = 10719.5 millionths.
    expect(usage.estimated_cost_usd).toBeCloseTo(0.0107195, 12)
    expect(usage.reported_cost_usd).toBeUndefined()
    expect(usage.cost_usd).toBe(usage.estimated_cost_usd)
    expect(usage.session_id).toBe("0199a213-81c0-7800-8aa1-bbab2a035a53")
    expect(limits).toEqual([])
  })

  it("codex-usage-limit: both the error and turn.failed give the time named", () => {
    const { usage, limits } = meterChunk(emptyUsage, fixture("codex-usage-limit.jsonl"), context("codex"))
    const at = new Date(2026, 0, 17, 9, 15).getTime()
    expect(limits.map((l) => l.resetsAtMs)).toEqual([at, at])
    expect(limits[0]!.reason).toMatch(/^You've hit your usage limit\./)
    expect(usage.tokens).toEqual({ input: 0, output: 0, cache_creation: 0, cache_read: 0 })
  })

  it("gemini-stream: cached input taken out, thinking tokens priced as output", () => {
    const { usage, limits } = meterChunk(emptyUsage, fixture("gemini-stream.jsonl"), context("gemini"))
    // 16000 input of which 12000 cached; 400 output + (18000 - 16000 - 400) unlisted.
    expect(usage.tokens).toEqual({ input: 4000, output: 2000, cache_creation: 0, cache_read: 12000 })
    // gemini-2.5-pro: 4000*1.25 + 2000*10 + 12000*0.31 = 28720 millionths.
    expect(usage.estimated_cost_usd).toBeCloseTo(0.02872, 12)
    expect(usage.model).toBe("gemini-2.5-pro")
    expect(usage.session_id).toBe("c7a2e0a4-93b1-4f6e-8d2a-0e5f1b3c4d5e")
    expect(limits).toEqual([])
  })

  it("gemini-quota: the delay named, and an hour for a daily quota", () => {
    const { usage, limits } = meterChunk(emptyUsage, fixture("gemini-quota.jsonl"), context("gemini"))
    expect(limits.map((l) => l.resetsAtMs)).toEqual([NOW + 23_500, NOW + 3_600_000])
    expect(usage.limit).toEqual({
      resets_at: "2026-01-15T13:00:00.000Z",
      reason: "You have exhausted your daily quota on this model."
    })
    expect(usage.cost_usd).toBe(0)
  })

  it("format none meters nothing but consumes the lines", () => {
    const bytes = fixture("claude-stream.jsonl")
    const { usage } = meterChunk(emptyUsage, bytes, { ...context("claude"), format: "none" })
    expect(usage).toEqual({ ...emptyUsage, log_offset: bytes.length })
  })
})

describe("meterChunk: split anywhere, same state", () => {
  it("the claude fixture cut at every byte boundary", () => {
    const bytes = fixture("claude-stream.jsonl")
    const whole = meterChunk(emptyUsage, bytes, context("claude"))
    for (let cut = 0; cut <= bytes.length; cut++) {
      const split = meterInSteps(bytes, [cut], context("claude"))
      expect(split.usage).toEqual(whole.usage)
      expect(split.limits).toEqual(whole.limits)
    }
  })

  it("every fixture, and all of them in one log, cut at random places", () => {
    const next = random(20260115)
    const all = FIXTURES.map(([name, format]) => [fixture(name), format] as const)
    for (const [bytes, format] of all) {
      const whole = meterChunk(emptyUsage, bytes, context(format))
      for (let round = 0; round < 200; round++) {
        const cuts = Array.from({ length: 1 + Math.floor(next() * 12) }, () => Math.floor(next() * bytes.length))
        const split = meterInSteps(bytes, cuts, context(format))
        expect(split.usage).toEqual(whole.usage)
        expect(split.limits).toEqual(whole.limits)
      }
    }
  })

  it("a chunk that ends inside a line leaves the line for the next call", () => {
    const bytes = fixture("codex-exec.jsonl")
    const firstNewline = bytes.indexOf(10)
    const { usage } = meterChunk(emptyUsage, bytes.subarray(0, firstNewline), context("codex", { final: false }))
    expect(usage.log_offset).toBe(0)
    expect(usage.session_id).toBeUndefined()
    const after = meterChunk(usage, bytes.subarray(0, firstNewline + 1), context("codex", { final: false }))
    expect(after.usage.log_offset).toBe(firstNewline + 1)
    expect(after.usage.session_id).toBe("0199a213-81c0-7800-8aa1-bbab2a035a53")
  })

  it("a final last line without a newline is consumed; CRLF lines read like LF lines", () => {
    const line = `{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":0,"output_tokens":1}}`
    const bytes = new TextEncoder().encode(line)
    expect(meterChunk(emptyUsage, bytes, context("codex", { final: false })).usage.log_offset).toBe(0)
    const done = meterChunk(emptyUsage, bytes, context("codex")).usage
    expect([done.log_offset, done.tokens.input]).toEqual([bytes.length, 100])
    const crlf = meterChunk(emptyUsage, new TextEncoder().encode(`${line}\r\n`), context("codex")).usage
    expect(crlf.tokens).toEqual(done.tokens)
  })
})

const assistant = (usage: string, id = "msg_h", session = CLAUDE_SESSION) =>
  `{"type":"assistant","message":{"id":"${id}","model":"claude-sonnet-4-5","usage":${usage}},"session_id":"${session}"}`
const result = (cost: string, usage: string, session = CLAUDE_SESSION) =>
  `{"type":"result","subtype":"success","is_error":false,"total_cost_usd":${cost},"usage":${usage},"session_id":"${session}"}`
const usageOf = (input: string, output = "1") =>
  `{"input_tokens":${input},"output_tokens":${output},"cache_creation_input_tokens":0,"cache_read_input_tokens":0}`

/** Lines an agent's output could hold that must neither throw nor lower anything. */
const HOSTILE: ReadonlyArray<[string, string]> = [
  ["truncated JSON", `{"type":"assistant","message":{"id":"x","usage":{"input_tokens":5`],
  ["negative tokens", assistant(usageOf("-5"), "msg_neg")],
  ["NaN as a string", assistant(usageOf(`"NaN"`), "msg_nan")],
  ["1e300 tokens", assistant(usageOf("1e300"), "msg_huge")],
  ["fractional tokens", assistant(usageOf("2.5"), "msg_frac")],
  ["tokens above 1e15", assistant(usageOf("1000000000000001"), "msg_big")],
  ["a cost of 1e300", result("1e300", usageOf("1"))],
  ["a negative cost", result("-1", usageOf("1"))],
  ["a decreasing cost", result("0.001", usageOf("1"))],
  ["a decreasing token total", result("0.02", usageOf("1", "1"))],
  ["a counted message repeated with less usage", assistant(usageOf("0", "0"), "msg_01AbCdEfGhIjKlMnOpQrStUv")],
  ["a result of another session", result("9", usageOf("99999"), "00000000-0000-4000-8000-000000000000")],
  ["an assistant message of another session", assistant(usageOf("99999"), "msg_other", "another-session")],
  ["[]", "[]"],
  ["null", "null"],
  [`"x"`, `"x"`],
  ["42", "42"],
  ["deeply nested arrays", "[".repeat(100_000) + "]".repeat(100_000)],
  ["deeply nested usage", assistant("[".repeat(50_000) + "]".repeat(50_000), "msg_deep")],
  ["100k commas", ",".repeat(100_000)],
  ["a type of the wrong type", `{"type":42,"message":{}}`],
  ["a message of the wrong type", `{"type":"assistant","message":"hello"}`],
  ["invalid UTF-8", "\uFFFD\uFFFE"]
]

describe("meterChunk: hostile lines", () => {
  const base = meterChunk(emptyUsage, fixture("claude-stream.jsonl"), context("claude")).usage

  it.each(HOSTILE)("%s: no throw, nothing lowered, nothing counted", (_name, line) => {
    const bytes = lines(line)
    for (const format of ["claude", "codex", "gemini"] as const) {
      const { usage } = meterChunk(base, bytes, context(format, { expectedSession: CLAUDE_SESSION }))
      assertNotLower(base, usage)
      expect(usage.tokens).toEqual(base.tokens)
      expect(usage.cost_usd).toBe(base.cost_usd)
      expect(usage.reported_cost_usd).toBe(base.reported_cost_usd)
      expect(usage.log_offset).toBe(base.log_offset + bytes.length)
    }
  })

  it("a valid line after hostile ones still counts", () => {
    const bytes = lines(...HOSTILE.map(([, l]) => l), assistant(usageOf("7", "3"), "msg_after"))
    const { usage } = meterChunk(base, bytes, context("claude"))
    expect(usage.tokens.input).toBe(base.tokens.input + 7)
    expect(usage.tokens.output).toBe(base.tokens.output + 3)
  })

  it("a 10 MB line is skipped unread, in one chunk or many; the line after it counts", () => {
    const big = `{"type":"assistant","message":{"id":"m","usage":${usageOf("5")}},"pad":"${"x".repeat(10_000_000)}"}`
    const bytes = lines(big, assistant(usageOf("7", "3"), "msg_after_big"))
    const whole = meterChunk(emptyUsage, bytes, context("claude"))
    expect(whole.usage.tokens).toEqual({ input: 7, output: 3, cache_creation: 0, cache_read: 0 })
    expect(whole.usage.log_offset).toBe(bytes.length)
    expect(whole.usage.skipping).toBeUndefined()
    const cuts = [1000, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, 3 * MAX_LINE_BYTES, big.length, big.length + 1]
    expect(meterInSteps(bytes, cuts, context("claude")).usage).toEqual(whole.usage)
  })

  it("inside an over-long line the meter consumes the chunk and remembers it is skipping", () => {
    const bytes = new TextEncoder().encode("y".repeat(MAX_LINE_BYTES + 10))
    const partial = meterChunk(emptyUsage, bytes, context("claude", { final: false })).usage
    expect([partial.log_offset, partial.skipping]).toEqual([bytes.length, true])
    const rest = lines(`yyy`, assistant(usageOf("2"), "msg_z"))
    const after = meterChunk(partial, rest, context("claude", { final: false })).usage
    expect([after.log_offset, after.skipping, after.tokens.input]).toEqual([bytes.length + rest.length, undefined, 2])
  })

  it("a line of exactly MAX_LINE_BYTES is still read", () => {
    const line = assistant(usageOf("9"), "msg_exact")
    const padded = line.slice(0, -1) + `,"pad":"${"p".repeat(MAX_LINE_BYTES - line.length - 9)}"}`
    expect(new TextEncoder().encode(padded).length).toBe(MAX_LINE_BYTES)
    expect(meterChunk(emptyUsage, lines(padded), context("claude")).usage.tokens.input).toBe(9)
    const over = padded.slice(0, -2) + `p"}`
    expect(meterChunk(emptyUsage, lines(over), context("claude")).usage.tokens.input).toBe(0)
  })

  it("lines of a session other than the expected one are ignored, from the init on", () => {
    const { usage } = meterChunk(
      emptyUsage,
      fixture("claude-stream.jsonl"),
      context("claude", { expectedSession: "11111111-1111-4111-8111-111111111111" })
    )
    expect(usage).toEqual({ ...emptyUsage, log_offset: fixture("claude-stream.jsonl").length })
  })

  it("counts and costs saturate at the stored bounds instead of leaving them", () => {
    const top = assistant(usageOf("1000000000000000", "1000000000000000"), "msg_top")
    const bytes = lines(top, assistant(usageOf("1000000000000000"), "msg_top2"))
    const { usage } = meterChunk(emptyUsage, bytes, context("claude"))
    expect(usage.tokens.input).toBe(1e15)
    expect(usage.estimated_cost_usd).toBe(1e9)
    expect(decodeUsage(usage)).toEqual(usage)
  })

  it("only the 64 newest message ids are kept", () => {
    const many = Array.from({ length: 70 }, (_, i) => assistant(usageOf("1"), `msg_${i}`))
    const { usage } = meterChunk(emptyUsage, lines(...many), context("claude"))
    expect(usage.tokens.input).toBe(70)
    expect(usage.messages?.length).toBe(64)
    expect(usage.messages?.[63]?.id).toBe("msg_69")
    expect(usage.messages?.[0]?.id).toBe("msg_6")
  })
})
