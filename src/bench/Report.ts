/**
 * Benchmark results: the targets checked against one run, a markdown table, and the files written. Neither file is
 * ever left half-written: each is written beside its final name and renamed into place, and a temporary file is
 * removed if writing fails or is interrupted.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import * as Os from "node:os"
import type { BenchRun } from "./Bench.js"
import type { BrokerFootprintResult } from "./BrokerFootprint.js"
import type { BudgetStopResult } from "./BudgetStop.js"
import type { ExitLatencyResult } from "./ExitLatency.js"
import type { HomeSizeResult } from "./HomeSize.js"
import { benchFailed, type ScenarioResult } from "./Scenario.js"
import { startupMarkdown } from "./Startup.js"
import type { WorktreeSpawnResult } from "./WorktreeSpawn.js"

/** The exit-latency table: exit to record, and the machine's CPU per exit, per mode. */
const exitLatencyMarkdown = (rows: ReadonlyArray<ExitLatencyResult>) => [
  "| exits recorded by | exits (batch) | exit to record p50 / p99 / max ms | wait returns after a batch's last exit p50 / max ms | machine CPU per exit ms |",
  "|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.mode} | ${r.exits} (${r.batch}) | ${r.latency.p50} / ${r.latency.p99} / ${r.latency.max} | ` +
    `${r.waitAfterLastExit.p50} / ${r.waitAfterLastExit.max} | ${r.cpuMsPerExit} |`
  ),
  ""
]

/** The budget-stop table: from the crossing line to the records and to the processes' end, and the overshoot. */
const budgetStopMarkdown = (rows: ReadonlyArray<BudgetStopResult>) => [
  "| budget stop on | rounds (agents, cap) | crossing to over_budget recorded p50 / max ms | crossing to processes gone p50 / max ms | overshoot p50 / max tokens | goal |",
  "|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.backend} registry | ${r.rounds} (${r.agents}, ${r.capTokens} tokens) | ${r.recorded.p50} / ${r.recorded.max} | ` +
    `${r.gone.p50} / ${r.gone.max} | ${r.overshoot.p50} / ${r.overshoot.max} | ` +
    `all within ${r.goal.withinMs} ms: ${r.goal.met ? "met" : "**not met**"} |`
  ),
  ""
]

/** The worktree-spawn table: spawn latency without and with a worktree, their ratio, and the kill to its removal. */
const worktreeSpawnMarkdown = (r: WorktreeSpawnResult) => [
  "| worktree spawn on | rounds (agents per isolation, tracked files) | spawn, isolation none p50 / max ms | spawn, isolation worktree p50 / max ms | worktree / none (p50) | kill to worktree and branch gone p50 / max ms | audit after each round |",
  "|---|---|---|---|---|---|---|",
  `| ${r.backend} registry | ${r.rounds} (${r.agents}, ${r.files} files) | ${r.none.p50} / ${r.none.max} | ` +
  `${r.worktree.p50} / ${r.worktree.max} | ${r.ratio}x (rounds: ${r.roundRatios.map((x) => `${x}x`).join(", ")}) | ` +
  `${r.settle.p50} / ${r.settle.max} | ${r.audit.branches} spawnkit/* branches, ${r.audit.extraWorktrees} extra ` +
  `worktrees, ${r.audit.lockFiles} .lock files |`,
  ""
]

/** The broker-footprint table: N stdio servers against one broker, and their ratios. */
const brokerFootprintMarkdown = (r: BrokerFootprintResult) => [
  `| broker footprint, ${r.agents} agents | spawnkit server processes | memory (VmRSS) MiB, all clients open | CPU s | per-agent start-up to first answer p50 / max ms |`,
  "|---|---|---|---|---|",
  `| stdio: a \`spawnkit serve\` per agent | ${r.stdio.servers} | ${r.stdio.rssMiB} (per server p50 ` +
  `${r.stdio.rssPerServerMiB.p50}) | ${r.stdio.cpuSeconds} | ${r.stdio.startup.p50} / ${r.stdio.startup.max} (server start) |`,
  `| broker: one \`serve --http\` | ${r.broker.servers} | ${r.broker.rssMiB} (${r.broker.rssBeforeMiB} idle, ` +
  `+${r.broker.rssGrowthMiB} for ${r.agents} sessions) | ${r.broker.cpuSeconds} (${r.broker.cpuBeforeSeconds} before ` +
  `the sessions) | ${r.broker.startup.p50} / ${r.broker.startup.max} (session open; the broker's own start ` +
  `${r.broker.brokerStartMs} ms, once) |`,
  `| stdio / broker | ${r.ratios.servers}x | ${r.ratios.memory}x | ${r.ratios.cpu}x | ${r.ratios.startupP50}x (p50) |`,
  ""
]

/** One target and whether this run met it. */
export interface TargetCheck {
  readonly target: string
  readonly measured: string
  readonly met: boolean
}

const find = (results: ReadonlyArray<ScenarioResult>, name: string) => results.find((r) => r.name === name)

