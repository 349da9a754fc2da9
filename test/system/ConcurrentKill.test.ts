/**
 * Two kills of one agent at once, on both registries: both return, the one whose transaction ended the agent reports
 * `killed: true`, the other `killed: false` with status `killed`, and the record is ended once: it keeps the winner's
 * reason (a second ending would have written its own reason and completion time over the first).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn as spawnProcess } from "node:child_process"
import * as Spawnkit from "../../src/index.js"
import { BACKENDS, CLI, liveSessions, runIn, type TestEnv, testEnvs } from "../support/Harness.js"

const newEnv = testEnvs()

/** Run the compiled CLI asynchronously, so two can run at once. */
const runCli = (env: TestEnv, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawnProcess(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/** A task with one running agent. */
const oneAgent = (env: TestEnv) =>
  runIn(
    env,
    Effect.gen(function*() {
      const task = yield* Spawnkit.createTask({ description: "two kills" })
      const agent = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "p" })
      return { taskId: task.task_id as string, agentId: agent.agent_id as string }
    })
  )

/** The winner and the loser of two kill results; fails unless exactly one ended the agent. */
const winnerOf = <K extends { readonly killed: boolean }>(
  results: readonly [K, K],
  reasons: readonly [string, string]
) => {
  expect(results.map((r) => r.killed).sort()).toEqual([false, true])
  const i = results[0].killed ? 0 : 1
  return { winner: results[i]!, loser: results[1 - i]!, reason: reasons[i]! }
}

describe.each(BACKENDS)("two concurrent kills of one agent (%s registry)", (backend) => {
  it("through the API: both return, exactly one reports killed: true, and the record is ended once", async () => {
    const env = newEnv(undefined, backend)
    const { taskId, agentId } = await oneAgent(env)
    const reasons = ["kill A", "kill B"] as const
    const results = await runIn(
      env,
      Effect.all([Spawnkit.kill(taskId, agentId, reasons[0]), Spawnkit.kill(taskId, agentId, reasons[1])], {
        concurrency: 2
      })
    )
    const { loser, reason, winner } = winnerOf(results, reasons)
    expect(winner).toEqual({ agent_id: agentId, task_id: taskId, status: "killed", killed: true, cascaded: [] })
    expect(loser).toEqual({ agent_id: agentId, task_id: taskId, status: "killed", killed: false, cascaded: [] })
    const [record] = env.readTask(taskId).agents
    expect(record).toMatchObject({ status: "killed", reason, completed_at: expect.any(String) })
    expect(env.readTask(taskId).active_count).toBe(0)
    expect(liveSessions(env.socket)).toEqual([])
  })

  it("through two CLI processes: both exit 0, exactly one reports killed: true, and the record is ended once", async () => {
    const env = newEnv(undefined, backend)
    const { taskId, agentId } = await oneAgent(env)
    const reasons = ["kill A", "kill B"] as const
    const outs = await Promise.all(
      reasons.map((reason) => runCli(env, ["kill", "--task", taskId, "--agent", agentId, "--reason", reason, "--json"]))
    )
    for (const out of outs) expect(out.code, out.stdout + out.stderr).toBe(0)
    const results = [JSON.parse(outs[0]!.stdout), JSON.parse(outs[1]!.stdout)] as const
    const { loser, reason, winner } = winnerOf(results, reasons)
    expect(winner).toEqual({ agent_id: agentId, task_id: taskId, status: "killed", killed: true, cascaded: [] })
    expect(loser).toEqual({ agent_id: agentId, task_id: taskId, status: "killed", killed: false, cascaded: [] })
    const [record] = env.readTask(taskId).agents
    expect(record).toMatchObject({ status: "killed", reason, completed_at: expect.any(String) })
    expect(env.readTask(taskId).active_count).toBe(0)
    expect(liveSessions(env.socket)).toEqual([])
  })
})
