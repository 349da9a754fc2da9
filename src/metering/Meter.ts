/**
 * The meter: folds the new bytes of an agent's log into its stored usage (tokens, estimated and reported cost, the
 * limits its CLI reported). Pure: the caller reads the bytes from `log_offset` and stores the state returned.
 *
 * Invariant: the fold never lowers a token count, `estimated_cost_usd`, `reported_cost_usd`, `cost_usd` or
 * `log_offset`, whatever the bytes say. It reads whole lines only, and a line's meaning depends on its bytes and the
 * state before it alone, so a log read in one chunk or split at any byte boundary (each call given the unconsumed
 * rest plus the new bytes) ends in the same state; the offset returned with the state means no byte is folded twice.
 *
 * Security: a line longer than MAX_LINE_BYTES is skipped unread (memory stays bounded whatever an agent prints);
 * lines naming another session than the agent's are ignored, so output of another conversation is not billed here.
 */
import type { AgentUsage, MessageUsage, OutputFormat, Tokens, UsageLimit } from "../domain/Usage.js"
import { MAX_COST_USD, MAX_MESSAGES, MAX_TOKENS, zeroTokens } from "../domain/Usage.js"
import { type LimitSeen, type Observation, parseLine } from "./Formats.js"
import { costOf, type PricedEngine, type PriceTable } from "./Prices.js"

/** What the fold needs besides the state and the bytes. */
export interface MeterContext {
  readonly format: OutputFormat
  /** Whose price defaults apply: the output format's engine (see PricedEngine). */
  readonly engine: PricedEngine
  readonly prices: PriceTable
  readonly nowMs: number
  /** The session the agent is known to run (Claude's pre-assigned --session-id); lines naming another session are ignored. */
  readonly expectedSession?: string
  /** The agent has ended: a last line without a newline is consumed too. */
  readonly final: boolean
}

/** The longest line parsed; a longer one is skipped unread. */
export const MAX_LINE_BYTES = 1024 * 1024

/** The state after a chunk, and the limits its lines reported (in order). */
export interface MeterResult {
  readonly usage: AgentUsage
  readonly limits: ReadonlyArray<LimitSeen>
}

const NEWLINE = 0x0a
const utf8 = new TextDecoder("utf-8")

const KINDS = ["input", "output", "cache_creation", "cache_read"] as const

/** The fold's working state: a mutable copy of the stored one, local to one call. */
interface Acc {
  tokens: { -readonly [K in keyof Tokens]: number }
  estimated: number
  reported: number | undefined
  model: string | undefined
  sessionId: string | undefined
  messages: Array<MessageUsage>
  limit: UsageLimit | undefined
  readonly limits: Array<LimitSeen>
}

const start = (state: AgentUsage): Acc => ({
  tokens: { ...state.tokens },
  estimated: state.estimated_cost_usd,
  reported: state.reported_cost_usd,
  model: state.model,
  sessionId: state.session_id,
  messages: [...(state.messages ?? [])],
  limit: state.limit,
  limits: []
})

/** Add tokens (saturating at MAX_TOKENS) and their cost (saturating at MAX_COST_USD). */
const add = (acc: Acc, ctx: MeterContext, increase: Tokens, model: string | undefined) => {
  for (const kind of KINDS) acc.tokens[kind] = Math.min(MAX_TOKENS, acc.tokens[kind] + increase[kind])
  const cost = costOf(ctx.prices, ctx.engine, model ?? acc.model, increase)
  acc.estimated = Math.min(MAX_COST_USD, acc.estimated + cost)
}

const perKind = (f: (kind: keyof Tokens) => number): Tokens => ({
  input: f("input"),
  output: f("output"),
  cache_creation: f("cache_creation"),
  cache_read: f("cache_read")
})

/** A Claude message's usage: only what exceeds what was counted for its id before is added. */
const countMessage = (acc: Acc, ctx: MeterContext, id: string, tokens: Tokens, model: string | undefined) => {
  const at = acc.messages.findIndex((m) => m.id === id)
  const before: Tokens = at < 0 ? zeroTokens : acc.messages[at]!
  const after = perKind((k) => Math.max(before[k], tokens[k]))
  add(acc, ctx, perKind((k) => after[k] - before[k]), model)
  if (at >= 0) acc.messages.splice(at, 1)
  acc.messages.push({ id, ...after })
  if (acc.messages.length > MAX_MESSAGES) acc.messages.splice(0, acc.messages.length - MAX_MESSAGES)
}

/** Whether an observation belongs to the agent's session (one naming none does). */
const ours = (acc: Acc, ctx: MeterContext, sessionId: string | undefined) => {
  const expected = ctx.expectedSession ?? acc.sessionId
  return sessionId === undefined || expected === undefined || sessionId === expected
}

