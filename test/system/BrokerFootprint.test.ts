/**
 * The benchmark's broker-footprint measurement (src/bench/BrokerFootprint.ts) with 3 agents: N stdio servers against
 * one broker, every client answered, memory read from real processes, and nothing of what it started left behind,
 * whether it ends or is interrupted in either phase. Each run gets a scratch TMPDIR of its own, so every directory
 * and process of the measurement can be found by that path (its processes inherit it, or a home below it).
 *
 * Needs `npm run build` first (the servers run dist/cli/main.js).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { measureBrokerFootprint } from "../../src/bench/BrokerFootprint.js"
import { BenchFailed } from "../../src/bench/Scenario.js"
import { CLI, waitFor } from "../support/Harness.js"

/** A live (non-zombie) process's command line and environment; undefined once it is gone. */
const processInfo = (pid: number) => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return undefined
    return {
      argv: Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"),
      environ: Fs.readFileSync(`/proc/${pid}/environ`, "utf8")
    }
  } catch {
    return undefined
  }
}

/** Live processes (this one aside) whose command line or environment names `dir`. */
const processesUnder = (dir: string) =>
  Fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    if (pid === process.pid) return false
    const info = processInfo(pid)
    return info !== undefined && (info.argv.some((a) => a.includes(dir)) || info.environ.includes(dir))
  })

/** The spawnkit servers running on a home below `dir`: stdio ones, or the broker (`--http`). */
const serversUnder = (dir: string, kind: "stdio" | "http") =>
  processesUnder(dir).filter((pid) => {
    const argv = processInfo(pid)?.argv ?? []
    return argv[1] === CLI && argv[2] === "serve" && argv.includes("--http") === (kind === "http")
  })

/** Run `body` with TMPDIR set to a new scratch directory (removed afterwards); the directory is passed in. */
const withScratch = <A, E, R>(body: (scratch: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const previous = process.env["TMPDIR"]
      const scratch = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sk-fp-"))
      process.env["TMPDIR"] = scratch
      return { previous, scratch }
    }),
    ({ scratch }) => body(scratch),
    ({ previous, scratch }) =>
      Effect.sync(() => {
        if (previous === undefined) delete process.env["TMPDIR"]
        else process.env["TMPDIR"] = previous
        // Should the measurement have left a tmux server, stop it before removing its directory.
        for (const dir of Fs.readdirSync(scratch)) {
          spawnSync("tmux", ["-S", NodePath.join(scratch, dir, "tmux.sock"), "kill-server"], { stdio: "ignore" })
        }
        Fs.rmSync(scratch, { recursive: true, force: true })
      })
  )

/** Nothing the measurement started is left: no directory in the scratch TMPDIR, no process naming it. */
const expectNothingLeft = (scratch: string) =>
  Effect.promise(async () => {
    // The scope's release waits for the processes it stops; zombies of processes tmux started may take a moment to go.
    await waitFor("the measurement's processes are gone", () => processesUnder(scratch).length === 0, 15_000)
      .catch(() => undefined)
    expect(processesUnder(scratch)).toEqual([])
    expect(Fs.readdirSync(scratch)).toEqual([])
  })

