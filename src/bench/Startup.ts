/**
 * The benchmark's start-up scenario. Every spawnkit command, every exit the tmux pane-died hook records and every
 * agent's stdio MCP server is a new Node process, so how fast the CLI starts and how small an idle server stays are
 * measured here, against Node's own start as the floor, in rounds that run every measurement once each (so that a
 * machine's changing load falls on all of them alike):
 *
 * - `node -e 0` (the floor), `spawnkit --help`, `spawnkit status --task T` (file registry, a temp home) and a CLI
 *   spawn (custom engine, `sleep` as the agent): wall time from spawning the process to its exit;
 * - an idle stdio `spawnkit serve` and, as its floor, an idle `node`: resident memory (VmRSS of /proc/<pid>/status)
 *   once the server has answered `initialize` (the idle node once it has started).
 *
 * Each figure is the median of its rounds. Everything runs in a temp directory with its own tmux socket; the tmux
 * server (and the agents it holds) is killed and the directory removed at the end.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { cliScript } from "../host/PackagePaths.js"

/** A start-up measurement could not be taken: a command failed or its process could not be read. */
export class StartupFailed extends Schema.TaggedError<StartupFailed>()("StartupFailed", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `Start-up measurement failed at ${this.step}: ${this.reason}`
  }
}

/** One measured figure: the median (and range) of its rounds, and its ratio to its floor. */
export interface StartupRow {
  readonly name: string
  readonly unit: "ms" | "MiB"
  readonly median: number
  readonly min: number
  readonly max: number
  /** median / the floor's median (the floor itself: 1). */
  readonly floorRatio: number
  /** The goal the median must stay under, where there is one, and whether it did. */
  readonly goal?: { readonly under: number; readonly met: boolean }
}

/** The start-up scenario's results. */
export interface StartupReport {
  readonly rounds: number
  readonly rows: ReadonlyArray<StartupRow>
}

/** Goals of the start-up scenario on the benchmark's machine. */
export const STARTUP_GOALS = { helpMs: 300, statusMs: 300, serveMiB: 100 } as const

/** The agent every spawn of the scenario starts: it lives until its tmux server is killed. */
const AGENT_COMMAND = "sleep 600"

const encoder = new TextEncoder()

const collect = (stream: Stream.Stream<Uint8Array, unknown>) => stream.pipe(Stream.decodeText(), Stream.mkString)

const tail = (text: string) => text.trim().split("\n").slice(-5).join("\n")

/** The spawner's failure (a missing binary, a broken pipe) as this scenario's. */
const failedAt = (step: string) => (e: unknown) =>
  new StartupFailed({ step, reason: e instanceof Error ? e.message : String(e) })