/** Passes cost what is alive: reconcile and status over a home with many finished tasks within 1.5x of without. */
const homeSizeTargets = (homeSize: ReadonlyArray<HomeSizeResult>): ReadonlyArray<TargetCheck> =>
  homeSize.flatMap((h) =>
    (["reconcile", "status"] as const).map((op) => {
      const { large, small } = h[op]
      const ratio = large.p50 / Math.max(small.p50, 0.001)
      return {
        target:
          `${h.backend} registry: ${op} over ${h.activeTasks} active + ${h.finishedTasks} finished tasks <= 1.5x ` +
          `the cost over the ${h.activeTasks} active ones`,
        measured: `p50 ${large.p50} ms vs ${small.p50} ms (${ratio.toFixed(2)}x)`,
        met: ratio <= 1.5
      }
    })
  )

/** A spent budget stops its tree fast: every round's records and processes within the goal of the crossing line. */
const budgetStopTargets = (rows: ReadonlyArray<BudgetStopResult>): ReadonlyArray<TargetCheck> =>
  rows.map((r) => ({
    target: `${r.backend} registry: a tree of ${r.agents} over its budget all recorded over_budget and stopped ` +
      `within ${r.goal.withinMs} ms of the crossing line`,
    measured: `max ${r.recorded.max} ms to the records, ${r.gone.max} ms to the processes' end (${r.rounds} rounds)`,
    met: r.goal.met
  }))

/** The benchmark's targets, as far as the scenarios that ran allow. */
export const checkTargets = (
  run: Pick<BenchRun, "results" | "homeSize" | "startup" | "budgetStop">
): ReadonlyArray<TargetCheck> => {
  const { results } = run
  const checks: Array<TargetCheck> = [...homeSizeTargets(run.homeSize), ...budgetStopTargets(run.budgetStop ?? [])]
  const floor = find(results, "floor")
  for (const r of results.filter((r) => r.design === "spawnkit" && /-(one-task|many-tasks)/.test(r.name))) {
    if (floor !== undefined) {
      checks.push({
        target: `${r.name}: throughput >= 80% of the floor`,
        measured: `${r.throughput}/s vs ${floor.throughput}/s (${Math.round((r.floorRatio ?? 0) * 100)}%)`,
        met: (r.floorRatio ?? 0) >= 0.8
      })
    }
    checks.push({
      target: `${r.name}: p99 < 250 ms at ${r.processes} processes`,
      measured: `p99 ${r.latency.p99} ms`,
      met: r.latency.p99 < 250
    })
    checks.push({
      target: `${r.name}: p50 < 50 ms at ${r.processes} processes` +
        (floor !== undefined ? ` (bare tmux: p50 ${floor.latency.p50} ms)` : ""),
      measured: `p50 ${r.latency.p50} ms`,
      met: r.latency.p50 < 50
    })
  }
  // One spawn at a time: the latency of a spawn itself, without queueing behind others for the 2 cores.
  const growthRuns = results.filter((r) => r.existingRecords !== undefined)
  const smallest = Math.min(...growthRuns.map((r) => r.existingRecords!))
  for (const r of growthRuns.filter((r) => r.existingRecords === smallest)) {
    checks.push({
      target: `${r.name}: p50 < 50 ms for a spawn in one process`,
      measured: `p50 ${r.latency.p50} ms`,
      met: r.latency.p50 < 50
    })
  }
  for (const backend of ["file", "postgres"]) {
    const growth = results
      .filter((r) => r.existingRecords !== undefined && r.name.endsWith("-pg") === (backend === "postgres"))
      .sort((a, b) => a.existingRecords! - b.existingRecords!)
    if (growth.length < 2) continue
    const small = growth[0]!
    const large = growth.at(-1)!
    const ratio = large.latency.p50 / Math.max(small.latency.p50, 0.001)
    checks.push({
      target:
        `${backend} registry: spawn cost at ${large.existingRecords} records <= 1.5x the cost at ${small.existingRecords}`,
      measured: `p50 ${large.latency.p50} ms vs ${small.latency.p50} ms (${ratio.toFixed(2)}x)`,
      met: ratio <= 1.5
    })
  }
  for (const r of results.filter((r) => r.design === "spawnkit")) {
    const bad = (r.lost ?? 0) + (r.twins ?? 0) + (r.overshoot ?? 0) + (r.orphans ?? 0)
    checks.push({
      target: `${r.name}: 0 lost, 0 twins, 0 overshoot, 0 orphans`,
      measured: `${r.lost ?? 0} / ${r.twins ?? 0} / ${r.overshoot ?? 0} / ${r.orphans ?? 0}`,
      met: bad === 0
    })
  }
  return checks
}

const cell = (value: number | undefined) => (value === undefined ? "—" : String(value))