describe("the benchmark's broker-footprint measurement", () => {
  it.live("3 agents: 3 stdio servers against 1 broker, every client answered, and nothing left", () =>
    withScratch((scratch) =>
      Effect.gen(function*() {
        const lines: Array<string> = []
        const r = yield* measureBrokerFootprint(3, (text) => lines.push(text))
        expect(r.agents).toBe(3)
        // Counted from /proc while all clients were open: a server per agent, then one for all.
        expect(r.stdio.servers).toBe(3)
        expect(r.broker.servers).toBe(1)
        expect(r.ratios.servers).toBe(3)
        // Every client got its first answer (its own task), and each was timed.
        expect(r.stdio.answered).toBe(3)
        expect(r.broker.answered).toBe(3)
        for (const startup of [r.stdio.startup, r.broker.startup]) {
          expect(startup.count).toBe(3)
          expect(startup.p50).toBeGreaterThan(0)
          expect(startup.max).toBeGreaterThanOrEqual(startup.p50)
        }
        expect(r.broker.brokerStartMs).toBeGreaterThan(0)
        // Memory read from each process: three servers' worth against one.
        expect(r.stdio.rssPerServerMiB.count).toBe(3)
        expect(r.stdio.rssPerServerMiB.p50).toBeGreaterThan(0)
        expect(r.stdio.rssMiB).toBeCloseTo(r.stdio.rssPerServerMiB.mean * 3, 0)
        expect(r.broker.rssBeforeMiB).toBeGreaterThan(0)
        expect(r.broker.rssMiB).toBeGreaterThan(0)
        expect(r.broker.rssGrowthMiB).toBeCloseTo(r.broker.rssMiB - r.broker.rssBeforeMiB, 1)
        expect(r.ratios.memory).toBeCloseTo(r.stdio.rssMiB / r.broker.rssMiB, 1)
        expect(r.stdio.cpuSeconds).toBeGreaterThan(0)
        expect(r.broker.cpuSeconds).toBeGreaterThanOrEqual(r.broker.cpuBeforeSeconds)
        // Four distinct servers were started (three stdio, the broker), and each agent's processes were found.
        expect(new Set(r.started.serverPids).size).toBe(4)
        expect(r.started.agentPids.length).toBeGreaterThanOrEqual(3 * 2)
        expect(r.started.dir.startsWith(scratch)).toBe(true)
        expect(lines.at(-1)).toContain("broker footprint (3 agents)")
        // All gone: servers, agents, the tmux server, the directory.
        for (const pid of [...r.started.serverPids, ...r.started.agentPids]) {
          expect(processInfo(pid), `${pid}`).toBe(undefined)
        }
        expect(Fs.existsSync(r.started.dir)).toBe(false)
        const tmux = spawnSync("tmux", ["-S", NodePath.join(r.started.dir, "tmux.sock"), "list-sessions"], {
          encoding: "utf8"
        })
        expect(tmux.status).not.toBe(0)
        yield* expectNothingLeft(scratch)
      })
    ).pipe(Effect.provide(NodeServices.layer)))

  for (const phase of ["stdio", "http"] as const) {
    it.live(`interrupted while its ${phase} servers run, it leaves nothing behind`, () =>
      withScratch((scratch) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(measureBrokerFootprint(3, () => undefined))
          yield* Effect.promise(() =>
            waitFor(`a ${phase} server of the measurement runs`, () => serversUnder(scratch, phase).length > 0, 120_000)
          )
          yield* Fiber.interrupt(fiber)
          yield* expectNothingLeft(scratch)
        })
      ).pipe(Effect.provide(NodeServices.layer)))
  }

  it("bench refuses --footprint-agents out of range with InvalidInput and writes nothing", () => {
    const out = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sk-fp-out-"))
    try {
      for (const agents of ["-1", "101"]) {
        const refused = spawnSync(
          process.execPath,
          [CLI, "bench", "--only", "broker-footprint", "--footprint-agents", agents, "--out", out, "--json"],
          { encoding: "utf8" }
        )
        expect(refused.status).toBe(1)
        const error = JSON.parse(refused.stdout).error
        expect(error.tag).toBe("InvalidInput")
        expect(error.message).toContain("footprint-agents")
        expect(Fs.readdirSync(out)).toEqual([])
      }
    } finally {
      Fs.rmSync(out, { recursive: true, force: true })
    }
  })

  it.live("refuses an agent count out of range with BenchFailed and starts nothing", () =>
    withScratch((scratch) =>
      Effect.gen(function*() {
        for (const agents of [0, 101, 1.5]) {
          const error = yield* Effect.flip(measureBrokerFootprint(agents, () => undefined))
          expect(error).toBeInstanceOf(BenchFailed)
          expect(error.message).toContain(`got ${agents}`)
        }
        yield* expectNothingLeft(scratch)
      })
    ).pipe(Effect.provide(NodeServices.layer)))
})
