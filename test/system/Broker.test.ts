/**
 * `serve --http` as the host's broker: an agent's bearer token (`ska1.<task>.<agent>.<secret>`) makes its MCP session
 * that agent's, with the subtree permissions an agent has; a token with a wrong secret, or of an agent that ended, is
 * refused (401); a session belongs to the principal that opened it (a request with another's token naming it: 403).
 *
 * Needs `npm run build` first (the server runs dist/cli/main.js).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { onTestFinished } from "vitest"
import { formatAgentToken } from "../../src/domain/AgentToken.js"
import type { AgentId, TaskId } from "../../src/domain/Ids.js"
import { logPath } from "../../src/host/Workspace.js"
import {
  CLI,
  cli,
  gitIn,
  liveSessions,
  newRepo,
  promptFiles,
  readRegistryFile,
  stdoutJson,
  type TestEnv
} from "../support/Harness.js"
import {
  call,
  connectHttp,
  ok,
  ownedPerTest,
  type Served,
  startHttp,
  startStdio,
  textOf,
  waitFor
} from "../support/Mcp.js"

const { newEnv, own } = ownedPerTest()

const TURNED_AGENT = NodePath.resolve(import.meta.dirname, "..", "support", "turned-agent.mjs")

/** An agent that prints the secret it was given, then works until killed. */
const SECRET_PRINTER = "sh -c 'echo SECRET=$SPAWNKIT_AGENT_SECRET; exec sleep 600'"

const withBearer = (token: string) => (url: string | URL, init?: RequestInit) =>
  fetch(url, {
    ...init,
    headers: { ...Object.fromEntries(new Headers(init?.headers).entries()), authorization: `Bearer ${token}` }
  })

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body)
  })

