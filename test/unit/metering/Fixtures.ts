/** Helpers of the metering tests: the CLI output fixtures, a meter context, and a log fed to the meter in pieces. */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { type AgentUsage, emptyUsage, type OutputFormat } from "../../../src/domain/Usage.js"
import type { LimitSeen } from "../../../src/metering/Formats.js"
import { meterChunk, type MeterContext } from "../../../src/metering/Meter.js"
import { defaultPrices } from "../../../src/metering/Prices.js"

const DIR = NodePath.resolve(import.meta.dirname, "..", "..", "fixtures", "agent-output")

/** 2026-01-15T12:00:00Z. */
export const NOW = 1_768_478_400_000

/** A fixture's bytes. */
export const fixture = (name: string): Uint8Array => new Uint8Array(Fs.readFileSync(NodePath.join(DIR, name)))

/** Every fixture with its format. */
export const FIXTURES: ReadonlyArray<readonly [string, Exclude<OutputFormat, "none">]> = [
  ["claude-stream.jsonl", "claude"],
  ["claude-rate-limited.jsonl", "claude"],
  ["claude-max-budget.jsonl", "claude"],
  ["codex-exec.jsonl", "codex"],
  ["codex-usage-limit.jsonl", "codex"],
  ["gemini-stream.jsonl", "gemini"],
  ["gemini-quota.jsonl", "gemini"]
]

/** A context for `format` at NOW. */
export const context = (
  format: Exclude<OutputFormat, "none">,
  extra: Partial<MeterContext> = {}
): MeterContext => ({ format, engine: format, prices: defaultPrices, nowMs: NOW, final: true, ...extra })

const utf8 = new TextEncoder()
/** Lines joined with newlines (each ended by one). */
export const lines = (...ls: ReadonlyArray<string>): Uint8Array => utf8.encode(ls.map((l) => `${l}\n`).join(""))

/**
 * Feed `bytes` to the meter as the log grows: the log first holds bytes up to `cuts[0]`, then up to `cuts[1]`, …, and
 * at last all of them (then the agent has ended: final). Each call gets the bytes from the state's offset to the
 * current end, as the caller does. Checks after every call that nothing went down.
 */
export const meterInSteps = (
  bytes: Uint8Array,
  cuts: ReadonlyArray<number>,
  ctx: MeterContext,
  start: AgentUsage = emptyUsage
) => {
  let usage = start
  const limits: Array<LimitSeen> = []
  const ends = [...[...cuts].sort((a, b) => a - b), bytes.length]
  ends.forEach((end, i) => {
    const final = i === ends.length - 1 ? ctx.final : false
    const before = usage
    const result = meterChunk(usage, bytes.subarray(usage.log_offset, Math.max(end, usage.log_offset)), {
      ...ctx,
      final
    })
    usage = result.usage
    limits.push(...result.limits)
    assertNotLower(before, usage)
  })
  return { usage, limits }
}

/** Throws when `after` is below `before` in any count, cost or offset. */
export const assertNotLower = (before: AgentUsage, after: AgentUsage) => {
  const pairs: Array<[string, number, number]> = [
    ["input", before.tokens.input, after.tokens.input],
    ["output", before.tokens.output, after.tokens.output],
    ["cache_creation", before.tokens.cache_creation, after.tokens.cache_creation],
    ["cache_read", before.tokens.cache_read, after.tokens.cache_read],
    ["estimated_cost_usd", before.estimated_cost_usd, after.estimated_cost_usd],
    ["reported_cost_usd", before.reported_cost_usd ?? 0, after.reported_cost_usd ?? 0],
    ["cost_usd", before.cost_usd, after.cost_usd],
    ["log_offset", before.log_offset, after.log_offset]
  ]
  for (const [name, was, is] of pairs) {
    if (!(is >= was)) throw new Error(`${name} went down: ${was} -> ${is}`)
  }
  if (before.reported_cost_usd !== undefined && after.reported_cost_usd === undefined) {
    throw new Error("reported_cost_usd disappeared")
  }
}

/** A small seeded generator (mulberry32), so a failing random split can be replayed. */
export const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
