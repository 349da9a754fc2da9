/**
 * The price table the meter estimates costs with: USD per million tokens by model-name prefix, the default model of
 * each engine, and a price file (SPAWNKIT_PRICES_FILE) that overrides or extends them. Pure: no I/O.
 *
 * Security: an estimate is what a budget is checked against while an agent runs, so no model name may make it
 * cheaper than it is. A model the table lacks is priced as its engine's most expensive entry, kind by kind; an
 * unknown name can only over-estimate.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { invalidInput } from "../domain/Decode.js"
import { InvalidConfiguration } from "../domain/Errors.js"
import type { OutputFormat, Tokens } from "../domain/Usage.js"

/**
 * The engines whose prices the table knows. An agent is priced by its output format's engine, not by its spawn
 * engine: a `custom` agent that prints Codex JSON lines is priced as Codex.
 */
export type PricedEngine = "claude" | "codex" | "gemini"

/** The engine whose prices apply to an output format (none for `none`, which is never metered). */
export const engineOfFormat = (format: OutputFormat): PricedEngine | undefined => format === "none" ? undefined : format

/** USD per million tokens of each kind. */
export interface Price {
  readonly input: number
  readonly output: number
  readonly cache_creation: number
  readonly cache_read: number
}

/** One row of the table: the models whose (lower-case) name starts with `prefix`, and the engine they belong to. */
export interface PriceEntry {
  readonly prefix: string
  readonly price: Price
  /** Whose most-expensive fallback the entry counts in; an entry of no known family counts in every engine's. */
  readonly engines: ReadonlyArray<PricedEngine>
}

/** The price table: entries (no two with one prefix) and each engine's default model. */
export interface PriceTable {
  readonly entries: ReadonlyArray<PriceEntry>
  readonly defaults: Readonly<Record<PricedEngine, string>>
}

const ENGINES: ReadonlyArray<PricedEngine> = ["claude", "codex", "gemini"]

/** The engine a model name's family belongs to, by its first letters. */
const familyOf = (prefix: string): PricedEngine | undefined =>
  prefix.startsWith("claude")
    ? "claude"
    : prefix.startsWith("gemini")
    ? "gemini"
    : /^(gpt|codex|o\d)/.test(prefix)
    ? "codex"
    : undefined

const entry = (prefix: string, price: Price, engine?: PricedEngine): PriceEntry => {
  const family = engine ?? familyOf(prefix)
  return { prefix, price, engines: family === undefined ? ENGINES : [family] }
}

const claude = (input: number, output: number, cacheWrite: number, cacheRead: number): Price => ({
  input,
  output,
  cache_creation: cacheWrite,
  cache_read: cacheRead
})
// OpenAI and Google bill no cache writes: written input is priced as input.
const uncachedWrite = (input: number, cached: number, output: number): Price => ({
  input,
  output,
  cache_creation: input,
  cache_read: cached
})

/** The built-in table (list prices, USD per million tokens, standard context). */
export const defaultPrices: PriceTable = {
  entries: [
    entry("claude-opus-4-6", claude(5, 25, 6.25, 0.5)),
    entry("claude-opus-4-5", claude(5, 25, 6.25, 0.5)),
    entry("claude-opus-4-1", claude(15, 75, 18.75, 1.5)),
    entry("claude-opus-4", claude(15, 75, 18.75, 1.5)),
    entry("claude-sonnet-4", claude(3, 15, 3.75, 0.3)),
    entry("claude-haiku-4-5", claude(1, 5, 1.25, 0.1)),
    entry("claude-3-5-haiku", claude(0.8, 4, 1, 0.08)),
    entry("gpt-5", uncachedWrite(1.25, 0.125, 10)),
    entry("gpt-5-codex", uncachedWrite(1.25, 0.125, 10)),
    entry("gpt-5-mini", uncachedWrite(0.25, 0.025, 2)),
    entry("gemini-2.5-pro", uncachedWrite(1.25, 0.31, 10)),
    entry("gemini-2.5-flash", uncachedWrite(0.3, 0.075, 2.5)),
    entry("gemini-3-pro", uncachedWrite(2, 0.2, 12))
  ],
  defaults: { claude: "claude-sonnet-4-5", codex: "gpt-5", gemini: "gemini-2.5-pro" }
}

/** A model name as the table matches it: lower case, without a provider path (`models/`, `openai/`). */
const normalize = (model: string): string => {
  const lower = model.trim().toLowerCase()
  return lower.slice(lower.lastIndexOf("/") + 1)
}

/** The entry with the longest prefix of `model`, if any. */
export const lookupPrice = (table: PriceTable, model: string): PriceEntry | undefined => {
  const name = normalize(model)
  let best: PriceEntry | undefined
  for (const e of table.entries) {
    if (name.startsWith(e.prefix) && (best === undefined || e.prefix.length > best.prefix.length)) best = e
  }
  return best
}

