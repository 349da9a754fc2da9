/**
 * An agent's metered usage: the tokens and cost read from its own CLI's output, as its registry record keeps them.
 *
 * Stored usage is untrusted input like every stored record (agents can write their task's registry): every number is
 * decoded as finite, non-negative and bounded, every string as bounded.
 */
import * as Schema from "effect/Schema"
import { Timestamp } from "./Ids.js"

/** The most tokens of one kind a meter holds; more is not a count any agent reaches, only a corrupt or hostile one. */
export const MAX_TOKENS = 1e15
/** The most dollars a meter holds. */
export const MAX_COST_USD = 1e9
/** The most Claude message ids a meter remembers (the newest). */
export const MAX_MESSAGES = 64

/** How an agent's CLI writes its output: each engine's JSON lines, or nothing spawnkit can meter. */
export const OutputFormat = Schema.Literals(["claude", "codex", "gemini", "none"])
/** @see OutputFormat */
export type OutputFormat = typeof OutputFormat.Type

/** A token count: a safe integer in [0, MAX_TOKENS]. */
export const TokenCount = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: MAX_TOKENS }))

/** A dollar amount: finite, in [0, MAX_COST_USD]. */
export const Usd = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: MAX_COST_USD }))

/** A short string from an agent's output (a model name, a session id, a message id). */
export const ShortString = Schema.String.check(Schema.isMaxLength(200))

const tokenFields = {
  /** Input tokens read without the cache (a CLI that counts cached tokens inside its input has them taken out). */
  input: TokenCount,
  output: TokenCount,
  /** Input tokens written to the prompt cache. */
  cache_creation: TokenCount,
  /** Input tokens read from the prompt cache. */
  cache_read: TokenCount
}

/** Tokens by kind; the four kinds are disjoint, so their sum is every token the agent's model handled. */
export const Tokens = Schema.Struct(tokenFields)
/** @see Tokens */
export type Tokens = typeof Tokens.Type

/** The usage counted for one Claude message id: a message repeated over several lines is counted once. */
export const MessageUsage = Schema.Struct({ id: ShortString, ...tokenFields })
/** @see MessageUsage */
export type MessageUsage = typeof MessageUsage.Type

/** A usage or rate limit an agent's CLI reported: when it ends, and what the CLI said. */
export const UsageLimit = Schema.Struct({
  resets_at: Timestamp,
  reason: Schema.String.check(Schema.isMaxLength(500))
})
/** @see UsageLimit */
export type UsageLimit = typeof UsageLimit.Type

/**
 * The meter of one agent, kept in its registry record. `log_offset` is the number of bytes of the agent's log already
 * folded in, so the next read starts there: the same bytes are never counted twice.
 *
 * Invariant: the fold that updates it never lowers a token count, `estimated_cost_usd`, `reported_cost_usd`,
 * `cost_usd` or `log_offset`; `cost_usd` is always max(estimated, reported).
 */
export const AgentUsage = Schema.Struct({
  tokens: Tokens,
  /** The tokens priced by spawnkit's price table: known mid-run, and for CLIs that report no cost. */
  estimated_cost_usd: Usd,
  /** The cost the CLI itself reported (Claude Code's `total_cost_usd`), when it did. */
  reported_cost_usd: Schema.optionalKey(Usd),
  /** max(estimated, reported): what budgets are checked against. */
  cost_usd: Usd,
  model: Schema.optionalKey(ShortString),
  session_id: Schema.optionalKey(ShortString),
  /** Bytes of the log consumed. */
  log_offset: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  /** Inside an over-long line: the next bytes up to its newline are skipped unread. */
  skipping: Schema.optionalKey(Schema.Boolean),
  /** The last Claude message ids counted, newest last, with the usage counted for each. */
  messages: Schema.optionalKey(Schema.Array(MessageUsage).check(Schema.isMaxLength(MAX_MESSAGES))),
  /** The latest usage or rate limit reported. */
  limit: Schema.optionalKey(UsageLimit),
  /** The agent has ended and its log has been read to its end: nothing is left to meter. */
  complete: Schema.optionalKey(Schema.Boolean),
  /** Times the log was found shorter than what had been read of it (cut), and read again from its start. */
  truncations: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
})
/** @see AgentUsage */
export type AgentUsage = typeof AgentUsage.Type

/** No tokens. */
export const zeroTokens: Tokens = { input: 0, output: 0, cache_creation: 0, cache_read: 0 }

/** The meter of an agent whose log has not been read yet. */
export const emptyUsage: AgentUsage = {
  tokens: zeroTokens,
  estimated_cost_usd: 0,
  cost_usd: 0,
  log_offset: 0
}

/** Every token of every kind. */
export const totalTokens = (t: Tokens): number => t.input + t.output + t.cache_creation + t.cache_read