/** Run `node args` to its end; its wall time in milliseconds and its stdout. Fails unless it exits with 0. */
const runNode = (step: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.scoped(
    Effect.gen(function*() {
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const start = yield* Clock.currentTimeNanos
      const handle = yield* spawner.spawn(
        ChildProcess.make(process.execPath, [...args], { env, extendEnv: false, stdin: "ignore" })
      )
      const [stdout, stderr, code] = yield* Effect.all([
        collect(handle.stdout),
        collect(handle.stderr),
        handle.exitCode
      ], {
        concurrency: "unbounded"
      })
      const end = yield* Clock.currentTimeNanos
      if (code !== 0) {
        return yield* new StartupFailed({ step, reason: `exited with ${code}: ${tail(stderr)}` })
      }
      return { ms: Number(end - start) / 1e6, stdout }
    })
  ).pipe(Effect.mapError((e) => (e instanceof StartupFailed ? e : failedAt(step)(e))))

/** VmRSS of a live process, in MiB. */
const residentMiB = (step: string, pid: number) =>
  FileSystem.FileSystem.use((fs) => fs.readFileString(`/proc/${pid}/status`)).pipe(
    Effect.mapError(failedAt(step)),
    Effect.flatMap((status) => {
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
      return kb === undefined
        ? Effect.fail(new StartupFailed({ step, reason: `no VmRSS in /proc/${pid}/status` }))
        : Effect.succeed(Number(kb) / 1024)
    })
  )

/**
 * Start `node args` with `input` (and nothing more, until measured) on its stdin, wait for the first stdout line
 * that `ready` accepts, read its resident memory, then end its stdin and wait for it to exit with 0.
 */
const idleResident = (
  step: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  input: string,
  ready: (line: string) => boolean
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const measured = yield* Deferred.make<void>()
      const stdin = Stream.concat(
        Stream.make(encoder.encode(input)),
        Stream.fromEffect(Deferred.await(measured)).pipe(Stream.drain)
      )
      const handle = yield* spawner.spawn(
        ChildProcess.make(process.execPath, [...args], { env, extendEnv: false, stdin })
      )
      const stderr = yield* collect(handle.stderr).pipe(Effect.forkScoped)
      const lines = handle.stdout.pipe(Stream.decodeText(), Stream.splitLines)
      const first = yield* lines.pipe(Stream.filter(ready), Stream.runHead)
      if (Option.isNone(first)) {
        yield* Deferred.succeed(measured, undefined)
        const code = yield* handle.exitCode
        return yield* new StartupFailed({ step, reason: `ended (${code}) before it was ready` })
      }
      const mib = yield* residentMiB(step, handle.pid)
      yield* Deferred.succeed(measured, undefined)
      const code = yield* handle.exitCode
      if (code !== 0) {
        const err = yield* Fiber.join(stderr)
        return yield* new StartupFailed({ step, reason: `exited with ${code} after stdin ended: ${tail(err)}` })
      }
      return mib
    })
  ).pipe(Effect.mapError((e) => (e instanceof StartupFailed ? e : failedAt(step)(e))))

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "spawnkit-bench", version: "0" } }
}) + "\n"

/** Whether a line is the answer to INITIALIZE. */
const answersInitialize = (line: string) => {
  try {
    const message = JSON.parse(line)
    return message?.id === 1 && message?.result !== undefined
  } catch {
    return false
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100

const median = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const row = (
  name: string,
  unit: StartupRow["unit"],
  samples: ReadonlyArray<number>,
  floor: number,
  under?: number
): StartupRow => ({
  name,
  unit,
  median: round2(median(samples)),
  min: round2(Math.min(...samples)),
  max: round2(Math.max(...samples)),
  floorRatio: round2(median(samples) / floor),
  ...(under === undefined ? {} : { goal: { under, met: median(samples) < under } })
})

/** Stop the scenario's tmux server (and the agents in it); a server that never started is not an error. */
const killTmux = (socket: string) =>
  Effect.scoped(
    Effect.gen(function*() {
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const handle = yield* spawner.spawn(ChildProcess.make("tmux", ["-S", socket, "kill-server"], { stdin: "ignore" }))
      const [stderr, code] = yield* Effect.all([collect(handle.stderr), handle.exitCode], { concurrency: "unbounded" })
      if (code !== 0 && !/no server running|error connecting|No such file/i.test(stderr)) {
        yield* Effect.logWarning(
          `start-up scenario: tmux kill-server on ${socket} exited with ${code}: ${tail(stderr)}`
        )
      }
    })
  ).pipe(Effect.catch((e) => Effect.logWarning(`start-up scenario: could not stop tmux on ${socket}: ${String(e)}`)))

/** Samples of one run, one entry per round. */
interface Samples {
  readonly floor: Array<number>
  readonly help: Array<number>
  readonly status: Array<number>
  readonly spawn: Array<number>
  readonly nodeIdle: Array<number>
  readonly serveIdle: Array<number>
}

/** The scenario's place: a temp directory with its own home and tmux socket (both gone with the scope). */
const startupEnvironment = Effect.fnUntraced(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "spawnkit-startup-" }).pipe(
    Effect.mapError(failedAt("setup"))
  )
  const socket = path.join(dir, "tmux.sock")
  yield* Effect.addFinalizer(() => killTmux(socket))
  // The caller's own spawnkit settings (a database URL, a home, an agent identity) never reach the scenario.
  const inherited = Object.entries(process.env).flatMap((
    [k, v]
  ) => (k.startsWith("SPAWNKIT_") || v === undefined ? [] : [[k, v] as const]))
  const env: Record<string, string> = {
    ...Object.fromEntries(inherited),
    SPAWNKIT_HOME: path.join(dir, "home"),
    SPAWNKIT_TMUX_SOCKET: socket,
    SPAWNKIT_AGENT_COMMAND: AGENT_COMMAND
  }
  return env
})

