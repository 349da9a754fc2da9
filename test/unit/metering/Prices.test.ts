/** The price table: longest-prefix lookup, defaults, unknown models at the engine's highest prices, the price file. */
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import type { Tokens } from "../../../src/domain/Usage.js"
import {
  costOf,
  decodePriceFile,
  defaultPrices,
  engineOfFormat,
  fallbackPrice,
  lookupPrice,
  mergePrices,
  priceOf
} from "../../../src/metering/Prices.js"

const MILLION: Tokens = { input: 1e6, output: 0, cache_creation: 0, cache_read: 0 }
const each = (input: number, output: number, cache_creation: number, cache_read: number): Tokens => ({
  input,
  output,
  cache_creation,
  cache_read
})

describe("the default table", () => {
  it("matches the longest prefix, in lower case, without a provider path", () => {
    expect(lookupPrice(defaultPrices, "claude-opus-4-5-20251101")?.prefix).toBe("claude-opus-4-5")
    expect(lookupPrice(defaultPrices, "claude-opus-4-1-20250805")?.prefix).toBe("claude-opus-4-1")
    expect(lookupPrice(defaultPrices, "claude-opus-4-20250514")?.prefix).toBe("claude-opus-4")
    expect(lookupPrice(defaultPrices, "gpt-5-mini-2025-08-07")?.prefix).toBe("gpt-5-mini")
    expect(lookupPrice(defaultPrices, "GPT-5-Codex")?.prefix).toBe("gpt-5-codex")
    expect(lookupPrice(defaultPrices, "models/gemini-2.5-flash")?.prefix).toBe("gemini-2.5-flash")
    expect(lookupPrice(defaultPrices, "llama-3")).toBeUndefined()
  })

  it("prices each kind of token per million", () => {
    // Opus 4.5: 5 / 25 / 6.25 / 0.5.
    expect(costOf(defaultPrices, "claude", "claude-opus-4-5-20251101", each(1e6, 1e6, 1e6, 1e6))).toBe(36.75)
    // Haiku 3.5: 0.8 input, 4 output.
    expect(costOf(defaultPrices, "claude", "claude-3-5-haiku-20241022", each(1e6, 1e6, 0, 0))).toBeCloseTo(4.8, 12)
    // gpt-5-mini: 0.25 input, 0.025 cached, 2 output; a cache write is priced as input.
    expect(costOf(defaultPrices, "codex", "gpt-5-mini", each(1e6, 1e6, 1e6, 1e6))).toBeCloseTo(2.525, 12)
    // gemini-3-pro: 2 input, 0.2 cached, 12 output.
    expect(costOf(defaultPrices, "gemini", "gemini-3-pro-preview", each(1e6, 1e6, 0, 1e6))).toBeCloseTo(14.2, 12)
  })

  it("an unnamed model is the engine's default: Sonnet, gpt-5, gemini-2.5-pro", () => {
    expect(costOf(defaultPrices, "claude", undefined, MILLION)).toBe(3)
    expect(costOf(defaultPrices, "codex", undefined, MILLION)).toBe(1.25)
    expect(costOf(defaultPrices, "gemini", undefined, each(0, 1e6, 0, 1e6))).toBeCloseTo(10.31, 12)
  })

  it("an unknown model costs the engine's highest price of each kind", () => {
    expect(priceOf(defaultPrices, "claude", "claude-opus-5-5")).toEqual({
      input: 15,
      output: 75,
      cache_creation: 18.75,
      cache_read: 1.5
    })
    expect(priceOf(defaultPrices, "codex", "o3")).toEqual({
      input: 1.25,
      output: 10,
      cache_creation: 1.25,
      cache_read: 0.125
    })
    expect(priceOf(defaultPrices, "gemini", "auto")).toEqual({
      input: 2,
      output: 12,
      cache_creation: 2,
      cache_read: 0.31
    })
    // Never below any known model of the engine.
    for (const e of defaultPrices.entries.filter((x) => x.engines.includes("claude"))) {
      expect(costOf(defaultPrices, "claude", "claude-unknown", each(7, 11, 13, 17))).toBeGreaterThanOrEqual(
        costOf(defaultPrices, "claude", e.prefix, each(7, 11, 13, 17))
      )
    }
  })

  it("the engine of an output format", () => {
    expect(engineOfFormat("codex")).toBe("codex")
    expect(engineOfFormat("none")).toBeUndefined()
  })
})

describe("the price file", () => {
  const decoded = (text: string) => {
    const r = decodePriceFile(text)
    if (Result.isFailure(r)) throw new Error(r.failure.message)
    return r.success
  }

  it("overrides a prefix (missing cache prices are the input price) and adds models and defaults", () => {
    const table = decoded(JSON.stringify({
      models: {
        "claude-sonnet-4": { input: 4, output: 20 },
        "Claude-Opus-5": { input: 20, output: 100, cache_creation: 25, cache_read: 2 },
        "local-llm": { input: 0.5, output: 1, engine: "codex" }
      },
      defaults: { claude: "claude-haiku-4-5" }
    }))
    expect(priceOf(table, "claude", "claude-sonnet-4-5")).toEqual({
      input: 4,
      output: 20,
      cache_creation: 4,
      cache_read: 4
    })
    expect(table.entries.filter((e) => e.prefix === "claude-sonnet-4")).toHaveLength(1)
    expect(priceOf(table, "claude", "claude-opus-5-5").input).toBe(20)
    expect(costOf(table, "claude", undefined, MILLION)).toBe(1)
    expect(costOf(table, "codex", "local-llm-7b", MILLION)).toBe(0.5)
    // A dearer known model raises what unknown names of its engine cost.
    expect(fallbackPrice(table, "claude").output).toBe(100)
    expect(fallbackPrice(table, "gemini").output).toBe(12)
    expect(table.defaults.codex).toBe("gpt-5")
  })

  it("a model of no known family and no engine counts in every engine's fallback", () => {
    const table = mergePrices(defaultPrices, { models: { "mystery": { input: 50, output: 500 } } })
    expect(fallbackPrice(table, "codex").output).toBe(500)
    expect(fallbackPrice(table, "gemini").input).toBe(50)
  })

  it.each([
    ["not JSON", "prices: cheap", "Expected a valid JSON string"],
    ["no models", "{}", "at models: Missing key"],
    ["a negative price", `{"models":{"x":{"input":-1,"output":1}}}`, "at models.x.input: Expected a value between 0"],
    ["an absurd price", `{"models":{"x":{"input":1,"output":1e9}}}`, "at models.x.output: Expected a value between"],
    ["a price as a string", `{"models":{"x":{"input":"1","output":1}}}`, "at models.x.input: Expected number"],
    ["no output price", `{"models":{"x":{"input":1}}}`, "at models.x.output: Missing key"],
    ["an unknown key", `{"models":{},"currency":"EUR"}`, "at currency: Expected no excess property"],
    ["an unknown engine", `{"models":{"x":{"input":1,"output":1,"engine":"llama"}}}`, "at models.x.engine"],
    ["a default for an unknown engine", `{"models":{},"defaults":{"aider":"x"}}`, "at defaults.aider"]
  ])("%s is refused with InvalidConfiguration saying where", (_name, text, where) => {
    const r = decodePriceFile(text)
    expect(Result.isFailure(r)).toBe(true)
    if (Result.isFailure(r)) {
      expect(r.failure._tag).toBe("InvalidConfiguration")
      expect(r.failure.variable).toBe("SPAWNKIT_PRICES_FILE")
      expect(r.failure.reason).toContain(where)
      expect(r.failure.reason).toContain("USD per million tokens")
    }
  })
})