describe("serve --http as the broker: agents' bearer tokens", () => {
  it("an agent's token acts as that agent only, while it lives; sessions stay their opener's", async () => {
    const env = newEnv(SECRET_PRINTER)
    const served = own(await startHttp(env))
    const url = served.url!
    const orchestrator = served.client
    const task = await ok(orchestrator, "create_real_task", { description: "broker", max_concurrent: 5 })
    const a = await ok(orchestrator, "deploy_headless_agent", { task_id: task.task_id, agent_type: "a", prompt: "p" })
    const b = await ok(orchestrator, "deploy_headless_agent", { task_id: task.task_id, agent_type: "b", prompt: "p" })
    const log = logPath(env.home, task.task_id as TaskId, a.agent_id as AgentId)
    await waitFor(
      "the agent printed its secret",
      () => Fs.existsSync(log) && /SECRET=[0-9a-f]{64}/.test(Fs.readFileSync(log, "utf8"))
    )
    const secret = /SECRET=([0-9a-f]{64})/.exec(Fs.readFileSync(log, "utf8"))![1]!
    const token = formatAgentToken(task.task_id, a.agent_id, secret)

    const agent = await connectHttp(url, { fetch: withBearer(token) })
    // As itself: its own progress, a child below itself.
    await ok(agent, "update_agent_progress", {
      task_id: task.task_id,
      agent_id: a.agent_id,
      status: "working",
      message: "via the broker"
    })
    const child = await ok(agent, "spawn_child_agent", {
      task_id: task.task_id,
      parent_agent_id: a.agent_id,
      child_agent_type: "c",
      child_prompt: "p"
    })
    expect(child.parent).toBe(a.agent_id)
    // Not as anyone else: a sibling's kill or output, a new task (the orchestrator's).
    for (
      const [name, args] of [
        ["kill_real_agent", { task_id: task.task_id, agent_id: b.agent_id }],
        ["create_real_task", { description: "not mine" }],
        ["get_agent_output", { task_id: task.task_id, agent_id: b.agent_id }]
      ] as const
    ) {
      const result = await call(agent, name, args)
      expect(result.isError, name).toBe(true)
      expect(textOf(result), name).toContain("NotPermitted")
    }

    // A wrong secret, or a token that is not one, is refused before anything runs.
    const wrong = formatAgentToken(task.task_id, a.agent_id, "0".repeat(64))
    expect((await post(url, INITIALIZE, { authorization: `Bearer ${wrong}` })).status).toBe(401)
    expect((await post(url, INITIALIZE, { authorization: "Bearer ska1.nothing" })).status).toBe(401)

    // A session is its opener's: the agent's token cannot use a session the orchestrator opened.
    const opened = await post(url, INITIALIZE, { authorization: `Bearer ${served.token}` })
    const sessionId = opened.headers.get("mcp-session-id")!
    expect(sessionId).toBeTruthy()
    const hijack = await post(url, { jsonrpc: "2.0", id: 2, method: "tools/list" }, {
      authorization: `Bearer ${token}`,
      "mcp-session-id": sessionId
    })
    expect(hijack.status).toBe(403)

    // Once the agent has ended, its token opens nothing.
    await ok(orchestrator, "kill_real_agent", { task_id: task.task_id, agent_id: a.agent_id })
    const after = await post(url, INITIALIZE, { authorization: `Bearer ${token}` })
    expect(after.status).toBe(401)
    expect(await after.text()).toContain("Agent token refused")
    await agent.close()
  })

  it("serve --http announces itself as the broker, and a Claude agent spawned meanwhile is configured to reach it", async () => {
    const env = newEnv()
    const served = own(await startHttp(env, { PATH: CLAUDE_PRINTING_ITS_CONFIG() }))
    const markers = Fs.readdirSync(NodePath.join(env.home, ".spawnkit-brokers"))
    expect(markers).toEqual([`${served.pid}.json`])
    const { a, task, text } = await claudeAgent(env, served)
    const config = JSON.parse(text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1))
    const server = config.mcpServers.spawnkit
    // The configuration names the variable the token is in; the token itself is in the agent's environment alone.
    expect(server).toEqual({
      type: "http",
      url: served.url,
      headers: { Authorization: "Bearer ${SPAWNKIT_AGENT_TOKEN}" }
    })
    const token = /TOKEN=(\S+)/.exec(text)![1]!
    expect(token.startsWith(`ska1.${task.task_id}.${a.agent_id}.`)).toBe(true)
    // The token it was given works, as that agent.
    const agent = await connectHttp(served.url!, { fetch: withBearer(token) })
    await ok(agent, "update_agent_progress", {
      task_id: task.task_id,
      agent_id: a.agent_id,
      status: "working",
      message: "m"
    })
    await agent.close()
  })
})

describe("a turned agent without a sandbox", () => {
  it("finds no secret in tmux or its environment, and no way into the broker or a server of its own without a token", async () => {
    const env = newEnv(`${process.execPath} ${TURNED_AGENT}`)
    const served = own(await startHttp(env))
    const client = served.client
    const task = await ok(client, "create_real_task", { description: "turned", max_concurrent: 5 })
    const sibling = await ok(client, "deploy_headless_agent", { task_id: task.task_id, agent_type: "sib", prompt: "p" })
    const plan = {
      url: served.url,
      socket: env.socket,
      cli: CLI,
      sibling: { taskId: task.task_id, agentId: sibling.agent_id, session: sibling.tmux_session }
    }
    const turned = await ok(client, "deploy_headless_agent", {
      task_id: task.task_id,
      agent_type: "turned",
      prompt: `PLAN ${JSON.stringify(plan)}`
    })
    const log = logPath(env.home, task.task_id as TaskId, turned.agent_id as AgentId)
    const reported = () => (Fs.existsSync(log) ? /^TURNED (.*)$/m.exec(Fs.readFileSync(log, "utf8"))?.[1] : undefined)
    await waitFor("the turned agent reported", () => reported() !== undefined)
    expect(JSON.parse(reported()!)).toEqual({
      tmuxSessionEnv: false,
      tmuxGlobalEnv: false,
      tmuxStartCommand: false,
      orchestratorEnv: [],
      brokerNoToken: 401,
      brokerSiblingId: 401,
      brokerOwnToken: 200,
      ownServerNoToken: 401
    })
    // The sibling is untouched.
    const status = await ok(client, "get_real_task_status", { task_id: task.task_id })
    expect(status.agents.find((a: { id: string }) => a.id === sibling.agent_id)).toMatchObject({ status: "running" })
  })
})

