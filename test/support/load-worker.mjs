// A process of the events-under-load test: `node load-worker.mjs TASK_ID SECONDS TAG` spawns (queued), kills and
// reports on agents of one task at random for SECONDS through the built API (dist/), then prints one JSON line:
// { "spawned": n, "killed": n, "reported": n, "refused": { tag: n } }. Refusals a racing workload expects (an agent
// that ended meanwhile, a full queue timing out, an agent that exited before its spawn committed) are counted, not
// fatal; anything else fails the process.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Spawnkit from "../../dist/index.js"

const [taskId, seconds, tag] = process.argv.slice(2)
// An agent may also exit before its spawn commits when the machine is loaded (its spawn then fails, as it should).
const EXPECTED = new Set(["AgentNotRunning", "QueueTimedOut", "LimitReached", "AgentExitedAtStartup"])

const program = Effect.gen(function*() {
  const deadline = Date.now() + Number(seconds) * 1000
  const ids = []
  const counts = { spawned: 0, killed: 0, reported: 0, refused: {} }
  const refused = (e) =>
    EXPECTED.has(e._tag)
      ? Effect.sync(() => (counts.refused[e._tag] = (counts.refused[e._tag] ?? 0) + 1))
      : Effect.fail(e)
  const pick = () => ids[Math.floor(Math.random() * ids.length)]
  for (let i = 0; Date.now() < deadline; i++) {
    const r = Math.random()
    if (r < 0.55 || ids.length === 0) {
      const agent = yield* Spawnkit.spawn({
        taskId,
        agentType: "load",
        prompt: `${tag} ${i}`,
        engine: "custom",
        queue: true,
        queueTimeoutSeconds: 30
      }).pipe(Effect.map((a) => a.agent_id), Effect.catch((e) => refused(e).pipe(Effect.as(undefined))))
      if (agent !== undefined) {
        ids.push(agent)
        counts.spawned++
      }
    } else if (r < 0.75) {
      yield* Spawnkit.kill(taskId, pick(), "load test").pipe(Effect.tap(() => Effect.sync(() => counts.killed++)))
    } else {
      yield* Spawnkit.updateProgress(taskId, pick(), { status: "working", message: `step ${i}`, progress: i % 100 })
        .pipe(Effect.tap(() => Effect.sync(() => counts.reported++)), Effect.catch(refused))
    }
  }
  process.stdout.write(JSON.stringify(counts) + "\n")
})

NodeRuntime.runMain(program.pipe(Effect.provide(Spawnkit.layer())))