/** One round: the floor, each command, and the idle footprints, appended to `samples`. */
const startupRound = Effect.fnUntraced(function*(
  samples: Samples,
  env: Record<string, string>,
  taskId: string,
  round: number
) {
  samples.floor.push((yield* runNode("node -e 0", ["-e", "0"], env)).ms)
  samples.help.push((yield* runNode("spawnkit --help", [cliScript, "--help"], env)).ms)
  samples.status.push((yield* runNode("spawnkit status", [cliScript, "status", "--task", taskId], env)).ms)
  const prompt = `start-up round ${round + 1}`
  const spawnArgs = [
    cliScript,
    "spawn",
    "--task",
    taskId,
    "--type",
    "startup",
    "--prompt",
    prompt,
    "--engine",
    "custom"
  ]
  samples.spawn.push((yield* runNode("spawnkit spawn", spawnArgs, env)).ms)
  const idleNode = ["-e", "process.stdout.write('ready\\n'); process.stdin.resume()"]
  samples.nodeIdle.push(yield* idleResident("idle node", idleNode, env, "", (l) => l === "ready"))
  samples.serveIdle.push(
    yield* idleResident("spawnkit serve", [cliScript, "serve"], env, INITIALIZE, answersInitialize)
  )
})

/** The report of a run's samples: medians and ratios to the floors, against the goals. */
const startupReport = (rounds: number, samples: Samples): StartupReport => {
  const floor = median(samples.floor)
  const memoryFloor = median(samples.nodeIdle)
  return {
    rounds,
    rows: [
      row("node -e 0 (floor)", "ms", samples.floor, floor),
      row("spawnkit --help", "ms", samples.help, floor, STARTUP_GOALS.helpMs),
      row("spawnkit status --task T", "ms", samples.status, floor, STARTUP_GOALS.statusMs),
      row("spawnkit spawn (custom engine)", "ms", samples.spawn, floor),
      row("idle node (memory floor)", "MiB", samples.nodeIdle, memoryFloor),
      row(
        "idle spawnkit serve (stdio, after initialize)",
        "MiB",
        samples.serveIdle,
        memoryFloor,
        STARTUP_GOALS.serveMiB
      )
    ]
  }
}

/** Run the start-up scenario for `rounds` rounds (1 to 45: each round spawns one agent into one task). */
export const measureStartup = (rounds: number) =>
  Effect.scoped(
    Effect.gen(function*() {
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 45) {
        return yield* new StartupFailed({
          step: "options",
          reason: `rounds must be an integer from 1 to 45, got ${rounds}`
        })
      }
      const fs = yield* FileSystem.FileSystem
      if (!(yield* fs.exists(cliScript).pipe(Effect.mapError(failedAt("options"))))) {
        return yield* new StartupFailed({ step: "options", reason: `${cliScript} is missing: run npm run build first` })
      }
      const env = yield* startupEnvironment()
      const limit = String(rounds)
      const created = yield* runNode("task create", [
        cliScript,
        "task",
        "create",
        "--description",
        "start-up scenario",
        "--max-concurrent",
        limit,
        "--max-agents",
        limit
      ], env)
      const taskId = created.stdout.trim()
      const samples: Samples = { floor: [], help: [], status: [], spawn: [], nodeIdle: [], serveIdle: [] }
      for (let i = 0; i < rounds; i++) yield* startupRound(samples, env, taskId, i)
      return startupReport(rounds, samples)
    })
  )

/** The start-up results as a markdown table. */
export const startupMarkdown = (report: StartupReport): ReadonlyArray<string> => [
  `| start-up (${report.rounds} rounds) | median | min | max | x floor | goal |`,
  "|---|---|---|---|---|---|",
  ...report.rows.map((r) =>
    `| ${r.name} | ${r.median} ${r.unit} | ${r.min} | ${r.max} | ${r.floorRatio} | ${
      r.goal === undefined ? "—" : `under ${r.goal.under} ${r.unit}: ${r.goal.met ? "met" : "**not met**"}`
    } |`
  ),
  ""
]
