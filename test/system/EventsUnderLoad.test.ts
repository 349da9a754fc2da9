/**
 * The event journal under load, on both registries: 8 processes spawn (queued), kill and report on agents that exit
 * by themselves at random, for SPAWNKIT_LOAD_SECONDS (default 60), with `spawnkit supervise` recording exits. Then:
 * the sequence has no gap and no duplicate, each agent's events follow its registry states in order and end in the
 * status its record ends in, and replay from any sequence number yields exactly the rest. Needs `npm run build`.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Stream from "effect/Stream"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { BACKENDS, CLI, makeTempDir, runIn, runNode, type TestEnv, testEnvs, waitFor } from "../support/Harness.js"

const newEnv = testEnvs()
const SECONDS = Number(process.env["SPAWNKIT_LOAD_SECONDS"] ?? 60)
const WORKER = NodePath.resolve(import.meta.dirname, "..", "support", "load-worker.mjs")
const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL")
})

const start = (env: TestEnv, args: ReadonlyArray<string>) => {
  const run = runNode(env, args)
  children.push(run.child)
  return run
}

const TERMINAL = new Set(["exited", "killed", "timed_out", "stalled", "lost"])

describe.each(BACKENDS)("events under load (%s registry)", (backend) => {
  it(`8 processes spawning, killing and reporting for ${SECONDS} s: a gap-free journal that replays exactly`, async () => {
    const dir = makeTempDir("spawnkit-load-agent-")
    const script = NodePath.join(dir, "agent.sh")
    Fs.writeFileSync(
      script,
      `sleep $(awk -v s=$$ 'BEGIN { srand(s); print 0.2 + rand() * 1.3 }')\nexit $(( $$ % 3 ))\n`
    )
    const env = newEnv(`sh ${script}`, backend)
    const task = await runIn(env, Spawnkit.createTask({ description: "load", max_concurrent: 12, max_agents: 100000 }))
    const supervisor = start(env, [CLI, "supervise"])
    // It is stopped at the end (or killed after a failure): its ending is not this test's outcome.
    supervisor.done.catch(() => undefined)
    await waitFor("the supervisor is up", () => Fs.existsSync(NodePath.join(env.home, ".spawnkit-exits")), 60_000)
    const workers = Array.from({ length: 8 }, (_, i) => start(env, [WORKER, task.task_id, String(SECONDS), `w${i}`]))
    const reports = (await Promise.all(workers.map((w) => w.done))).map((out) => JSON.parse(out))
    const spawned = reports.reduce((n, r) => n + r.spawned, 0)
    expect(spawned).toBeGreaterThan(8)
    await waitFor("every agent ended", () => env.readTask(task.task_id).active_count === 0, 180_000)
    supervisor.child.kill("SIGTERM")
    await supervisor.done.catch(() => undefined)

    const events = await runIn(env, Stream.runCollect(Spawnkit.events()))
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
    // Each agent: queued and dequeued (if it waited) before spawned, reports only while live, one end and nothing after.
    const byAgent = new Map<string, Array<string>>()
    for (const e of events) byAgent.set(e.agent_id, [...(byAgent.get(e.agent_id) ?? []), e.kind])
    const records = new Map(env.readTask(task.task_id).agents.map((a: any) => [a.id, a]))
    expect(records.size).toBe(spawned)
    for (const [id, kinds] of byAgent) {
      const shape = kinds.map((k) => (k === "progress" || k === "finding" ? "r" : k)).join(" ")
      // A spawn that gave up waiting never became an agent: it only joined and left the line.
      if (!records.has(id)) {
        expect(shape, id).toBe("queued dequeued")
        continue
      }
      expect(shape, id).toMatch(/^(queued dequeued )?spawned( r)*( (exited|killed|timed_out|stalled|lost))$/)
      const last = events.filter((e) => e.agent_id === id && TERMINAL.has(e.kind)).at(-1)
      expect(last?.status, id).toBe((records.get(id) as any).status)
    }
    // Replay from any point yields exactly the rest.
    for (const since of [0, 1, Math.floor(events.length / 3), events.length - 1, events.length]) {
      const rest = await runIn(env, Stream.runCollect(Spawnkit.events({ since })))
      expect(rest.map((e) => e.seq)).toEqual(events.slice(since).map((e) => e.seq))
    }
  })
})
