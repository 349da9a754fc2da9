/**
 * A scenario's figures from what its processes reported: counts, throughput, latency percentiles, CPU per spawn and
 * the registry lock's wait, merged over every process.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type { LockWait } from "./Scenario.js"
import { summarize } from "./Stats.js"
import type { LockWaitHistogram, Sample } from "./WorkerProtocol.js"

/** What one spawning process reported. */
export interface ProcessOutcome {
  readonly samples: ReadonlyArray<Sample>
  /** Epoch ms of its first spawn's start and its last spawn's end. */
  readonly startMs: number
  readonly endMs: number
  /** Busy CPU of the machine (all processes) while the scenario ran, this process's share, in ms. */
  readonly cpuMs: number
  /** CPU of the process itself, in ms (0 when not measured). */
  readonly workerCpuMs: number
  readonly lockWait?: LockWaitHistogram
}

const PROC_STAT = "/proc/stat"
/** Clock ticks per second of /proc/stat (USER_HZ). */
const USER_HZ = 100

/** Busy CPU time of the whole machine so far, in ms (Linux /proc/stat; 0 where there is none). */
export const busyCpuMs = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  if (!(yield* fs.exists(PROC_STAT))) return 0
  const fields = (yield* fs.readFileString(PROC_STAT)).split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return ((fields.reduce((a, b) => a + b, 0) - idle) * 1000) / USER_HZ
})

const round2 = (n: number) => Math.round(n * 100) / 100

/** Merge the processes' cumulative lock-wait histograms and read percentiles off them (bucket upper bounds). */
export const lockWaitOf = (outcomes: ReadonlyArray<ProcessOutcome>): LockWait | undefined => {
  const histograms = outcomes.flatMap((o) => (o.lockWait === undefined ? [] : [o.lockWait]))
  // No acquisitions: a registry without the file lock (PostgreSQL waits inside its transactions).
  if (histograms.every((h) => h.count === 0)) return undefined
  const bounds = histograms[0]!.buckets.map(([b]) => b ?? Infinity)
  const cumulative = bounds.map((_, i) => histograms.reduce((n, h) => n + (h.buckets[i]?.[1] ?? 0), 0))
  const count = histograms.reduce((n, h) => n + h.count, 0)
  const sum = histograms.reduce((n, h) => n + h.sum, 0)
  const max = histograms.reduce((n, h) => Math.max(n, h.max), 0)
  const at = (q: number) => {
    const i = cumulative.findIndex((c) => c >= q * count)
    return i < 0 ? max : Math.min(bounds[i]!, max)
  }
  return {
    count,
    meanMs: round2(count === 0 ? 0 : sum / count),
    p50Ms: round2(at(0.5)),
    p99Ms: round2(at(0.99)),
    maxMs: round2(max)
  }
}

/** Counts, throughput, latency and CPU of a scenario's processes. */
export const figures = (outcomes: ReadonlyArray<ProcessOutcome>) => {
  const samples = outcomes.flatMap((o) => o.samples)
  const ok = samples.filter((s) => s.ok)
  const rejected: Record<string, number> = {}
  for (const s of samples) if (!s.ok) rejected[s.tag ?? "?"] = (rejected[s.tag ?? "?"] ?? 0) + 1
  const wallMs = Math.max(...outcomes.map((o) => o.endMs)) - Math.min(...outcomes.map((o) => o.startMs))
  const perSpawn = (ms: number) => round2(ms / Math.max(ok.length, 1))
  const lockWait = lockWaitOf(outcomes)
  return {
    processes: outcomes.length,
    attempts: samples.length,
    ok: ok.length,
    rejected,
    wallMs,
    throughput: Math.round((ok.length / Math.max(wallMs, 1)) * 1000 * 10) / 10,
    latency: summarize(ok.map((s) => s.ms)),
    torn: samples.filter((s) => s.tag === "TornRead").length,
    workerCpuMsPerSpawn: perSpawn(outcomes.reduce((n, o) => n + o.workerCpuMs, 0)),
    cpuMsPerSpawn: perSpawn(outcomes.reduce((n, o) => n + o.cpuMs, 0)),
    ...(lockWait !== undefined ? { lockWait } : {})
  }
}
