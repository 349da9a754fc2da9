/**
 * Ctrl-C of `spawnkit bench` (the built CLI) is plain interruption: the run stops at once, exits non-zero, and
 * everything it had acquired is released first: worker processes, tmux servers and their agents, scenario homes,
 * the throwaway PostgreSQL cluster, and every scenario's database on a given server.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { inject } from "vitest"
import { CLI, waitFor } from "../support/Harness.js"

/** Command lines of the processes that mention `needle` (the run's scratch directory). */
const processesUnder = (needle: string): Array<string> =>
  execFileSync("ps", ["-eo", "args="], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(needle) && !l.startsWith("ps "))

/** A bench run in the background, its temp files under `scratch` (its TMPDIR), its stderr collected. */
interface Run {
  readonly child: ChildProcess
  readonly scratch: string
  readonly stderr: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

const runs: Array<{ readonly tmp: string; readonly child: ChildProcess }> = []

const startBench = (args: ReadonlyArray<string>): Run => {
  const tmp = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-bench-sigint-"))
  const scratch = NodePath.join(tmp, "scratch")
  Fs.mkdirSync(scratch)
  // A throwaway cluster runs as `postgres` when the tests run as root: it must reach its directory.
  Fs.chmodSync(tmp, 0o711)
  Fs.chmodSync(scratch, 0o711)
  const child = spawn(process.execPath, [CLI, "bench", ...args, "--out", NodePath.join(tmp, "results")], {
    env: { ...process.env, TMPDIR: scratch },
    stdio: ["ignore", "pipe", "pipe"]
  })
  runs.push({ tmp, child })
  let stderr = ""
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  child.stdout!.resume()
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  return { child, scratch, stderr: () => stderr, exited }
}

afterEach(() => {
  for (const { child, tmp } of runs.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    const scratch = NodePath.join(tmp, "scratch")
    for (const dir of Fs.existsSync(scratch) ? Fs.readdirSync(scratch) : []) {
      spawnSync("tmux", ["-S", NodePath.join(scratch, dir, "tmux.sock"), "kill-server"], { stdio: "ignore" })
      spawnSync("bash", [
        NodePath.join(import.meta.dirname, "..", "..", "scripts", "pg-temp.sh"),
        "destroy",
        NodePath.join(scratch, dir, "cluster")
      ], { stdio: "ignore" })
    }
    Fs.rmSync(tmp, { recursive: true, force: true })
  }
})

/** Wait for the run to be mid-scenario: `line` printed, a tmux server up and worker processes running. */
const midScenario = (run: Run, line: string) =>
  waitFor(`${line} with workers and a tmux server`, () => {
    if (run.child.exitCode !== null) throw new Error(`bench ended early (${run.child.exitCode}): ${run.stderr()}`)
    if (!run.stderr().includes(line)) return false
    const sockets = Fs.readdirSync(run.scratch).filter((d) => Fs.existsSync(NodePath.join(run.scratch, d, "tmux.sock")))
    return sockets.length > 0 && processesUnder(run.scratch).some((p) => p.includes("dist/bench/Worker.js"))
  }, 120_000)

/** Interrupt the run and wait for it to end (a guard against a hang, not a time budget). */
const interrupt = async (run: Run) => {
  run.child.kill("SIGINT")
  const guard = setTimeout(() => run.child.kill("SIGKILL"), 120_000)
  const exit = await run.exited
  clearTimeout(guard)
  return exit
}

describe("spawnkit bench interrupted", () => {
  it(
    "SIGINT in the first scenario releases workers, tmux, homes and the throwaway cluster, and exits non-zero",
    async () => {
      const run = startBench([
        "--processes",
        "2",
        "--spawns",
        "400",
        "--only",
        "one-task",
        "--home-finished",
        "0",
        "--postgres",
        "auto"
      ])
      await midScenario(run, "] floor: started")
      // What is to be released exists: the scenario's home and tmux server, its workers, the cluster and its server.
      const before = Fs.readdirSync(run.scratch)
      expect(before.some((d) => d.startsWith("spawnkit-bench-floor-"))).toBe(true)
      expect(before.some((d) => d.startsWith("spawnkit-bench-pg-"))).toBe(true)
      expect(processesUnder(run.scratch).some((p) => p.includes("postgres") && p.includes(" -D "))).toBe(true)

      const exit = await interrupt(run)
      expect(exit.code, run.stderr()).toBe(130)
      expect(run.stderr()).not.toContain("[2/")
      expect(Fs.readdirSync(run.scratch)).toEqual([])
      expect(processesUnder(run.scratch)).toEqual([])
    },
    300_000
  )

  it("SIGINT in a PostgreSQL scenario drops its database on the given server", async () => {
    // The floor runs first, always: few enough spawns that it ends soon, enough that the next scenario is still
    // running when it is interrupted.
    const run = startBench([
      "--processes",
      "2",
      "--spawns",
      "60",
      "--only",
      "one-task-pg",
      "--home-finished",
      "0",
      "--postgres",
      inject("databaseUrl")
    ])
    await midScenario(run, "[2/2] spawnkit-one-task-pg: started")
    const ours = `spawnkit_bench_${run.child.pid}_`
    const databases = () => {
      const out = spawnSync(inject("psql"), ["-X", "-Atc", "SELECT datname FROM pg_database", inject("databaseUrl")], {
        encoding: "utf8"
      })
      expect(out.status, out.stderr).toBe(0)
      return out.stdout.split("\n").filter((d) => d.startsWith(ours))
    }
    expect(databases()).toHaveLength(1)

    const exit = await interrupt(run)
    expect(exit.code, run.stderr()).toBe(130)
    expect(databases()).toEqual([])
    expect(Fs.readdirSync(run.scratch)).toEqual([])
    expect(processesUnder(run.scratch)).toEqual([])
  }, 300_000)
})
