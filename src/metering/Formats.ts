/**
 * What one line of an agent CLI's JSON output says about usage: its session, model, tokens, reported cost and usage
 * limits, as observations the meter folds. Pure: no I/O, no clock (the caller gives the time).
 *
 * Security: a line is untrusted input (an agent's output may hold anything, a custom engine prints what it likes).
 * A line that is not a JSON object of the expected shape says nothing; a number that is negative, fractional (for
 * tokens), not finite or absurdly large invalidates the observation it belongs to, which is dropped rather than
 * clamped to something it did not say. Nothing here throws.
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { OutputFormat, Tokens } from "../domain/Usage.js"
import { ShortString, TokenCount } from "../domain/Usage.js"
import { parseJsonLine } from "../internal/json.js"

/** One thing a line says. */
export type Observation =
  /** The CLI's session: Claude's init `session_id`, Codex's `thread.started.thread_id`, Gemini's init `session_id`. */
  | { readonly _tag: "Session"; readonly sessionId: string }
  /** The model the CLI runs, from its init line. */
  | { readonly _tag: "Model"; readonly model: string; readonly sessionId?: string }
  /**
   * The usage of one API call. Claude: an assistant message's usage, repeated by every line of that message (count
   * each `messageId` once). Without a `messageId` it is additive.
   */
  | {
    readonly _tag: "Usage"
    readonly tokens: Tokens
    readonly messageId?: string
    readonly model?: string
    readonly sessionId?: string
  }
  /**
   * Totals since the session started: Claude's `result` (with its `total_cost_usd`), Codex's `turn.completed` (its
   * usage is the thread's running total), Gemini's `result.stats`.
   */
  | {
    readonly _tag: "Total"
    readonly tokens?: Tokens
    readonly costUsd?: number
    readonly model?: string
    readonly sessionId?: string
    readonly isError: boolean
    readonly subtype?: string
  }
  /** A usage or rate limit: the CLI cannot go on before `resetsAtMs`. */
  | { readonly _tag: "Limit"; readonly resetsAtMs: number; readonly reason: string; readonly sessionId?: string }

/** A usage or rate limit as the meter reports it. */
export interface LimitSeen {
  readonly resetsAtMs: number
  readonly reason: string
}

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** The bounds of a reported reset time: at least a second ahead, at most a week (a CLI's word is not trusted further). */
export const clampReset = (resetsAtMs: number, nowMs: number): number =>
  Math.min(Math.max(resetsAtMs, nowMs + SECOND), nowMs + 7 * DAY)

// ---------------------------------------------------------------------------------------------------------------------
// Shared pieces

/** The most dollars one line may report: more is not a run's cost. */
const MAX_REPORTED_USD = 1e6
const ReportedUsd = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: MAX_REPORTED_USD }))
const OptionalCount = Schema.optionalKey(Schema.NullOr(TokenCount))
const Text = Schema.String.check(Schema.isMaxLength(100_000))

const decoder = <A, I>(schema: Schema.Codec<A, I>) => {
  const decode = Schema.decodeUnknownOption(schema)
  return (u: unknown): A | undefined => Option.getOrUndefined(decode(u))
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A model name as kept: at most 200 characters (the table matches prefixes, so a cut name still prices right). */
const modelName = (model: string): string => model.slice(0, 200)

const tokens = (input: number, output: number, cacheCreation: number, cacheRead: number): Tokens => ({
  input,
  output,
  cache_creation: cacheCreation,
  cache_read: cacheRead
})

const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }

/**
 * A reset time written for people: a full date (`Dec 4, 2026 3:45 PM`) if it parses to a time ahead, else a clock
 * time (`3:45pm`, `3pm`) taken as its next occurrence in this process's time zone (the zone the CLI printed it in,
 * when both run on one machine). Undefined when neither is there.
 */
