import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Spawnkit from "../../src/index.js"
import { BACKENDS, liveSessions, processAlive, promptFiles, runIn, testEnvs, waitFor } from "../support/Harness.js"

const newEnv = testEnvs()

describe.each(BACKENDS)("Spawner with real tmux (%s registry)", (backend) => {
  it("spawns a tagged session running the agent, with a 0600 prompt file and a running record", async () => {
    const env = newEnv(undefined, backend)
    const { task, result } = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t", max_concurrent: 2 })
        const result = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "do it" })
        return { task, result }
      })
    )
    expect(result.existing).toBe(false)
    expect(result.status).toBe("running")
    expect(liveSessions(env.socket)).toEqual([result.tmux_session])
    const onDisk = env.readTask(task.task_id)
    expect(onDisk.agents).toHaveLength(1)
    expect(onDisk.agents[0]).toMatchObject({ id: result.agent_id, status: "running", depth: 1, parent: "orchestrator" })
    expect(onDisk.agents[0].reservation).toBeUndefined()
    expect(onDisk.active_count).toBe(1)
    expect(onDisk.total_spawned).toBe(1)
    expect(onDisk.agent_hierarchy).toEqual({ orchestrator: [result.agent_id] })
    const prompt = `${env.home}/${task.task_id}/prompts/${result.agent_id}.prompt`
    expect(Fs.readFileSync(prompt, "utf8")).toBe("do it")
    expect(Fs.statSync(prompt).mode & 0o777).toBe(0o600)
  })

  it("kill ends the session, marks the agent killed, deletes its prompt, and is idempotent", async () => {
    const env = newEnv(undefined, backend)
    const out = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        const r = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "p" })
        const first = yield* Spawnkit.kill(task.task_id, r.agent_id)
        const second = yield* Spawnkit.kill(task.task_id, r.agent_id)
        return { task, first, second }
      })
    )
    expect(out.first).toMatchObject({ status: "killed", killed: true })
    expect(out.second).toMatchObject({ status: "killed", killed: false })
    expect(liveSessions(env.socket)).toEqual([])
    expect(promptFiles(env.home, out.task.task_id)).toEqual([])
    expect(env.readTask(out.task.task_id).active_count).toBe(0)
  })

  it("kills an agent whose session the exit hook removed last, on a server still running (no current target)", async () => {
    const env = newEnv(undefined, backend)
    const { taskId, agentId } = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        const r = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "p" })
        return { taskId: task.task_id, agentId: r.agent_id }
      })
    )
    // The server outlives its last session, as it does while the pane-died hook's job runs: tmux then answers every
    // command with a target "no current target".
    const tmux = (...args: Array<string>) => spawnSync("tmux", ["-S", env.socket, ...args], { encoding: "utf8" })
    expect(tmux("set-option", "-g", "exit-empty", "off").status).toBe(0)
    expect(tmux("kill-session", "-t", `=agent_${agentId}`).status).toBe(0)
    expect(tmux("has-session", "-t", `=agent_${agentId}`).stderr).toContain("no current target")
    const killed = await runIn(env, Spawnkit.kill(taskId, agentId))
    expect(killed).toMatchObject({ status: "killed", killed: true })
    expect(env.readTask(taskId).active_count).toBe(0)
  })

  it("kills an agent whose session is already gone without signalling anything else", async () => {
    const env = newEnv(undefined, backend)
    const sentinel = spawn("sleep", ["30"], { stdio: "ignore" })
    const out = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t" })
        const r = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "p" })
        // The session disappears behind spawnkit's back; tmux then answers pane queries for it with blank values.
        spawnSync("tmux", ["-S", env.socket, "kill-session", "-t", `=${r.tmux_session}`])
        const killed = yield* Spawnkit.kill(task.task_id, r.agent_id)
        return { task, killed }
      })
    )
    expect(out.killed).toMatchObject({ status: "killed", killed: true })
    expect(env.readTask(out.task.task_id).active_count).toBe(0)
    // A process in this test's own process group is untouched (a blank pane read once became a signal to group 0).
    expect(processAlive(sentinel.pid!)).toBe(true)
    sentinel.kill("SIGKILL")
  })

  it("records an agent that exits with its exit code and last output lines, and frees its slot", async () => {
    const env = newEnv(`sh -c "echo first line; echo boom; exit 3"`, backend)
    const { task, result } = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "t", max_concurrent: 1 })
        const result = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "quitter", prompt: "p" }).pipe(
          Effect.result
        )
        return { task, result }
      })
    )
    // Either the start-up check saw it die (typed error, nothing kept) or the pane-died hook records it.
    const agent = await waitFor("the agent's exit is recorded or its spawn rolled back", () => {
      const a = env.readTask(task.task_id).agents[0]
      return a === undefined || a.status === "failed" ? (a ?? null) : undefined
    })
    if (agent === null) {
      expect(result._tag).toBe("Failure")
      expect(result).toMatchObject({ failure: { _tag: "AgentExitedAtStartup", exitCode: 3 } })
    } else {
      expect(agent.exit.exit_code).toBe(3)
      expect(agent.exit.last_lines).toEqual(["first line", "boom"])
      expect(agent.completed_at).toBeTruthy()
    }
    await waitFor("no session is left", () => liveSessions(env.socket).length === 0)
    expect(promptFiles(env.home, task.task_id)).toEqual([])
    expect(env.readTask(task.task_id).active_count).toBe(0)
  })
})