/**
 * The price of a model the table lacks: for each token kind, the highest price among the engine's entries, so the
 * estimate is at least what any of its known models would cost.
 */
export const fallbackPrice = (table: PriceTable, engine: PricedEngine): Price => {
  const own = table.entries.filter((e) => e.engines.includes(engine)).map((e) => e.price)
  const max = (kind: keyof Price) => Math.max(0, ...own.map((p) => p[kind]))
  return {
    input: max("input"),
    output: max("output"),
    cache_creation: max("cache_creation"),
    cache_read: max("cache_read")
  }
}

/** The price a model is billed at: its entry, else (unknown or unnamed) as described on `costOf`. */
export const priceOf = (table: PriceTable, engine: PricedEngine, model: string | undefined): Price => {
  const name = model ?? table.defaults[engine]
  return lookupPrice(table, name)?.price ?? fallbackPrice(table, engine)
}

/**
 * The cost in USD of `tokens` used by `model` under `engine` (the output format's engine, see PricedEngine). A model
 * left unnamed is the engine's default model; a model the table lacks (or a default it lacks) is priced at the
 * engine's most expensive entry, kind by kind.
 */
export const costOf = (
  table: PriceTable,
  engine: PricedEngine,
  model: string | undefined,
  tokens: Tokens
): number => {
  const p = priceOf(table, engine, model)
  return (tokens.input * p.input + tokens.output * p.output + tokens.cache_creation * p.cache_creation +
    tokens.cache_read * p.cache_read) / 1e6
}

// ---------------------------------------------------------------------------------------------------------------------
// The price file

const PerMillion = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 10_000 }))
const ModelName = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))

/** One model's prices in a price file; a missing cache price is the input price (never cheaper than it may be). */
export const PriceFileEntry = Schema.Struct({
  input: PerMillion,
  output: PerMillion,
  cache_creation: Schema.optionalKey(PerMillion),
  cache_read: Schema.optionalKey(PerMillion),
  /** Whose unknown models this entry may price; by default the family of its name (claude-, gpt-, gemini-…). */
  engine: Schema.optionalKey(Schema.Literals(["claude", "codex", "gemini"]))
})

/**
 * A price file: `{ "models": { "<model prefix>": { "input": 3, "output": 15, … } }, "defaults": { "claude": "…" } }`,
 * in USD per million tokens. Its models replace the built-in entries of the same prefix and add the others.
 */
export const PriceFile = Schema.Struct({
  models: Schema.Record(ModelName, PriceFileEntry).check(
    Schema.makeFilter((models) => Object.keys(models).length <= 1000 ? true : "Expected at most 1000 models")
  ),
  defaults: Schema.optionalKey(Schema.Struct({
    claude: Schema.optionalKey(ModelName),
    codex: Schema.optionalKey(ModelName),
    gemini: Schema.optionalKey(ModelName)
  }))
})
/** @see PriceFile */
export type PriceFile = typeof PriceFile.Type

/** The table with a price file's models and defaults laid over it. */
export const mergePrices = (base: PriceTable, file: PriceFile): PriceTable => {
  const added = Object.entries(file.models).map(([name, p]) =>
    entry(normalize(name), {
      input: p.input,
      output: p.output,
      cache_creation: p.cache_creation ?? p.input,
      cache_read: p.cache_read ?? p.input
    }, p.engine)
  )
  const replaced = new Set(added.map((e) => e.prefix))
  return {
    entries: [...base.entries.filter((e) => !replaced.has(e.prefix)), ...added],
    defaults: { ...base.defaults, ...file.defaults }
  }
}

const decodeFile = Schema.decodeUnknownResult(Schema.fromJsonString(PriceFile))

/** The built-in table with the price file `text` laid over it, or why the file cannot be used. */
export const decodePriceFile = (text: string): Result.Result<PriceTable, InvalidConfiguration> =>
  Result.match(decodeFile(text, { errors: "all", onExcessProperty: "error" }), {
    onSuccess: (file) => Result.succeed(mergePrices(defaultPrices, file)),
    onFailure: (e) => {
      const issue = invalidInput(e, "")
      return Result.fail(
        new InvalidConfiguration({
          variable: "SPAWNKIT_PRICES_FILE",
          reason: `the price file is not valid (${issue.field === "" ? "" : `at ${issue.field}: `}${issue.reason}); ` +
            "expected JSON such as " +
            `{"models":{"claude-sonnet-4":{"input":3,"output":15,"cache_creation":3.75,"cache_read":0.3}}} ` +
            "in USD per million tokens, each price between 0 and 10000"
        })
      )
    }
  })
