/**
 * What a benchmark scenario is: a name, the design it measures, and the Effect that runs it in an environment of
 * its own (see Environment.ts); and the figures one run of it gives. Scenarios.ts lists them.
 */
import type * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import type * as Path from "effect/Path"
import type { ChildProcessSpawner } from "effect/process"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { ScenarioEnv } from "./Environment.js"
import type { Summary } from "./Stats.js"

/** The benchmark could not run (a worker failed, a file is missing, a service refused). */
export class BenchFailed extends Schema.TaggedError<BenchFailed>()("BenchFailed", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/** A BenchFailed saying what was being done and what went wrong. */
export const benchFailed = (doing: string) => (error: unknown): BenchFailed =>
  new BenchFailed({ reason: `${doing}: ${error instanceof Error ? error.message : String(error)}` })

/** Which design a scenario measures: bare tmux, spawnkit, or the older unlocked orchestrator. */
export type Design = "floor" | "spawnkit" | "unlocked"

/** The registry lock's wait, merged over every process of a scenario. */
export interface LockWait {
  readonly count: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** What a scenario measured. */
export interface ScenarioFigures {
  readonly processes: number
  readonly attempts: number
  readonly ok: number
  readonly rejected: Readonly<Record<string, number>>
  readonly wallMs: number
  readonly throughput: number
  readonly latency: Summary
  readonly lockWait?: LockWait
  /** Sessions started whose agent the registry does not know. */
  readonly lost?: number
  /** Agents started more than once for the same job. */
  readonly twins?: number
  /** Agents beyond the concurrency limit. */
  readonly overshoot?: number
  /** What a reconciler would have to repair after the run (sessions, records, files). */
  readonly orphans?: number
  /** Registry reads that found a torn (half-written) file. */
  readonly torn?: number
  /** Busy CPU time of the whole machine per spawn made, in ms. */
  readonly cpuMsPerSpawn: number
  /** CPU of the spawning processes themselves per spawn made, in ms (the rest is tmux and the agents). */
  readonly workerCpuMsPerSpawn: number
  /** Records in the registry before the run (growth scenarios). */
  readonly existingRecords?: number
}

/** The figures of one scenario, named. */
export interface ScenarioResult extends ScenarioFigures {
  readonly name: string
  readonly design: Design
  readonly description: string
  /** Throughput as a fraction of the floor's. */
  readonly floorRatio?: number
}

/** Told how many of a scenario's spawns are done. */
export type Progress = (done: number) => void

/** What a scenario's run may use: Node's file system, paths and processes, and the scenario's scope. */
export type ScenarioServices = FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner | Scope.Scope

/** One scenario. Its run gets an environment of its own; whatever it acquires in its scope is released after it. */
export interface Scenario {
  readonly name: string
  /** Runs on a PostgreSQL registry (its environment gets a new database). */
  readonly postgres?: boolean
  readonly design: Design
  readonly description: string
  /** Spawns attempted in all (for the progress line). */
  readonly total: number
  readonly run: (env: ScenarioEnv, progress: Progress) => Effect.Effect<ScenarioFigures, BenchFailed, ScenarioServices>
}
