/**
 * The supervisor of a home, against real tmux, real agents and the file registry: exits are recorded from exit files
 * as they appear (with the pane-died hook removed, so nothing else can record them), two supervisors record each exit
 * once, a forged exit file records nothing, garbage in the exits directory does not stop it, and a failed watch is
 * restarted with a reconcile pass.
 *
 * Agents wait for a go file of their own (`go-<agent id>` in the test's directory) and exit with the status it holds,
 * so every exit happens when the test says, with no timing.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { liveSessions, readRegistryFile, runIn, type TestEnv, testEnvs, waitFor } from "../support/Harness.js"

const newEnv = testEnvs()
const running: Array<Fiber.Fiber<never, unknown>> = []
afterEach(async () => {
  // Stopped before the environment is removed (testEnvs' own afterEach runs after this one).
  for (const fiber of running.splice(0)) await Effect.runPromise(Fiber.interrupt(fiber))
})

/** An environment whose agents wait for their go file, then exit with the status it holds. */
const gatedEnv = (): TestEnv => {
  const env = newEnv("sh -c true")
  const script = NodePath.join(env.dir, "agent.sh")
  Fs.writeFileSync(
    script,
    `#!/bin/sh\nwhile [ ! -s "${env.dir}/go-$SPAWNKIT_AGENT_ID" ]; do sleep 0.02; done\n` +
      `exit "$(cat "${env.dir}/go-$SPAWNKIT_AGENT_ID")"\n`,
    { mode: 0o755 }
  )
  return {
    ...env,
    layer: (overrides = {}, faults) => env.layer({ agentCommand: Option.some(script), ...overrides }, faults)
  }
}

const exitsDir = (env: TestEnv) => NodePath.join(env.home, ".spawnkit-exits")
const exitFiles = (env: TestEnv) =>
  Fs.existsSync(exitsDir(env)) ? Fs.readdirSync(exitsDir(env)).filter((n) => !n.startsWith(".")) : []
const startSupervisor = (env: TestEnv, options: Partial<Spawnkit.SupervisorOptions> = {}) => {
  const fiber = Effect.runFork(
    Spawnkit.supervise({ reconcileEvery: Duration.zero, ...options }).pipe(Effect.provide(env.layer()))
  )
  running.push(fiber)
  return fiber
}
/** Wait until a supervisor watches (its marker is in the exits directory). */
const supervisorsReady = (env: TestEnv, count: number) =>
  waitFor(`${count} supervisor(s) watching`, () =>
    Fs.existsSync(exitsDir(env))
    && Fs.readdirSync(exitsDir(env)).filter((n) => n.startsWith(".supervisor.")).length === count)
const noHook = (env: TestEnv) => spawnSync("tmux", ["-S", env.socket, "set-hook", "-gu", "pane-died"])

const spawnAgents = (env: TestEnv, count: number) =>
  runIn(
    env,
    Effect.gen(function*() {
      const task = yield* Spawnkit.createTask({ description: "supervised", max_concurrent: 20, max_agents: 40 })
      const agents = yield* Effect.forEach(
        Array.from({ length: count }, (_, i) => i),
        (i) =>
          Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: `p${i}` }).pipe(
            Effect.map((a) => a.agent_id)
          )
      )
      return { taskId: task.task_id, agents }
    })
  )
const letExit = (env: TestEnv, agentId: string, code: number) =>
  Fs.writeFileSync(NodePath.join(env.dir, `go-${agentId}`), `${code}\n`)
const recordOf = (env: TestEnv, taskId: string, agentId: string) =>
  readRegistryFile(env.home, taskId).agents.find((a: { id: string }) => a.id === agentId)
const ended = (env: TestEnv, taskId: string, agentId: string) =>
  waitFor(`${agentId} recorded`, () => {
    const r = recordOf(env, taskId, agentId)
    return r.status !== "running" && r
  })