/** The results as markdown: a table of scenarios, the home-size passes, then the targets. */
export const markdown = (
  run: Pick<
    BenchRun,
    "results" | "homeSize" | "startup" | "exitLatency" | "budgetStop" | "worktreeSpawn" | "brokerFootprint"
  >,
  checks: ReadonlyArray<TargetCheck>,
  notes: ReadonlyArray<string>,
  meta: Readonly<Record<string, string>>
) => {
  const { homeSize, results } = run
  const lines = [
    `# spawnkit benchmark, ${meta["date"]}`,
    "",
    Object.entries(meta).filter(([k]) => k !== "date").map(([k, v]) => `${k}: ${v}`).join(" · "),
    "",
    "| scenario | spawns ok | rejected | spawns/s | x floor | p50 ms | p95 ms | p99 ms | CPU ms/spawn | lock wait p50/p99 ms | lost | twins | overshoot | orphans | torn reads |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...results.map((r) =>
      [
        `${r.name}<br><sub>${r.description}</sub>`,
        `${r.ok}/${r.attempts}`,
        Object.entries(r.rejected).map(([k, v]) => `${k} ${v}`).join(", ") || "0",
        r.throughput,
        r.floorRatio ?? "—",
        r.latency.p50,
        r.latency.p95,
        r.latency.p99,
        r.cpuMsPerSpawn,
        r.lockWait === undefined ? "—" : `${r.lockWait.p50Ms} / ${r.lockWait.p99Ms}`,
        cell(r.lost),
        cell(r.twins),
        cell(r.overshoot),
        cell(r.orphans),
        r.design === "unlocked" ? cell(r.torn) : "—"
      ].join(" | ").replace(/^/, "| ").replace(/$/, " |")
    ),
    "",
    ...(homeSize.length === 0 ? [] : [
      "| home | reconcile p50 / p95 ms | status p50 / p95 ms |",
      "|---|---|---|",
      ...homeSize.flatMap((h) => [
        `| ${h.backend}: ${h.activeTasks} active tasks | ${h.reconcile.small.p50} / ${h.reconcile.small.p95} | ${h.status.small.p50} / ${h.status.small.p95} |`,
        `| ${h.backend}: the same + ${h.finishedTasks} finished tasks | ${h.reconcile.large.p50} / ${h.reconcile.large.p95} | ${h.status.large.p50} / ${h.status.large.p95} |`
      ]),
      ""
    ]),
    ...(run.startup === undefined ? [] : startupMarkdown(run.startup)),
    ...(run.exitLatency === undefined ? [] : exitLatencyMarkdown(run.exitLatency)),
    ...(run.budgetStop === undefined ? [] : budgetStopMarkdown(run.budgetStop)),
    ...(run.worktreeSpawn === undefined ? [] : worktreeSpawnMarkdown(run.worktreeSpawn)),
    ...(run.brokerFootprint === undefined ? [] : brokerFootprintMarkdown(run.brokerFootprint)),
    "| target | measured | met |",
    "|---|---|---|",
    ...checks.map((c) => `| ${c.target} | ${c.measured} | ${c.met ? "yes" : "**no**"} |`),
    "",
    ...notes.map((n) => `- ${n}`),
    ...(notes.length > 0 ? [""] : [])
  ]
  return lines.join("\n")
}

/** `text` written to `file` by way of a temporary file beside it; the temporary file is removed with the scope. */
const writeBeside = (file: string, text: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const partial = `${file}.partial`
    yield* Effect.acquireRelease(
      fs.writeFileString(partial, text),
      () =>
        fs.remove(partial, { force: true }).pipe(
          Effect.catch((e) => Effect.logWarning(`could not remove ${partial}: ${e.message}`))
        )
    )
    return { partial, file }
  })

/** Write `<dir>/<timestamp>.json` and `<dir>/<timestamp>.md`; returns both paths and the markdown. */
export const writeResults = Effect.fn("Bench.writeResults")(function*(
  dir: string,
  run: Pick<
    BenchRun,
    "results" | "homeSize" | "startup" | "exitLatency" | "budgetStop" | "worktreeSpawn" | "brokerFootprint"
  >,
  checks: ReadonlyArray<TargetCheck>,
  notes: ReadonlyArray<string>,
  options: unknown
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const now = new Date(yield* Clock.currentTimeMillis)
  const stamp = now.toISOString().replace(/[:.]/g, "-")
  const meta = {
    date: now.toISOString(),
    host: `${Os.cpus().length} CPUs (${Os.cpus()[0]?.model ?? "?"}), ${Math.round(Os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    platform: `${Os.platform()} ${Os.release()}`
  }
  const text = markdown(run, checks, notes, meta)
  const report = {
    ...meta,
    options,
    results: run.results,
    homeSize: run.homeSize,
    startup: run.startup,
    exitLatency: run.exitLatency,
    budgetStop: run.budgetStop,
    worktreeSpawn: run.worktreeSpawn,
    brokerFootprint: run.brokerFootprint,
    targets: checks,
    notes
  }
  const json = path.join(dir, `${stamp}.json`)
  const md = path.join(dir, `${stamp}.md`)
  yield* Effect.scoped(Effect.gen(function*() {
    yield* fs.makeDirectory(dir, { recursive: true })
    const written = [yield* writeBeside(json, JSON.stringify(report, null, 2) + "\n"), yield* writeBeside(md, text)]
    yield* Effect.uninterruptible(Effect.forEach(written, (w) => fs.rename(w.partial, w.file), { discard: true }))
  })).pipe(Effect.mapError(benchFailed(`writing the results to ${dir}`)))
  return { json, md, text }
})
