/**
 * What the harness and a benchmark worker process (Worker.ts) say to each other: the spec a worker is started with
 * (a JSON file in the scenario's directory, its path the one argument) and the JSON lines it prints on stdout.
 *
 *   {"ready":true}                      set up; waiting for the start barrier (`goFile` exists)
 *   {"i","ok","ms","tag"?}              one per spawn, in order
 *   {"done":true,"startMs","endMs",     last: epoch ms of its first spawn's start and its last spawn's end,
 *    "workerCpuMs","lockWait"?}          its own CPU, the registry lock's wait histogram
 */
import * as Schema from "effect/Schema"
import type { Design } from "./Scenario.js"

/** One spawn to make. */
export interface Attempt {
  readonly taskId: string
  readonly agentType: string
  readonly prompt: string
}

/** What a worker is told to do. */
export interface WorkerSpec {
  readonly mode: Design
  /** The start barrier: every worker begins once this file exists. */
  readonly goFile: string
  readonly attempts: ReadonlyArray<Attempt>
  /** floor and unlocked: the tmux socket path, the agent command, a directory for prompt and log files. */
  readonly socket?: string
  readonly command?: ReadonlyArray<string>
  readonly home?: string
}

/** The worker is set up. */
export const ReadyLine = Schema.Struct({ ready: Schema.Literal(true) })

/** One spawn's outcome: its latency and, when it failed, the failure's tag. */
export const SampleLine = Schema.Struct({
  i: Schema.Number,
  ok: Schema.Boolean,
  ms: Schema.Number,
  tag: Schema.optionalKey(Schema.String)
})
/** @see SampleLine */
export type Sample = typeof SampleLine.Type

/**
 * A cumulative histogram as Metric.value reports it (bucket upper bound, count at or below). The last bound is
 * Infinity, which JSON writes as null.
 */
export const LockWaitHistogram = Schema.Struct({
  buckets: Schema.Array(Schema.Tuple([Schema.NullOr(Schema.Number), Schema.Number])),
  count: Schema.Number,
  sum: Schema.Number,
  max: Schema.Number
})
/** @see LockWaitHistogram */
export type LockWaitHistogram = typeof LockWaitHistogram.Type

/** The worker's last line. */
export const DoneLine = Schema.Struct({
  done: Schema.Literal(true),
  startMs: Schema.Number,
  endMs: Schema.Number,
  workerCpuMs: Schema.Number,
  lockWait: Schema.optionalKey(LockWaitHistogram)
})
/** @see DoneLine */
export type Done = typeof DoneLine.Type

/** Any line a worker prints, decoded from its JSON text. */
export const WorkerLine = Schema.fromJsonString(Schema.Union([ReadyLine, DoneLine, SampleLine]))