/** A stand-in CLI named `name`: prints what it was configured with (its argv, and a file's text), then exits 0. */
const standIn = (name: string, body: string) => {
  const bin = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), `sk-${name}-`))
  onTestFinished(() => Fs.rmSync(bin, { recursive: true, force: true }))
  Fs.writeFileSync(NodePath.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 })
  return `${bin}:${process.env["PATH"]}`
}

/**
 * A Gemini agent (a stand-in running `body`) spawned isolated into `repo` through a broker; what it printed up to its
 * line SETTINGS-END.
 */
const isolatedGemini = async (env: TestEnv, repo: string, body: string) => {
  const served = own(await startHttp(env, { PATH: standIn("gemini", body) }))
  const task = await ok(served.client, "create_real_task", {
    description: "gemini",
    client_cwd: repo,
    isolation: "worktree"
  })
  const agent = await ok(served.client, "deploy_headless_agent", {
    task_id: task.task_id,
    agent_type: "g",
    prompt: "p",
    engine: "gemini"
  })
  const log = logPath(env.home, task.task_id as TaskId, agent.agent_id as AgentId)
  await waitFor(
    "the agent printed its settings",
    () => Fs.existsSync(log) && /SETTINGS-END/.test(Fs.readFileSync(log, "utf8"))
  )
  return {
    served,
    taskId: task.task_id as string,
    agentId: agent.agent_id as string,
    printed: Fs.readFileSync(log, "utf8")
  }
}

/** A stand-in `claude` on PATH that prints the MCP configuration it was given and its token, then works. */
const CLAUDE_PRINTING_ITS_CONFIG = () =>
  standIn(
    "claude",
    "while [ $# -gt 0 ]; do [ \"$1\" = --mcp-config ] && cat \"$2\"; shift; done\n" +
      "echo; echo \"TOKEN=$SPAWNKIT_AGENT_TOKEN\"; echo CONFIG-END; exec sleep 600"
  )

/** A Claude agent spawned through `served` in a new task; what it printed up to its line CONFIG-END. */
const claudeAgent = async (env: TestEnv, served: Served) => {
  const task = await ok(served.client, "create_real_task", { description: "broker config" })
  const a = await ok(served.client, "deploy_headless_agent", {
    task_id: task.task_id,
    agent_type: "a",
    prompt: "p",
    engine: "claude"
  })
  const log = logPath(env.home, task.task_id as TaskId, a.agent_id as AgentId)
  await waitFor(
    "the agent printed its configuration",
    () => Fs.existsSync(log) && /CONFIG-END/.test(Fs.readFileSync(log, "utf8"))
  )
  return { a, task, text: Fs.readFileSync(log, "utf8") }
}