export const parseResetText = (text: string, nowMs: number): number | undefined => {
  const cleaned = text.replace(/(\d)(st|nd|rd|th)\b/g, "$1").replace(/\([^)]*\)/g, "").replace(/[.\s]+$/, "").trim()
  const full = Date.parse(cleaned)
  if (Number.isFinite(full) && full > nowMs) return full
  const clock = /\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b/i.exec(cleaned)
  if (clock === null) return undefined
  const hour = Number(clock[1]) % 12 + (clock[3]!.toLowerCase() === "p" ? 12 : 0)
  const minute = clock[2] === undefined ? 0 : Number(clock[2])
  if (Number(clock[1]) > 12 || minute > 59) return undefined
  const at = new Date(nowMs)
  at.setHours(hour, minute, 0, 0)
  const time = at.getTime()
  return time > nowMs ? time : time + DAY
}

/** A limit at `resetsAtMs` (clamped), with the CLI's words cut to what a record keeps. */
const limit = (resetsAtMs: number, reason: string, nowMs: number, sessionId?: string): Observation => ({
  _tag: "Limit",
  resetsAtMs: clampReset(resetsAtMs, nowMs),
  reason: reason.slice(0, 500),
  ...optional("sessionId", sessionId)
})

// ---------------------------------------------------------------------------------------------------------------------
// Claude Code: `claude -p --output-format stream-json --verbose`

const ClaudeUsage = Schema.Struct({
  input_tokens: TokenCount,
  output_tokens: TokenCount,
  cache_creation_input_tokens: OptionalCount,
  cache_read_input_tokens: OptionalCount
})
const claudeTokens = (u: typeof ClaudeUsage.Type): Tokens =>
  tokens(u.input_tokens, u.output_tokens, u.cache_creation_input_tokens ?? 0, u.cache_read_input_tokens ?? 0)

const ClaudeModelUsage = Schema.Struct({
  inputTokens: TokenCount,
  outputTokens: TokenCount,
  cacheCreationInputTokens: OptionalCount,
  cacheReadInputTokens: OptionalCount,
  costUSD: Schema.optionalKey(Schema.NullOr(ReportedUsd))
})

const decodeClaudeInit = decoder(Schema.Struct({
  subtype: Schema.Literal("init"),
  session_id: ShortString,
  model: Schema.optionalKey(Schema.String)
}))
const decodeClaudeRetry = decoder(Schema.Struct({
  subtype: Schema.Literal("api_retry"),
  session_id: Schema.optionalKey(ShortString),
  attempt: Schema.optionalKey(Schema.NullOr(Schema.Finite)),
  max_retries: Schema.optionalKey(Schema.NullOr(Schema.Finite)),
  retry_delay_ms: Schema.optionalKey(Schema.NullOr(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))),
  error_status: Schema.optionalKey(Schema.NullOr(Schema.Finite)),
  error: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(200))))
}))
const decodeClaudeAssistant = decoder(Schema.Struct({
  session_id: Schema.optionalKey(ShortString),
  message: Schema.Struct({
    id: Schema.optionalKey(ShortString),
    model: Schema.optionalKey(Schema.String),
    usage: Schema.optionalKey(ClaudeUsage),
    content: Schema.optionalKey(Schema.Unknown)
  }),
  error: Schema.optionalKey(Schema.Unknown),
  is_api_error_message: Schema.optionalKey(Schema.Boolean)
}))
const decodeClaudeRateLimit = decoder(Schema.Struct({
  session_id: Schema.optionalKey(ShortString),
  rate_limit_info: Schema.Struct({
    status: Schema.String,
    resetsAt: Schema.optionalKey(Schema.NullOr(Schema.Finite)),
    rateLimitType: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(100))))
  })
}))
const decodeClaudeResult = decoder(Schema.Struct({
  subtype: Schema.optionalKey(ShortString),
  is_error: Schema.optionalKey(Schema.Boolean),
  session_id: Schema.optionalKey(ShortString),
  total_cost_usd: Schema.optionalKey(Schema.NullOr(ReportedUsd)),
  usage: Schema.optionalKey(ClaudeUsage),
  modelUsage: Schema.optionalKey(Schema.Record(Schema.String, ClaudeModelUsage)),
  result: Schema.optionalKey(Schema.Unknown)
}))