const observe = (acc: Acc, ctx: MeterContext, o: Observation) => {
  switch (o._tag) {
    case "Session":
      if (ours(acc, ctx, o.sessionId)) acc.sessionId = o.sessionId
      return
    case "Model":
      if (ours(acc, ctx, o.sessionId)) acc.model = o.model
      return
    case "Usage":
      if (!ours(acc, ctx, o.sessionId)) return
      if (o.messageId === undefined) add(acc, ctx, o.tokens, o.model)
      else countMessage(acc, ctx, o.messageId, o.tokens, o.model)
      return
    case "Total": {
      if (!ours(acc, ctx, o.sessionId)) return
      // A total above the running sums counted tokens no line showed: the excess is added and priced.
      const total = o.tokens
      if (total !== undefined) add(acc, ctx, perKind((k) => Math.max(0, total[k] - acc.tokens[k])), o.model)
      if (o.costUsd !== undefined) acc.reported = Math.max(acc.reported ?? 0, o.costUsd)
      return
    }
    case "Limit":
      if (!ours(acc, ctx, o.sessionId)) return
      acc.limits.push({ resetsAtMs: o.resetsAtMs, reason: o.reason })
      acc.limit = { resets_at: new Date(o.resetsAtMs).toISOString(), reason: o.reason }
      return
  }
}

const foldLine = (acc: Acc, ctx: MeterContext, bytes: Uint8Array) => {
  const text = utf8.decode(bytes)
  const line = text.endsWith("\r") ? text.slice(0, -1) : text
  if (line.trim() === "") return
  for (const o of parseLine(ctx.format, line, ctx.nowMs)) observe(acc, ctx, o)
}

/**
 * Where the bytes of `chunk` from `pos` stop being consumed, folding each complete line on the way: a line of at most
 * MAX_LINE_BYTES (before its newline) is folded; a longer one is passed over to its newline, or to the chunk's end
 * with `skipping` set; a last partial line is left for the next call unless the log is final.
 */
const scan = (acc: Acc, ctx: MeterContext, chunk: Uint8Array, from: number) => {
  let pos = from
  while (pos < chunk.length) {
    const window = Math.min(chunk.length, pos + MAX_LINE_BYTES + 1)
    const newline = chunk.subarray(pos, window).indexOf(NEWLINE)
    if (newline >= 0) {
      foldLine(acc, ctx, chunk.subarray(pos, pos + newline))
      pos += newline + 1
    } else if (window - pos > MAX_LINE_BYTES) {
      const end = chunk.indexOf(NEWLINE, window)
      if (end < 0) return { consumed: chunk.length, skipping: !ctx.final }
      pos = end + 1
    } else {
      if (!ctx.final) return { consumed: pos, skipping: false }
      foldLine(acc, ctx, chunk.subarray(pos))
      pos = chunk.length
    }
  }
  return { consumed: pos, skipping: false }
}

const finish = (state: AgentUsage, acc: Acc, consumed: number, skipping: boolean): AgentUsage => ({
  tokens: { ...acc.tokens },
  estimated_cost_usd: acc.estimated,
  ...(acc.reported === undefined ? {} : { reported_cost_usd: acc.reported }),
  cost_usd: Math.min(MAX_COST_USD, Math.max(acc.estimated, acc.reported ?? 0)),
  ...(acc.model === undefined ? {} : { model: acc.model }),
  ...(acc.sessionId === undefined ? {} : { session_id: acc.sessionId }),
  log_offset: state.log_offset + consumed,
  ...(skipping ? { skipping: true } : {}),
  ...(acc.messages.length === 0 ? {} : { messages: acc.messages }),
  ...(acc.limit === undefined ? {} : { limit: acc.limit }),
  ...(state.truncations === undefined ? {} : { truncations: state.truncations })
})

/** Consume `chunk`, the log's bytes from `state.log_offset`; returns the new state and the limits seen. */
export const meterChunk = (state: AgentUsage, chunk: Uint8Array, ctx: MeterContext): MeterResult => {
  const acc = start(state)
  let from = 0
  if (state.skipping === true) {
    // Still inside an over-long line: pass over it to its newline.
    const end = chunk.indexOf(NEWLINE)
    if (end < 0) return { usage: finish(state, acc, chunk.length, !ctx.final), limits: [] }
    from = end + 1
  }
  const { consumed, skipping } = scan(acc, ctx, chunk, from)
  return { usage: finish(state, acc, consumed, skipping), limits: acc.limits }
}