describe("the supervisor", () => {
  it("records an agent's exit with its status and exit code, and removes the exit file", async () => {
    const env = gatedEnv()
    const { taskId, agents } = await spawnAgents(env, 2)
    noHook(env)
    startSupervisor(env)
    await supervisorsReady(env, 1)
    letExit(env, agents[0]!, 0)
    letExit(env, agents[1]!, 3)
    expect(await ended(env, taskId, agents[0]!)).toMatchObject({ status: "completed", exit: { exit_code: 0 } })
    expect(await ended(env, taskId, agents[1]!)).toMatchObject({
      status: "failed",
      exit: { exit_code: 3 },
      reason: "exited with code 3"
    })
    await waitFor("exit files removed", () => exitFiles(env).length === 0)
    await waitFor("sessions removed", () => liveSessions(env.socket).length === 0)
  })

  it("with two supervisors on one home, records each exit once", async () => {
    const env = gatedEnv()
    const { taskId, agents } = await spawnAgents(env, 6)
    noHook(env)
    startSupervisor(env)
    startSupervisor(env)
    await supervisorsReady(env, 2)
    // Every registry write replaces the file by a rename: counted from here on.
    let writes = 0
    const watcher = Fs.watch(NodePath.join(env.home, taskId), (_e, name) => {
      if (name === "AGENT_REGISTRY.json") writes++
    })
    try {
      agents.forEach((a, i) => letExit(env, a, i))
      const records = await Promise.all(agents.map((a) => ended(env, taskId, a)))
      records.forEach((r, i) => expect(r).toMatchObject({ exit: { exit_code: i }, completed_at: r.exit.at }))
      await waitFor("exit files removed", () => exitFiles(env).length === 0)
      await waitFor("sessions removed", () => liveSessions(env.socket).length === 0)
      // A rename is reported for the temp name and for the registry's own; one write per exit, no more.
      await waitFor("the writes reported", () => writes >= agents.length)
      expect(writes).toBe(agents.length)
      expect(agents.map((a) => recordOf(env, taskId, a).exit.at)).toEqual(records.map((r) => r.exit.at))
    } finally {
      watcher.close()
    }
  })

  it("records nothing for a forged exit file of a live agent, and goes on after garbage names", async () => {
    const env = gatedEnv()
    const { taskId, agents } = await spawnAgents(env, 2)
    noHook(env)
    startSupervisor(env)
    await supervisorsReady(env, 1)
    const [victim, honest] = [agents[0]!, agents[1]!]
    const garbage = ["garbage", `${taskId}.a.b`, "TASK-.x", `${taskId}.$(reboot)`, "TASK-nope.ghost-1"]
    for (const name of garbage) Fs.writeFileSync(NodePath.join(exitsDir(env), name), "0\n")
    Fs.mkdirSync(NodePath.join(exitsDir(env), "TASK-dir.sub"))
    Fs.writeFileSync(NodePath.join(exitsDir(env), `${taskId}.${victim}`), "0\n")
    letExit(env, honest, 5)
    expect(await ended(env, taskId, honest)).toMatchObject({ status: "failed", exit: { exit_code: 5 } })
    // The forged file is given up once its retry window is over, and removed: the agent still runs.
    await waitFor("forged and garbage files removed", () => exitFiles(env).join() === "TASK-dir.sub")
    expect(recordOf(env, taskId, victim).status).toBe("running")
    expect(liveSessions(env.socket)).toEqual([`agent_${victim}`])
    letExit(env, victim, 0)
    expect(await ended(env, taskId, victim)).toMatchObject({ status: "completed" })
  })

  it("restarts its watch when the exits directory is removed, and reconciles what it missed", async () => {
    const env = gatedEnv()
    const { taskId, agents } = await spawnAgents(env, 2)
    noHook(env)
    startSupervisor(env, { restartBase: Duration.millis(200) })
    await supervisorsReady(env, 1)
    Fs.rmSync(exitsDir(env), { recursive: true })
    // Exits while the watch is down (or just restarting): its exit file may be lost, the reconcile after the restart
    // records it from tmux.
    letExit(env, agents[0]!, 7)
    expect(await ended(env, taskId, agents[0]!)).toMatchObject({ status: "failed", exit: { exit_code: 7 } })
    await supervisorsReady(env, 1)
    letExit(env, agents[1]!, 0)
    expect(await ended(env, taskId, agents[1]!)).toMatchObject({ status: "completed" })
    await waitFor("exit files removed", () => exitFiles(env).length === 0)
  })
})