/**
 * A usage limit Claude Code printed as text ("You've hit your session limit · resets 3:45pm"); an hour from now when
 * the reset time does not parse.
 */
const claudeLimitText = (text: string, nowMs: number, sessionId?: string): Observation | undefined => {
  const hit = /hit your [^.·\n]{0,60}limit/i.exec(text)
  if (hit === null) return undefined
  const resets = /\bresets\s+([^·\n]{1,60})/i.exec(text.slice(hit.index))
  const at = resets === null ? undefined : parseResetText(resets[1]!, nowMs)
  return limit(at ?? nowMs + HOUR, text.trim(), nowMs, sessionId)
}

/** The text blocks of a Claude message's content. */
const textOf = (content: unknown): string =>
  Array.isArray(content)
    ? content.flatMap((b) => (isRecord(b) && b["type"] === "text" && typeof b["text"] === "string" ? [b["text"]] : []))
      .join("\n")
    : typeof content === "string"
    ? content
    : ""

const claudeAssistant = (value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  const line = decodeClaudeAssistant(value)
  if (line === undefined) return []
  const { message, session_id } = line
  const out: Array<Observation> = []
  if (message.usage !== undefined) {
    out.push({
      _tag: "Usage",
      tokens: claudeTokens(message.usage),
      ...optional("messageId", message.id),
      ...optional("model", message.model === undefined ? undefined : modelName(message.model)),
      ...optional("sessionId", session_id)
    })
  }
  // Only an error the CLI itself wrote is a limit: the model's own words may quote such a message.
  if (line.is_api_error_message === true || (line.error !== undefined && line.error !== null)) {
    const seen = claudeLimitText(textOf(message.content).slice(0, 2000), nowMs, session_id)
    if (seen !== undefined) out.push(seen)
  }
  return out
}

/** Claude's totals: the larger of `usage` and the sum of `modelUsage`, kind by kind; the costliest model names it. */
const claudeTotalTokens = (line: NonNullable<ReturnType<typeof decodeClaudeResult>>) => {
  const models = Object.entries(line.modelUsage ?? {})
  const summed = models.reduce(
    (t, [, m]) =>
      tokens(
        t.input + m.inputTokens,
        t.output + m.outputTokens,
        t.cache_creation + (m.cacheCreationInputTokens ?? 0),
        t.cache_read + (m.cacheReadInputTokens ?? 0)
      ),
    tokens(0, 0, 0, 0)
  )
  const usage = line.usage === undefined ? undefined : claudeTokens(line.usage)
  const total = usage === undefined && models.length === 0 ? undefined : tokens(
    Math.max(usage?.input ?? 0, summed.input),
    Math.max(usage?.output ?? 0, summed.output),
    Math.max(usage?.cache_creation ?? 0, summed.cache_creation),
    Math.max(usage?.cache_read ?? 0, summed.cache_read)
  )
  const costliest = models.reduce<[string, number] | undefined>(
    (best, [name, m]) => (best === undefined || (m.costUSD ?? 0) > best[1] ? [name, m.costUSD ?? 0] : best),
    undefined
  )
  return { total, model: costliest === undefined ? undefined : modelName(costliest[0]) }
}

const claudeResult = (value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  const line = decodeClaudeResult(value)
  if (line === undefined) return []
  const { total, model } = claudeTotalTokens(line)
  const out: Array<Observation> = [{
    _tag: "Total",
    isError: line.is_error === true,
    ...optional("tokens", total),
    ...optional("costUsd", line.total_cost_usd ?? undefined),
    ...optional("model", model),
    ...optional("sessionId", line.session_id),
    ...optional("subtype", line.subtype)
  }]
  if (line.is_error === true && typeof line.result === "string") {
    const seen = claudeLimitText(line.result.slice(0, 2000), nowMs, line.session_id)
    if (seen !== undefined) out.push(seen)
  }
  return out
}

