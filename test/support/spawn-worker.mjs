// A spawn worker for the multi-process race tests (test/system/Race.test.ts): one real OS process that runs a share of
// spawn attempts concurrently against one spawnkit home, and prints one JSON line per attempt on stdout.
//
//   node spawn-worker.mjs '<spec JSON>'
//
// spec: { "goFile"?: path, "attempts": [{ "taskId", "agentType", "prompt", "parent"?, "idempotencyKey"? }, ...] }
//
// Configuration comes from the environment, as for any spawnkit process (SPAWNKIT_HOME, SPAWNKIT_TMUX_SOCKET,
// SPAWNKIT_AGENT_COMMAND, SPAWNKIT_ENGINE, SPAWNKIT_GLOBAL_MAX_CONCURRENT, SPAWNKIT_DATABASE_URL, SPAWNKIT_HOST_ID, ...). The layer is built first; then the
// worker prints {"ready":true} and, when `goFile` is given, waits until that file exists, so that all workers start
// their attempts together. Each attempt's outcome is captured on its own (Effect.exit): one failure never stops the
// others. Output lines:
//   {"i":n,"ok":true,"agent_id":...,"existing":bool,"depth":n,"parent":...,"tmux_session":...}
//   {"i":n,"ok":false,"tag":...,"existingAgentId"?,"limit"?,"depth"?,"message":...}
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Spawnkit from "../../dist/index.js"

const BARRIER_TIMEOUT_MS = 120_000

const spec = JSON.parse(process.argv[2] ?? process.env.SPAWN_WORKER_SPEC ?? "{}")
const attempts = spec.attempts ?? []

const line = (value) => process.stdout.write(JSON.stringify(value) + "\n")

const waitForGo = (goFile) =>
  Effect.promise(async () => {
    const deadline = Date.now() + BARRIER_TIMEOUT_MS
    while (!Fs.existsSync(goFile)) {
      if (Date.now() > deadline) throw new Error(`start barrier ${goFile} not reached in time`)
      await new Promise((r) => setTimeout(r, 2))
    }
  })

const outcome = (i, exit) => {
  if (Exit.isSuccess(exit)) {
    const r = exit.value
    return {
      i,
      ok: true,
      agent_id: r.agent_id,
      existing: r.existing,
      depth: r.depth,
      parent: r.parent,
      status: r.status,
      tmux_session: r.tmux_session
    }
  }
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) return { i, ok: false, tag: "Defect", message: Cause.pretty(exit.cause) }
  const e = error.value
  return {
    i,
    ok: false,
    tag: e._tag ?? "Unknown",
    ...(e.existingAgentId !== undefined ? { existingAgentId: e.existingAgentId } : {}),
    ...(e.limit !== undefined ? { limit: e.limit } : {}),
    ...(e.depth !== undefined ? { depth: e.depth } : {}),
    message: e.message
  }
}

const program = Effect.gen(function*() {
  line({ ready: true, pid: process.pid })
  if (spec.goFile !== undefined) yield* waitForGo(spec.goFile)
  yield* Effect.forEach(
    attempts,
    (attempt, i) =>
      Spawnkit.spawn(attempt).pipe(
        Effect.exit,
        Effect.map((exit) => line(outcome(i, exit)))
      ),
    { concurrency: "unbounded", discard: true }
  )
})

Effect.runPromise(program.pipe(Effect.provide(Spawnkit.layer()))).then(
  () => {
    process.exitCode = 0
  },
  (error) => {
    process.stderr.write(`spawn-worker failed: ${error?.stack ?? error}\n`)
    process.exitCode = 1
  }
)
