/**
 * A benchmark worker: one OS process that makes its share of spawns one after another and prints one JSON line per
 * spawn on stdout (WorkerProtocol.ts). Started by the harness (Workers.ts), never by hand:
 *
 *   node dist/bench/Worker.js <file holding the WorkerSpec as JSON>
 *
 * Modes:
 * - `floor`: bare `tmux new-session -d` with the agent command spawnkit would run; no registry.
 * - `spawnkit`: the real Spawner, configured from the environment (SPAWNKIT_HOME, SPAWNKIT_TMUX_SOCKET, ...).
 * - `unlocked`: the older orchestrator's design (Unlocked.ts): read the JSON registry, check limits, write the
 *   prompt, start the session, write the JSON registry back in place; no lock.
 *
 * A signal interrupts it (the harness stops its workers with SIGTERM when its scope closes).
 */
import { NodeRuntime } from "@effect/platform-node"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { lockWaitMs } from "../host/FileLock.js"
import { spawn } from "../spawn/Spawner.js"
import { layer, type Services } from "../Spawnkit.js"
import { spawnUnlocked, startBareSession } from "./Unlocked.js"
import type { Attempt, WorkerSpec } from "./WorkerProtocol.js"

/** How often the start barrier is looked at, and for how long at most. */
const BARRIER_POLL = "2 millis"
const BARRIER_WAIT = "5 minutes"

/** The start barrier was not opened in time: the harness is gone. */
class BarrierNotReached
  extends Schema.TaggedError<BarrierNotReached>()("BarrierNotReached", { goFile: Schema.String })
{}

const line = (value: unknown) => Effect.sync(() => void process.stdout.write(JSON.stringify(value) + "\n"))

const waitForGo = (goFile: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    while (!(yield* fs.exists(goFile))) yield* Effect.sleep(BARRIER_POLL)
  }).pipe(
    Effect.timeoutOrElse({ duration: BARRIER_WAIT, orElse: () => Effect.fail(new BarrierNotReached({ goFile })) })
  )

const elapsedMs = (startNanos: bigint) => Effect.map(Clock.currentTimeNanos, (now) => Number(now - startNanos) / 1e6)

/**
 * How a spawn ended: undefined when it made an agent, else its rejection or failure tag (a defect is "Defect"). The
 * old design's failures other than a torn read are reported with their message, as it would have shown them.
 */
const tagOf = (mode: WorkerSpec["mode"], exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return typeof exit.value === "string" ? exit.value : undefined
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) return "Defect"
  const tag = (error.value as { readonly _tag?: unknown })._tag
  if (mode === "spawnkit" || tag === "TornRead") return String(tag ?? "Error")
  return `Error: ${String((error.value as Error).message).split("\n")[0]}`
}

/** One spawn in the spec's mode; success carries a rejection tag of the old design, if any. */
const spawnOne = (spec: WorkerSpec, attempt: Attempt, i: number): Effect.Effect<unknown, unknown, Services> => {
  if (spec.mode === "spawnkit") return spawn(attempt)
  const [socket, command, home] = [spec.socket!, spec.command!, spec.home!]
  if (spec.mode === "unlocked") return spawnUnlocked({ home, socket, command, attempt })
  return Effect.gen(function*() {
    const name = `floor_${process.pid}_${i}`
    const prompt = `${home}/${name}.prompt`
    yield* (yield* FileSystem.FileSystem).writeFileString(prompt, attempt.prompt)
    yield* startBareSession(socket, name, prompt, `${home}/${name}.log`, command)
  })
}

const worker = (spec: WorkerSpec) =>
  Effect.gen(function*() {
    yield* line({ ready: true })
    yield* waitForGo(spec.goFile)
    const cpu0 = process.cpuUsage()
    const startMs = yield* Clock.currentTimeMillis
    for (const [i, attempt] of spec.attempts.entries()) {
      const t0 = yield* Clock.currentTimeNanos
      const tag = tagOf(spec.mode, yield* Effect.exit(spawnOne(spec, attempt, i)))
      const ms = yield* elapsedMs(t0)
      yield* line({ i, ok: tag === undefined, ms, ...(tag !== undefined ? { tag } : {}) })
    }
    const endMs = yield* Clock.currentTimeMillis
    const cpu = process.cpuUsage(cpu0)
    const lockWait = spec.mode === "spawnkit" ? { lockWait: yield* Metric.value(lockWaitMs) } : {}
    yield* line({ done: true, startMs, endMs, workerCpuMs: (cpu.user + cpu.system) / 1000, ...lockWait })
  })

const specFile = process.argv[2]
Effect.gen(function*() {
  if (specFile === undefined) return yield* Effect.die(new Error("usage: Worker.js <spec file>"))
  const spec = JSON.parse(yield* (yield* FileSystem.FileSystem).readFileString(specFile)) as WorkerSpec
  yield* worker(spec)
}).pipe(
  // Configured from the environment the harness gives every worker; the floor and the old design use only its
  // file system.
  Effect.provide(layer()),
  // stdout carries the protocol only: a failure is logged to stderr, which the harness reports.
  Effect.tapCause((cause) => (Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError(cause))),
  Effect.provideService(Logger.LogToStderr, true),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
