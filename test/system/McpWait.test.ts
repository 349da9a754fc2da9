/**
 * wait_for_agents end to end: the real server over stdio and Streamable HTTP, the SDK's own Client, agents in real
 * tmux that exit at random moments, exits recorded by spawnkit's own exit path. Needs `npm run build` first.
 */
import { afterAll, afterEach, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { CLI, makeTestEnv, readRegistryFile, type TestEnv } from "../support/Harness.js"
import {
  agentSecret,
  call,
  disposeEnv,
  fails,
  killServers,
  type Kind,
  ok,
  type Served,
  serverEnv,
  startServer,
  startStdio,
  textOf,
  waitFor,
  within
} from "../support/Mcp.js"

const KINDS: ReadonlyArray<Kind> = ["stdio", "http"]
/** Agent scripts, written once per run: the prompt (stdin, inside spawnkit's template) says what the agent does. */
const scripts = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-wait-agents-"))
afterAll(() => Fs.rmSync(scripts, { recursive: true, force: true }))
const script = (name: string, body: string) => {
  const file = NodePath.join(scripts, name)
  Fs.writeFileSync(file, body)
  return `sh ${file}`
}
/** Works for a random 0.1–1.5 s, then exits with the code its prompt names (EXIT=n). */
const RANDOM_EXIT = script(
  "random-exit.sh",
  `code=$(sed -n 's/.*EXIT=\\([0-9]\\).*/\\1/p' | head -n 1)
sleep $(awk "BEGIN { srand(); print 0.1 + rand() * 1.4 }")
echo "bye $code"
exit $code
`
)
/** A parent (prompt PARENT) works until killed; its children work for a random 1–3 s, then exit 0. */
const PARENT_AND_CHILDREN = script(
  "parent-and-children.sh",
  `if grep -q PARENT; then sleep 600; fi\nsleep $(awk -v s=$$ 'BEGIN { srand(s); print 1 + rand() * 2 }')\n`
)
/** Exits at once when its prompt says QUICK, else works until killed. */
const QUICK_OR_SLOW = script("quick-or-slow.sh", `if grep -q QUICK; then exit 0; fi\nsleep 600\n`)

const servers: Array<Served> = []
const envs: Array<TestEnv> = []
afterEach(async () => {
  await killServers(servers.splice(0))
  for (const env of envs.splice(0)) await disposeEnv(env)
})
const serve = async (kind: Kind, command: string) => {
  const env = makeTestEnv(command)
  envs.push(env)
  const served = await startServer(kind, env)
  servers.push(served)
  return { env, client: served.client }
}

const deploy = async (client: Served["client"], taskId: string, prompt: string) =>
  (await ok(client, "deploy_headless_agent", { task_id: taskId, agent_type: "worker", prompt, engine: "custom" }))
    .agent_id as string

describe.each(KINDS)("wait_for_agents over %s", (kind) => {
  it("waits for 10 agents exiting at random moments and returns all their final states, with progress", async () => {
    const { client, env } = await serve(kind, RANDOM_EXIT)
    const { task_id } = await ok(client, "create_real_task", { description: "wait", max_concurrent: 12 })
    const ids: Array<string> = []
    for (let i = 0; i < 10; i++) ids.push(await deploy(client, task_id, `agent ${i}: EXIT=${i % 3}`))
    const progress: Array<string> = []
    const result = await within(
      "wait returns",
      call(client, "wait_for_agents", { task_id, agent_ids: ids, timeout_seconds: 120 }, {
        onprogress: (p) => void progress.push(p.message ?? ""),
        resetTimeoutOnProgress: true,
        timeout: 130_000
      }),
      130_000
    )
    const returnedMs = Date.now()
    expect(result.isError, textOf(result)).not.toBe(true)
    const out = result.structuredContent as any
    expect(out).toMatchObject({ satisfied: true, timed_out: false, mode: "all" })
    expect(out.agents.map((a: any) => a.agent_id)).toEqual(ids)
    out.agents.forEach((a: any, i: number) => {
      expect(a).toMatchObject({ ended: true, exit_code: i % 3, status: i % 3 === 0 ? "completed" : "failed" })
      expect(a.last_lines).toContain(`bye ${i % 3}`)
    })
    // Every agent is recorded ended in the registry the wait read.
    const records = readRegistryFile(env.home, task_id).agents
    const lastRecordMs = Math.max(...records.map((a: any) => Date.parse(a.exit.at)))
    console.log(
      `wait_for_agents over ${kind}: returned ${returnedMs - lastRecordMs} ms after the last exit was recorded`
    )
    expect(records.filter((a: any) => a.status === "running")).toEqual([])
    expect(progress.length).toBeGreaterThan(0)
    expect(progress[progress.length - 1]).toBe("10 of 10 agents ended")
  })

  it("any returns when the first agent ends, with the others still running", async () => {
    const { client, env } = await serve(kind, QUICK_OR_SLOW)
    const { task_id } = await ok(client, "create_real_task", { description: "any" })
    const slow = [await deploy(client, task_id, "slow 1"), await deploy(client, task_id, "slow 2")]
    const quick = await deploy(client, task_id, "QUICK")
    const out = await ok(client, "wait_for_agents", {
      task_id,
      agent_ids: [...slow, quick],
      mode: "any",
      timeout_seconds: 120
    })
    expect(out).toMatchObject({ satisfied: true, timed_out: false })
    expect(out.agents.filter((a: any) => a.ended).map((a: any) => a.agent_id)).toEqual([quick])
    expect(readRegistryFile(env.home, task_id).agents.filter((a: any) => a.status === "running")).toHaveLength(2)
  })

  it("times out with the current states (not an error), and a cancelled wait ends at once", async () => {
    const { client } = await serve(kind, "sleep 600")
    const { task_id } = await ok(client, "create_real_task", { description: "timeout" })
    const id = await deploy(client, task_id, "x")
    const out = await ok(client, "wait_for_agents", { task_id, agent_ids: [id], timeout_seconds: 0.5 })
    expect(out).toMatchObject({ satisfied: false, timed_out: true, agents: [{ agent_id: id, status: "running" }] })
    const controller = new AbortController()
    const waiting = call(client, "wait_for_agents", { task_id, timeout_seconds: 3600 }, {
      signal: controller.signal,
      timeout: 3_600_000
    })
    controller.abort()
    await expect(within("cancelled wait settles", waiting, 10_000)).rejects.toThrow(/abort/i)
    // The server goes on serving: a kill ends the agent and a new wait sees it at once.
    await ok(client, "kill_real_agent", { task_id, agent_id: id })
    expect(await ok(client, "wait_for_agents", { task_id, timeout_seconds: 60 })).toMatchObject({
      satisfied: true,
      agents: [{ agent_id: id, status: "killed" }]
    })
  })

  it("refuses bad input with a typed error and changes nothing", async () => {
    const { client, env } = await serve(kind, "sleep 600")
    const { task_id } = await ok(client, "create_real_task", { description: "bad" })
    const id = await deploy(client, task_id, "x")
    const before = JSON.stringify(readRegistryFile(env.home, task_id))
    await fails(client, "wait_for_agents", { task_id, agent_ids: ["ghost-1"] }, "AgentNotFound")
    await fails(client, "wait_for_agents", { task_id, parent: "ghost-2" }, "AgentNotFound")
    await fails(client, "wait_for_agents", { task_id, agent_ids: [id], timeout_seconds: -1 }, "InvalidInput")
    await fails(client, "wait_for_agents", { task_id, agent_ids: [id], timeout_seconds: 1e9 }, "InvalidInput")
    await fails(client, "wait_for_agents", { task_id, agent_ids: [id], parent: id }, "InvalidInput")
    await fails(client, "wait_for_agents", { task_id, agent_ids: [id], mode: "some" }, "InvalidInput")
    await fails(client, "wait_for_agents", { task_id: "TASK-20200101-000000-deadbeef" }, "TaskNotFound")
    expect(JSON.stringify(readRegistryFile(env.home, task_id))).toBe(before)
  })
})

describe("a parent agent waiting on its children while the host's supervisor dies", () => {
  it("the exits are still recorded (the pane-died hook takes over) and the wait returns with all of them", async () => {
    const env = makeTestEnv(PARENT_AND_CHILDREN)
    envs.push(env)
    // The host's supervisor runs on its own; the orchestrator's and the agent's servers below run none (an agent's
    // server never does; the orchestrator's is stopped before the children exist).
    const supervisor = spawn(process.execPath, [CLI, "supervise"], { env: serverEnv(env), stdio: "ignore" })
    const supervisorGone = new Promise((resolve) => supervisor.once("exit", resolve))
    try {
      await waitFor("the supervisor is up", () => Fs.existsSync(NodePath.join(env.home, ".spawnkit-exits")), 60_000)
      const orchestrator = await startStdio(env)
      servers.push(orchestrator)
      const { task_id } = await ok(orchestrator.client, "create_real_task", {
        description: "parent",
        max_concurrent: 8
      })
      const other = await ok(orchestrator.client, "create_real_task", { description: "someone else's" })
      const parent = await ok(orchestrator.client, "deploy_headless_agent", {
        task_id,
        agent_type: "lead",
        prompt: "PARENT",
        engine: "custom"
      })
      await killServers([servers.pop()!])
      const secret = await agentSecret(env.socket, parent.tmux_session)
      const agent = await startStdio(env, {
        SPAWNKIT_TASK_ID: task_id,
        SPAWNKIT_AGENT_ID: parent.agent_id,
        SPAWNKIT_AGENT_SECRET: secret
      })
      servers.push(agent)
      const children: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const child = await ok(agent.client, "spawn_child_agent", {
          task_id,
          parent_agent_id: parent.agent_id,
          child_agent_type: "child",
          child_prompt: `child ${i}`,
          engine: "custom"
        })
        children.push(child.agent_id)
      }
      // An agent's server waits inside its own subtree only.
      await fails(agent.client, "wait_for_agents", { task_id: other.task_id }, "NotPermitted")
      await fails(agent.client, "wait_for_agents", { task_id, parent: "orchestrator" }, "NotPermitted")
      const waiting = call(agent.client, "wait_for_agents", { task_id, timeout_seconds: 300 }, { timeout: 310_000 })
      supervisor.kill("SIGKILL")
      await supervisorGone
      const result = await within("the wait returns", waiting, 310_000)
      expect(result.isError, textOf(result)).not.toBe(true)
      const out = result.structuredContent as any
      expect(out).toMatchObject({ satisfied: true, timed_out: false })
      // By default an agent waits on the agents below itself: its five children, all completed.
      expect(out.agents.map((a: any) => [a.agent_id, a.status, a.exit_code])).toEqual(
        children.map((id) => [id, "completed", 0])
      )
    } finally {
      if (supervisor.exitCode === null && supervisor.signalCode === null) supervisor.kill("SIGKILL")
    }
  })
})
