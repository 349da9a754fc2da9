/**
 * The benchmark harness end to end, at a tiny size: every scenario runs, the figures add up, spawnkit's audit is
 * clean while the unlocked baseline is audited by the same rules, the results are written, and nothing is left
 * behind (every scenario's home and tmux server live under the run's own TMPDIR, every scenario's database is dropped);
 * the worktree measurement alone, its audit clean.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { inject } from "vitest"
import { CLI } from "../support/Harness.js"

describe("spawnkit bench", () => {
  it("runs every scenario side by side, writes JSON and markdown, and cleans up", () => {
    const tmp = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-bench-test-"))
    const out = NodePath.join(tmp, "results")
    const scratch = NodePath.join(tmp, "scratch")
    Fs.mkdirSync(scratch)
    try {
      const run = spawnSync(
        process.execPath,
        [
          CLI,
          "bench",
          ...["--processes", "2", "--spawns", "3", "--tasks", "2", "--growth", "0,20", "--growth-spawns", "2"],
          ...["--home-finished", "30", "--home-active", "2"],
          ...["--exits", "4", "--exit-batch", "2", "--budget-rounds", "1"],
          // The worktree measurement has a test of its own, below.
          ...["--worktree-rounds", "0"],
          ...["--out", out, "--postgres", inject("databaseUrl"), "--json"]
        ],
        { encoding: "utf8", env: { ...process.env, TMPDIR: scratch }, timeout: 240_000 }
      )
      expect(run.status, run.stderr).toBe(0)
      const report = JSON.parse(run.stdout)
      const byName = new Map<string, any>(report.results.map((r: any) => [r.name, r]))
      expect([...byName.keys()]).toEqual([
        "floor",
        "spawnkit-one-task",
        "spawnkit-one-task-pg",
        "spawnkit-many-tasks",
        "spawnkit-many-tasks-pg",
        "unlocked-one-task",
        "spawnkit-contention",
        "spawnkit-contention-pg",
        "unlocked-contention",
        "spawnkit-growth-0",
        "spawnkit-growth-0-pg",
        "spawnkit-growth-20",
        "spawnkit-growth-20-pg",
        "spawnkit-mcp-stdio"
      ])
      expect(byName.get("floor")).toMatchObject({ ok: 6, attempts: 6, floorRatio: 1 })
      for (
        const name of [
          "spawnkit-one-task",
          "spawnkit-one-task-pg",
          "spawnkit-many-tasks",
          "spawnkit-many-tasks-pg",
          "spawnkit-mcp-stdio"
        ]
      ) {
        const r = byName.get(name)
        expect(r, name).toMatchObject({ ok: 6, attempts: 6, lost: 0, twins: 0, overshoot: 0, orphans: 0 })
        expect(r.latency.count).toBe(6)
        expect(r.latency.p50).toBeGreaterThan(0)
        expect(r.latency.p99).toBeGreaterThanOrEqual(r.latency.p50)
        expect(r.throughput).toBeGreaterThan(0)
      }
      // Two transactions per spawn, each waiting for the file lock; PostgreSQL has no file lock to wait for.
      expect(byName.get("spawnkit-one-task").lockWait.count).toBeGreaterThanOrEqual(12)
      expect(byName.get("spawnkit-one-task-pg").lockWait).toBeUndefined()
      // Both processes try the same 3 jobs against a limit of 2: exactly 2 agents, the rest refused by reason.
      for (const name of ["spawnkit-contention", "spawnkit-contention-pg"]) {
        const contention = byName.get(name)
        expect(contention, name).toMatchObject({ ok: 2, attempts: 6, twins: 0, overshoot: 0, orphans: 0, lost: 0 })
        expect(Object.values(contention.rejected as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(4)
      }
      expect(byName.get("spawnkit-growth-20")).toMatchObject({ existingRecords: 20, ok: 2, orphans: 0 })
      expect(byName.get("spawnkit-growth-20-pg")).toMatchObject({ existingRecords: 20, ok: 2, orphans: 0 })
      // The baseline is audited, not assumed: every figure is a count.
      for (const name of ["unlocked-one-task", "unlocked-contention"]) {
        const r = byName.get(name)
        for (const k of ["lost", "twins", "overshoot", "orphans", "torn"]) {
          expect(Number.isInteger(r[k]), `${name}.${k}`).toBe(true)
        }
        expect(r.ok + Object.values(r.rejected as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(r.attempts)
      }
      // The home-size passes ran on both registries over the same live agents, finished tasks added in between.
      expect(report.homeSize.map((h: any) => [h.backend, h.activeTasks, h.finishedTasks])).toEqual([
        ["file", 2, 30],
        ["postgresql", 2, 30]
      ])
      for (const h of report.homeSize) {
        for (const figure of [h.reconcile.small, h.reconcile.large, h.status.small, h.status.large]) {
          expect(figure.count).toBe(15)
          expect(figure.p50).toBeGreaterThan(0)
        }
      }
      expect(report.targets.filter((t: any) => /finished tasks <= 1.5x/.test(t.target))).toHaveLength(4)
      // Exit latency: both ways of recording, every exit measured, the supervisor's wait woken after its batch.
      expect(report.exitLatency.map((r: any) => [r.mode, r.exits, r.batch, r.latency.count])).toEqual([
        ["pane-died hook", 4, 2, 4],
        ["supervisor", 4, 2, 4]
      ])
      for (const r of report.exitLatency) {
        expect(r.latency.p50).toBeGreaterThan(0)
        expect(r.waitAfterLastExit.count).toBe(2)
        expect(r.cpuMsPerExit).toBeGreaterThan(0)
      }
      // Budget stop: one round per registry, the whole tree stopped, its figures measured from the crossing line.
      expect(report.budgetStop.map((r: any) => [r.backend, r.rounds, r.agents, r.capTokens, r.gone.count])).toEqual([
        ["file", 1, 8, 40_000, 1],
        ["postgresql", 1, 8, 40_000, 1]
      ])
      for (const r of report.budgetStop) {
        expect(r.recorded.p50).toBeGreaterThanOrEqual(0)
        expect(r.gone.p50).toBeGreaterThanOrEqual(r.recorded.p50)
        expect(r.overshoot.p50).toBeGreaterThanOrEqual(0)
        expect(r.goal.withinMs).toBe(500)
      }
      const budgetTargets = report.targets.filter((t: any) => /over its budget all recorded/.test(t.target))
      expect(budgetTargets).toHaveLength(2)
      const [json, md] = report.files as [string, string]
      expect(JSON.parse(Fs.readFileSync(json, "utf8")).results).toHaveLength(14)
      expect(Fs.readFileSync(md, "utf8")).toContain("| spawnkit-one-task")
      expect(Fs.readFileSync(md, "utf8")).toContain("| postgresql registry | 1 (8, 40000 tokens)")
      // Every scenario's home and tmux socket were removed, and every scenario's database dropped.
      expect(Fs.readdirSync(scratch)).toEqual([])
      const databases = spawnSync(inject("psql"), [
        "-X",
        "-Atc",
        "SELECT datname FROM pg_database",
        inject("databaseUrl")
      ], { encoding: "utf8" })
      expect(databases.status, databases.stderr).toBe(0)
      expect(databases.stdout).not.toContain("spawnkit_bench_")
    } finally {
      for (const dir of Fs.existsSync(scratch) ? Fs.readdirSync(scratch) : []) {
        spawnSync("tmux", ["-S", NodePath.join(scratch, dir, "tmux.sock"), "kill-server"], { stdio: "ignore" })
      }
      Fs.rmSync(tmp, { recursive: true, force: true })
    }
  }, 300_000)

  it("measures spawns with and without a worktree and the kill to its removal, leaving the repository clean", () => {
    const tmp = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-bench-worktree-test-"))
    const out = NodePath.join(tmp, "results")
    const scratch = NodePath.join(tmp, "scratch")
    Fs.mkdirSync(scratch)
    try {
      const run = spawnSync(
        process.execPath,
        [
          CLI,
          "bench",
          ...["--only", "worktree-spawn", "--worktree-rounds", "1", "--processes", "1", "--spawns", "2"],
          ...["--out", out, "--postgres", "off", "--json"]
        ],
        { encoding: "utf8", env: { ...process.env, TMPDIR: scratch }, timeout: 120_000 }
      )
      expect(run.status, run.stderr).toBe(0)
      const report = JSON.parse(run.stdout)
      // Only the floor ran of the scenarios, and of the measurements only this one.
      expect(report.results.map((r: any) => r.name)).toEqual(["floor"])
      expect(report.budgetStop).toBeUndefined()
      const w = report.worktreeSpawn
      expect(w).toMatchObject({ backend: "file", rounds: 1, agents: 8, files: 200 })
      // All 16 spawns succeeded and were timed; all 8 worktrees were gone after their kills.
      for (const figure of [w.none, w.worktree, w.settle, w.killReturned]) {
        expect(figure.count).toBe(8)
        expect(figure.p50).toBeGreaterThan(0)
        expect(figure.max).toBeGreaterThanOrEqual(figure.p50)
      }
      expect(w.ratio).toBeCloseTo(w.worktree.p50 / w.none.p50, 1)
      expect(w.roundRatios).toHaveLength(1)
      // The audit held: no spawnkit/* branch, no worktree but the main one, no lock file under .git.
      expect(w.audit).toEqual({ branches: 0, extraWorktrees: 0, lockFiles: 0 })
      const [json, md] = report.files as [string, string]
      expect(JSON.parse(Fs.readFileSync(json, "utf8")).worktreeSpawn.audit).toEqual(w.audit)
      const text = Fs.readFileSync(md, "utf8")
      expect(text).toContain("| worktree spawn on |")
      expect(text).toContain("| file registry | 1 (8, 200 files) |")
      expect(text).toContain("0 spawnkit/* branches, 0 extra worktrees, 0 .lock files")
      // The environment, its repository and worktrees included, was removed.
      expect(Fs.readdirSync(scratch)).toEqual([])
    } finally {
      for (const dir of Fs.existsSync(scratch) ? Fs.readdirSync(scratch) : []) {
        spawnSync("tmux", ["-S", NodePath.join(scratch, dir, "tmux.sock"), "kill-server"], { stdio: "ignore" })
      }
      Fs.rmSync(tmp, { recursive: true, force: true })
    }
  }, 150_000)

  it("refuses bad sizes with a typed error and runs nothing", () => {
    const run = spawnSync(process.execPath, [CLI, "bench", "--processes", "0", "--json"], { encoding: "utf8" })
    expect(run.status).not.toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { tag: "InvalidInput" } })
    const growth = spawnSync(process.execPath, [CLI, "bench", "--growth", "10,lots", "--json"], { encoding: "utf8" })
    expect(growth.status).not.toBe(0)
    expect(growth.stdout).toContain("growth")
    const postgres = spawnSync(process.execPath, [CLI, "bench", "--postgres", "mysql://x", "--json"], {
      encoding: "utf8"
    })
    expect(postgres.status).not.toBe(0)
    expect(JSON.parse(postgres.stdout)).toMatchObject({ error: { tag: "InvalidInput" } })
    expect(postgres.stdout).toContain("postgres")
    const rounds = spawnSync(process.execPath, [CLI, "bench", "--budget-rounds", "-1", "--json"], { encoding: "utf8" })
    expect(rounds.status).not.toBe(0)
    expect(JSON.parse(rounds.stdout)).toMatchObject({ error: { tag: "InvalidInput" } })
    expect(rounds.stdout).toContain("budget-rounds")
    const worktree = spawnSync(process.execPath, [CLI, "bench", "--worktree-rounds", "-1", "--json"], {
      encoding: "utf8"
    })
    expect(worktree.status).not.toBe(0)
    expect(JSON.parse(worktree.stdout)).toMatchObject({ error: { tag: "InvalidInput" } })
    expect(worktree.stdout).toContain("worktree-rounds")
  })
})