const claudeSystem = (value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  const init = decodeClaudeInit(value)
  if (init !== undefined) {
    const session: Observation = { _tag: "Session", sessionId: init.session_id }
    return init.model === undefined
      ? [session]
      : [session, { _tag: "Model", model: modelName(init.model), sessionId: init.session_id }]
  }
  const retry = decodeClaudeRetry(value)
  if (retry === undefined || (retry.error_status !== 429 && retry.error_status !== 529)) return []
  const reason = `Claude API ${retry.error_status} (${retry.error ?? "rate limited"}), retry ${retry.attempt ?? "?"}` +
    ` of ${retry.max_retries ?? "?"}`
  return [limit(nowMs + (retry.retry_delay_ms ?? MINUTE), reason, nowMs, retry.session_id)]
}

const claudeRateLimit = (value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  const line = decodeClaudeRateLimit(value)
  if (line === undefined || line.rate_limit_info.status !== "rejected") return []
  const { resetsAt, rateLimitType } = line.rate_limit_info
  const at = resetsAt === undefined || resetsAt === null ? nowMs + HOUR : resetsAt * SECOND
  return [limit(at, `Claude usage limit reached (${rateLimitType ?? "unknown window"})`, nowMs, line.session_id)]
}

const claude = (type: string, value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  switch (type) {
    case "system":
      return claudeSystem(value, nowMs)
    case "assistant":
      return claudeAssistant(value, nowMs)
    case "result":
      return claudeResult(value, nowMs)
    case "rate_limit_event":
      return claudeRateLimit(value, nowMs)
    default:
      return []
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Codex: `codex exec --json`

const decodeCodexThread = decoder(Schema.Struct({ thread_id: ShortString }))
const decodeCodexTurn = decoder(Schema.Struct({
  usage: Schema.Struct({
    input_tokens: TokenCount,
    cached_input_tokens: OptionalCount,
    cache_write_input_tokens: OptionalCount,
    output_tokens: TokenCount
  })
}))
const decodeCodexFailed = decoder(Schema.Struct({ error: Schema.Struct({ message: Text }) }))
const decodeCodexError = decoder(Schema.Struct({ message: Text }))

/**
 * Codex's usage limit ("You've hit your usage limit. … or try again at 3:45 PM."): at the time it names if that is
 * ahead, else in an hour.
 */
const codexLimit = (message: string, nowMs: number): ReadonlyArray<Observation> => {
  if (!/usage limit|usage_limit_reached/i.test(message)) return []
  const again = /try again at\s+(.{1,60})/i.exec(message)
  const at = again === null ? undefined : parseResetText(again[1]!, nowMs)
  return [limit(at ?? nowMs + HOUR, message.trim(), nowMs)]
}

/**
 * Codex's `turn.completed.usage` is the thread's running total (not the turn's): it is a Total. Its `input_tokens`
 * include the cached and cache-written ones, which are taken out (never below 0).
 */
const codexTurn = (value: unknown): ReadonlyArray<Observation> => {
  const turn = decodeCodexTurn(value)
  if (turn === undefined) return []
  const u = turn.usage
  const cached = u.cached_input_tokens ?? 0
  const written = u.cache_write_input_tokens ?? 0
  return [{
    _tag: "Total",
    isError: false,
    tokens: tokens(Math.max(0, u.input_tokens - cached - written), u.output_tokens, written, cached)
  }]
}

const codex = (type: string, value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  switch (type) {
    case "thread.started": {
      const thread = decodeCodexThread(value)
      return thread === undefined ? [] : [{ _tag: "Session", sessionId: thread.thread_id }]
    }
    case "turn.completed":
      return codexTurn(value)
    case "turn.failed": {
      const failed = decodeCodexFailed(value)
      return failed === undefined ? [] : codexLimit(failed.error.message, nowMs)
    }
    case "error": {
      const error = decodeCodexError(value)
      return error === undefined ? [] : codexLimit(error.message, nowMs)
    }
    default:
      return []
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Gemini CLI: `gemini --output-format stream-json`

const GeminiModelStats = Schema.Struct({ total_tokens: Schema.optionalKey(TokenCount) })
const GeminiStats = Schema.Struct({
  total_tokens: Schema.optionalKey(TokenCount),
  input_tokens: TokenCount,
  output_tokens: TokenCount,
  cached: OptionalCount,
  models: Schema.optionalKey(Schema.Record(Schema.String, GeminiModelStats))
})
const decodeGeminiInit = decoder(Schema.Struct({ session_id: ShortString, model: Schema.optionalKey(Schema.String) }))
const decodeGeminiResult = decoder(Schema.Struct({
  status: Schema.optionalKey(Schema.String),
  error: Schema.optionalKey(Schema.NullOr(Schema.Struct({ message: Schema.optionalKey(Text) }))),
  stats: Schema.optionalKey(GeminiStats)
}))
const decodeGeminiError = decoder(Schema.Struct({ message: Text }))

/**
 * Gemini's quota errors (quota, RESOURCE_EXHAUSTED, 429): at the delay it names ("Please retry in 23.5s"), else in a
 * minute; a daily quota in an hour.
 */
const geminiLimit = (message: string, nowMs: number): ReadonlyArray<Observation> => {
  if (!/quota|RESOURCE_EXHAUSTED|\b429\b/i.test(message)) return []
  const retry = /retry in\s+(\d+(?:\.\d+)?)\s*(ms|s)\b/i.exec(message)
  const delay = retry !== null
    ? Number(retry[1]) * (retry[2]!.toLowerCase() === "ms" ? 1 : SECOND)
    : /daily/i.test(message)
    ? HOUR
    : MINUTE
  return [limit(nowMs + delay, message.trim(), nowMs)]
}

/**
 * Gemini's session totals. `input_tokens` include the cached ones (taken out); thinking and tool-prompt tokens,
 * counted only in `total_tokens`, are priced as output. The model with the most tokens names the total.
 */
const geminiTotal = (stats: typeof GeminiStats.Type, isError: boolean): Observation => {
  const cached = Math.min(stats.cached ?? 0, stats.input_tokens)
  const unlisted = Math.max(0, (stats.total_tokens ?? 0) - stats.input_tokens - stats.output_tokens)
  const main = Object.entries(stats.models ?? {}).reduce<[string, number] | undefined>(
    (best, [name, m]) => (best === undefined || (m.total_tokens ?? 0) > best[1] ? [name, m.total_tokens ?? 0] : best),
    undefined
  )
  return {
    _tag: "Total",
    isError,
    tokens: tokens(stats.input_tokens - cached, stats.output_tokens + unlisted, 0, cached),
    ...optional("model", main === undefined ? undefined : modelName(main[0]))
  }
}

const gemini = (type: string, value: unknown, nowMs: number): ReadonlyArray<Observation> => {
  switch (type) {
    case "init": {
      const init = decodeGeminiInit(value)
      if (init === undefined) return []
      const session: Observation = { _tag: "Session", sessionId: init.session_id }
      return init.model === undefined
        ? [session]
        : [session, { _tag: "Model", model: modelName(init.model), sessionId: init.session_id }]
    }
    case "result": {
      const result = decodeGeminiResult(value)
      if (result === undefined) return []
      const isError = result.status === "error"
      const total = result.stats === undefined ? [] : [geminiTotal(result.stats, isError)]
      const message = result.error?.message
      return message === undefined ? total : [...total, ...geminiLimit(message, nowMs)]
    }
    case "error": {
      const error = decodeGeminiError(value)
      return error === undefined ? [] : geminiLimit(error.message, nowMs)
    }
    default:
      return []
  }
}

// ---------------------------------------------------------------------------------------------------------------------

const parsers = { claude, codex, gemini }

/** What one line of `format` output says; nothing for a line that is not a JSON object of a known shape. */
export const parseLine = (format: OutputFormat, line: string, nowMs: number): ReadonlyArray<Observation> => {
  if (format === "none") return []
  const value = parseJsonLine(line)
  if (!isRecord(value) || typeof value["type"] !== "string") return []
  return parsers[format](value["type"], value, nowMs)
}