describe("where the broker comes from", () => {
  it("no broker: a Claude or Codex spawn is refused with BrokerUnavailable and nothing is written; others spawn", () => {
    const env = newEnv()
    const taskId = stdoutJson(cli(env, ["task", "create", "--description", "no broker", "--json"])).task_id as string
    const before = Fs.readFileSync(NodePath.join(env.home, taskId, "AGENT_REGISTRY.json"), "utf8")
    for (const engine of ["claude", "codex"]) {
      const r = cli(env, ["spawn", "--task", taskId, "--type", "w", "--prompt", "p", "--engine", engine, "--json"])
      expect(r.status, r.stdout + r.stderr).toBe(1)
      const error = stdoutJson(r).error
      expect(error.tag).toBe("BrokerUnavailable")
      expect(error.message).toContain("spawnkit supervise")
      expect(Fs.readFileSync(NodePath.join(env.home, taskId, "AGENT_REGISTRY.json"), "utf8")).toBe(before)
      expect(promptFiles(env.home, taskId)).toEqual([])
      expect(liveSessions(env.socket)).toEqual([])
    }
    // A custom command takes no spawnkit server, so it needs no broker.
    const custom = cli(env, ["spawn", "--task", taskId, "--type", "w", "--prompt", "p", "--json"])
    expect(custom.status, custom.stdout + custom.stderr).toBe(0)
  })

  it("an MCP client's stdio serve is the broker while it runs: its Claude agents reach it with their tokens", async () => {
    const env = newEnv()
    const PATH = CLAUDE_PRINTING_ITS_CONFIG()
    const served = own(await startStdio(env, { PATH }))
    const marker = NodePath.join(env.home, ".spawnkit-brokers", `${served.pid}.json`)
    await waitFor("the stdio server's broker is announced", () => Fs.existsSync(marker))
    const url = JSON.parse(Fs.readFileSync(marker, "utf8")).url as string
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
    const { a, task, text } = await claudeAgent(env, served)
    expect(JSON.parse(text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1)).mcpServers.spawnkit.url).toBe(url)
    const token = /TOKEN=(\S+)/.exec(text)![1]!
    const agent = await connectHttp(url, { token })
    await ok(agent, "update_agent_progress", {
      task_id: task.task_id,
      agent_id: a.agent_id,
      status: "working",
      message: "through the stdio server's broker"
    })
    // Agents only: the broker beside a stdio server has no orchestrator token at all.
    expect((await post(url, INITIALIZE)).status).toBe(401)
    await agent.close()
    // Its client gone, the server ends by itself and takes its marker with it.
    await served.client.close()
    await served.exited
    expect(Fs.existsSync(marker)).toBe(false)
  })

  it("an isolated Gemini agent gets the broker in its worktree's settings, removed before its worktree is judged", async () => {
    const env = newEnv()
    const repo = newRepo(env.dir)
    const { agentId, printed, served, taskId } = await isolatedGemini(
      env,
      repo,
      "cat .gemini/settings.json; echo \"TRUST=$GEMINI_CLI_TRUST_WORKSPACE\"; echo SETTINGS-END; exit 0"
    )
    expect(JSON.parse(printed.slice(printed.indexOf("{"), printed.lastIndexOf("}") + 1))).toEqual({
      mcpServers: {
        spawnkit: { httpUrl: served.url, headers: { Authorization: "Bearer ${SPAWNKIT_AGENT_TOKEN}" }, trust: true }
      }
    })
    expect(printed).toContain("TRUST=true")
    // It ended holding no work: the settings file went first, then the worktree and its branch.
    const record = () => readRegistryFile(env.home, taskId).agents.find((x: { id: string }) => x.id === agentId)
    await waitFor("its worktree removed", () => record()?.worktree?.state === "removed")
    expect(gitIn(repo, "branch", "--list", "spawnkit/*")).toBe("")
    expect(gitIn(repo, "status", "--porcelain")).toBe("")
  })

  it("a repository's own Gemini settings are never written over", async () => {
    const env = newEnv()
    const mine = "{\"theme\":\"mine\"}\n"
    const repo = newRepo(env.dir, { ".gemini/settings.json": mine })
    const { agentId, printed, served, taskId } = await isolatedGemini(
      env,
      repo,
      "cat .gemini/settings.json; echo; echo SETTINGS-END; exec sleep 600"
    )
    expect(printed).toContain("{\"theme\":\"mine\"}")
    expect(served.stderr()).toMatch(/is the repository's own: the Gemini agent gets no spawnkit MCP server/)
    await ok(served.client, "kill_real_agent", { task_id: taskId, agent_id: agentId })
    expect(Fs.readFileSync(NodePath.join(repo, ".gemini", "settings.json"), "utf8")).toBe(mine)
  })
})
