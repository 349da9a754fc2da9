/**
 * The spawning processes of a scenario: one worker process (Worker.ts) per attempt list, started in the scenario's
 * environment, held at a start barrier until every one is set up, then released together. Each worker is a child
 * of the scope it was started in: an interrupted or failed run kills every worker still running (its process group,
 * SIGKILL after a grace period).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { packageRoot } from "../host/PackagePaths.js"
import type { ScenarioEnv } from "./Environment.js"
import { busyCpuMs, type ProcessOutcome } from "./Figures.js"
import { BenchFailed, benchFailed } from "./Scenario.js"
import { type Done, type Sample, WorkerLine, type WorkerSpec } from "./WorkerProtocol.js"

/** The compiled worker script. */
export const workerScript = `${packageRoot}/dist/bench/Worker.js`

/** How long a worker asked to stop gets before it is killed. */
const STOP_GRACE = "2 seconds"
/** The tail of a failed worker's stderr kept in the error. */
const STDERR_TAIL = 2000

/** A started worker: set up once `ready` is done; `outcome` is what it reported when it has ended. */
interface RunningWorker {
  readonly ready: Deferred.Deferred<void, BenchFailed>
  readonly outcome: Fiber.Fiber<Omit<ProcessOutcome, "cpuMs">, BenchFailed>
}

/** Start one worker in the scope; its lines are read as they come. */
const startWorker = Effect.fn("Bench.startWorker")(function*(
  spec: WorkerSpec,
  n: number,
  env: ScenarioEnv,
  onAttempt: () => void
) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // The spec goes in a file of the scenario's directory: an attempt list can be longer than a command line should be.
  const specFile = path.join(env.dir, `worker-${n}.json`)
  yield* fs.writeFileString(specFile, JSON.stringify(spec)).pipe(
    Effect.mapError(benchFailed("writing a worker's spec"))
  )
  const handle = yield* spawner.spawn(ChildProcess.make(process.execPath, [workerScript, specFile], {
    env: env.env,
    extendEnv: true,
    stdin: "ignore",
    forceKillAfter: STOP_GRACE
  })).pipe(Effect.mapError(benchFailed("starting a benchmark worker")))
  const ready = yield* Deferred.make<void, BenchFailed>()
  const samples: Array<Sample> = []
  let done: Done | undefined
  const readLines = handle.stdout.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.mapError(benchFailed("reading a benchmark worker's output")),
    Stream.runForEach((text) =>
      Schema.decodeUnknownEffect(WorkerLine)(text).pipe(
        Effect.mapError(benchFailed("a benchmark worker's line")),
        Effect.flatMap((line) => {
          if ("ready" in line) return Deferred.succeed(ready, undefined)
          if ("done" in line) return Effect.sync(() => void (done = line))
          samples.push(line)
          return Effect.sync(onAttempt)
        })
      )
    )
  )
  const stderr = handle.stderr.pipe(
    Stream.decodeText(),
    Stream.mkString,
    Effect.mapError(benchFailed("reading a benchmark worker's stderr"))
  )
  const exitCode = handle.exitCode.pipe(Effect.mapError(benchFailed("waiting for a benchmark worker")))
  const outcome = yield* Effect.all([readLines, stderr, exitCode], { concurrency: "unbounded" }).pipe(
    Effect.flatMap(([, err, code]) =>
      code === 0 && done !== undefined
        ? Effect.succeed({
          samples,
          startMs: done.startMs,
          endMs: done.endMs,
          workerCpuMs: done.workerCpuMs,
          ...(done.lockWait !== undefined ? { lockWait: done.lockWait } : {})
        })
        : Effect.fail(new BenchFailed({ reason: `benchmark worker exited with ${code}: ${err.slice(-STDERR_TAIL)}` }))
    ),
    // A worker that ends before it is set up fails the barrier too, so nothing waits for it.
    Effect.tapError((e) => Deferred.fail(ready, e)),
    Effect.forkScoped
  )
  return { ready, outcome } satisfies RunningWorker
})

/**
 * Start one worker per spec, release them together once all are set up, and return what each reported. The
 * machine's busy CPU while they ran is shared out evenly between them.
 */
export const runWorkers = Effect.fn("Bench.runWorkers")(function*(
  specs: ReadonlyArray<Omit<WorkerSpec, "goFile">>,
  env: ScenarioEnv,
  onAttempt: () => void
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const goFile = path.join(env.dir, "go")
  return yield* Effect.scoped(Effect.gen(function*() {
    const workers = yield* Effect.forEach(specs, (spec, n) => startWorker({ ...spec, goFile }, n, env, onAttempt))
    yield* Effect.forEach(workers, (w) => Deferred.await(w.ready), { discard: true })
    const cpuBefore = yield* busyCpuMs.pipe(Effect.mapError(benchFailed("reading /proc/stat")))
    yield* fs.writeFileString(goFile, "").pipe(Effect.mapError(benchFailed("opening the start barrier")))
    const outcomes = yield* Fiber.joinAll(workers.map((w) => w.outcome))
    const cpuMs = (yield* busyCpuMs.pipe(Effect.mapError(benchFailed("reading /proc/stat")))) - cpuBefore
    return outcomes.map((o): ProcessOutcome => ({ ...o, cpuMs: cpuMs / outcomes.length }))
  }))
})
