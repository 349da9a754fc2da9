/**
 * A benchmark worker: one OS process that makes its share of spawns one after another and prints one JSON line per
 * spawn on stdout. Run by the benchmark (Bench.ts), never by hand:
 *
 *   node dist/bench/Worker.js '<WorkerSpec JSON>'
 *
 * Modes:
 * - `floor`: bare `tmux new-session -d` with the agent command spawnkit would run; no registry.
 * - `spawnkit`: the real Spawner, configured from the environment (SPAWNKIT_HOME, SPAWNKIT_TMUX_SOCKET, ...).
 * - `unlocked`: the older orchestrator's design: read the JSON registry, check limits, write the prompt, start the
 *   session, write the JSON registry back in place; no lock.
 *
 * Lines: {"ready":true} once set up; after `goFile` exists, {"i","ok","ms","tag"?} per spawn; last
 * {"done":true,"startMs","endMs","lockWait"?} (epoch ms; lockWait is the registry lock's wait histogram).
 */
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { layer } from "../Spawnkit.js"
import { spawn } from "../spawn/Spawner.js"
import { lockWaitMs } from "../registry/FileLock.js"
import { spawnUnlocked, startBareSession } from "./Unlocked.js"

/** One spawn to make. */
export interface Attempt {
  readonly taskId: string
  readonly agentType: string
  readonly prompt: string
}

/** What a worker is told to do. */
export interface WorkerSpec {
  readonly mode: "floor" | "spawnkit" | "unlocked"
  readonly goFile: string
  readonly attempts: ReadonlyArray<Attempt>
  /** floor and unlocked: the tmux socket path, the agent command, a directory for prompt and log files. */
  readonly socket?: string
  readonly command?: ReadonlyArray<string>
  readonly home?: string
}

const line = (value: unknown) => process.stdout.write(JSON.stringify(value) + "\n")

const waitForGo = async (goFile: string) => {
  const deadline = Date.now() + 300_000
  while (!Fs.existsSync(goFile)) {
    if (Date.now() > deadline) throw new Error(`start barrier ${goFile} not reached`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(start)
  return (d.user + d.system) / 1000
}

const tagOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.findErrorOption(exit.cause)
  return Option.isSome(error) ? String((error.value as { _tag?: string })._tag ?? "Error") : "Defect"
}

const worker = async (spec: WorkerSpec) => {
  if (spec.mode === "spawnkit") {
    const program = Effect.gen(function*() {
      line({ ready: true })
      yield* Effect.promise(() => waitForGo(spec.goFile))
      const cpu0 = process.cpuUsage()
      const startMs = Date.now()
      for (const [i, attempt] of spec.attempts.entries()) {
        const t0 = performance.now()
        const exit = yield* Effect.exit(spawn(attempt))
        const ms = performance.now() - t0
        const tag = tagOf(exit)
        line({ i, ok: tag === undefined, ms, ...(tag !== undefined ? { tag } : {}) })
      }
      const endMs = Date.now()
      line({ done: true, startMs, endMs, workerCpuMs: cpuMsSince(cpu0), lockWait: yield* Metric.value(lockWaitMs) })
    })
    await Effect.runPromise(program.pipe(Effect.provide(layer())))
    return
  }
  const socket = spec.socket!
  const command = spec.command!
  const home = spec.home!
  line({ ready: true })
  await waitForGo(spec.goFile)
  const cpu0 = process.cpuUsage()
  const startMs = Date.now()
  for (const [i, attempt] of spec.attempts.entries()) {
    const t0 = performance.now()
    let tag: string | undefined
    try {
      if (spec.mode === "floor") {
        const name = `floor_${process.pid}_${i}`
        const prompt = `${home}/${name}.prompt`
        Fs.writeFileSync(prompt, attempt.prompt)
        await startBareSession(socket, name, prompt, `${home}/${name}.log`, command)
      } else {
        tag = await spawnUnlocked({ home, socket, command, attempt })
      }
    } catch (e) {
      // The old design reads registries that another process is rewriting in place: a torn read is its failure mode.
      tag = e instanceof SyntaxError ? "TornRead" : `Error: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`
    }
    line({ i, ok: tag === undefined, ms: performance.now() - t0, ...(tag !== undefined ? { tag } : {}) })
  }
  line({ done: true, startMs, endMs: Date.now(), workerCpuMs: cpuMsSince(cpu0) })
}

worker(JSON.parse(process.argv[2] ?? "{}") as WorkerSpec).catch((e: unknown) => {
  process.stderr.write(`bench worker failed: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exitCode = 1
})
