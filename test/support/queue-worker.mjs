// A spawner process for the queue tests: `node queue-worker.mjs TASK_ID COUNT TAG [TIMEOUT_SECONDS]` makes COUNT
// queued spawns at once through the built API (dist/), with the environment's settings, and prints one JSON line:
// { "agents": [ids in the order their spawns returned], "failures": [error tags] }.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Spawnkit from "../../dist/index.js"

const [taskId, count, tag, timeout = "600"] = process.argv.slice(2)
const spawns = Array.from({ length: Number(count) }, (_, i) =>
  Spawnkit.spawn({
    taskId,
    agentType: "queued",
    prompt: `${tag} ${i}`,
    engine: "custom",
    queue: true,
    queueTimeoutSeconds: Number(timeout)
  }).pipe(Effect.exit))
// runMain interrupts the program on SIGINT and SIGTERM: the spawns' scopes release what they hold (their places in
// line included) before the process exits.
NodeRuntime.runMain(
  Effect.all(spawns, { concurrency: "unbounded" }).pipe(
    Effect.flatMap((exits) =>
      Effect.sync(() => {
        const agents = exits.filter(Exit.isSuccess).map((e) => e.value.agent_id)
        const failures = exits.filter(Exit.isFailure).map((e) => String(e.cause))
        process.stdout.write(JSON.stringify({ agents, failures }) + "\n")
      })
    ),
    Effect.provide(Spawnkit.layer())
  )
)
