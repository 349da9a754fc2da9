/**
 * The MCP server end to end: the real `spawnkit serve` (dist/cli/main.js) as a child process, driven by the MCP SDK's
 * own Client over stdio and over Streamable HTTP, and by the MCP Inspector CLI; every effect is checked on disk (the
 * registry file, prompt, progress and findings files) and in tmux (the test's private socket).
 *
 * Servers shared by a describe are started in its beforeAll and stopped in its afterAll; servers a test starts are
 * killed in afterEach. Needs `npm run build` first.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { CLI, liveSessions, makeTestEnv, promptFiles, readRegistryFile, type TestEnv } from "../support/Harness.js"
import {
  agentSecret,
  call,
  connectHttp,
  disposeEnv,
  fails,
  jsonLines,
  killServers,
  type Kind,
  ok,
  paneOf,
  type Served,
  sessionEnv,
  startHttp,
  startServer,
  startServerProcess,
  startStdio,
  taskFiles,
  textOf,
  waitFor,
  within
} from "../support/Mcp.js"

const REPO = NodePath.resolve(import.meta.dirname, "..", "..")
const KINDS: ReadonlyArray<Kind> = ["stdio", "http"]
const TOOL_NAMES = [
  "create_real_task",
  "deploy_headless_agent",
  "spawn_child_agent",
  "get_real_task_status",
  "get_agent_output",
  "kill_real_agent",
  "resume_agent",
  "wait_for_agents",
  "update_agent_progress",
  "report_agent_finding",
  "list_tasks",
  "list_agent_branches",
  "get_global_status"
]
/** An agent that prints its prompt (stdin), its working directory and a marker, then works until killed. */
const ECHO_AGENT = `sh -c "cat; pwd; echo MARKER; sleep 600"`
const HANG_AFTER_SESSION = { SPAWNKIT_FAULT: "after-session:hang" }
const MISSING_TASK = "TASK-20200101-000000-deadbeef"

// Servers and environments a test creates (killed and removed in afterEach).
const testServers: Array<Served> = []
const testEnvs: Array<TestEnv> = []
const own = (served: Served) => {
  testServers.push(served)
  return served
}
const newTestEnv = (agentCommand?: string) => {
  const env = makeTestEnv(agentCommand)
  testEnvs.push(env)
  return env
}
afterEach(async () => {
  await killServers(testServers.splice(0))
  for (const env of testEnvs.splice(0)) await disposeEnv(env)
})

const agentsOf = (env: TestEnv, taskId: string): Array<any> => readRegistryFile(env.home, taskId).agents
const recordOf = (env: TestEnv, taskId: string, agentId: string) => agentsOf(env, taskId).find((a) => a.id === agentId)

/** Poll an async probe (tool calls) until it holds. */
const eventually = async (what: string, probe: () => Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// 1. Every tool, over stdio and over HTTP

describe.each(KINDS)("MCP tools over %s (SDK client, real server, real tmux)", (kind) => {
  let env: TestEnv
  let served: Served
  let client: Client
  let cwd: string
  const MISSION = `MISSION-${kind}: find why the parser drops the last line`
  const context = {
    background_context: `BACKGROUND-${kind}: the parser was rewritten last week`,
    expected_deliverables: ["a failing test", "a fix"],
    success_criteria: ["npm test passes"],
    constraints: ["do not touch the lexer"],
    relevant_files: ["src/parser.ts", "test/parser.test.ts"],
    conversation_history: "user: the last line of every file is lost"
  }
  let taskId = ""
  let lead: any
  let child: any

  beforeAll(async () => {
    env = makeTestEnv(ECHO_AGENT)
    cwd = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-client-cwd-"))
    served = await startServer(kind, env)
    client = served.client
  })
  afterAll(async () => {
    await killServers()
    await disposeEnv(env)
    if (cwd !== undefined) Fs.rmSync(cwd, { recursive: true, force: true })
  })

  it("listTools: the 11 tools, each described, every input property described", async () => {
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort())
    for (const tool of tools) {
      expect(tool.description?.length ?? 0, tool.name).toBeGreaterThan(30)
      expect(tool.inputSchema.type, tool.name).toBe("object")
      for (const [name, property] of Object.entries(tool.inputSchema.properties ?? {})) {
        const description = (property as { description?: unknown }).description
        expect(typeof description, `${tool.name}.${name} has a description`).toBe("string")
        expect((description as string).length, `${tool.name}.${name}`).toBeGreaterThan(5)
      }
    }
    const schema = (name: string) => tools.find((t) => t.name === name)!.inputSchema
    expect(Object.keys(schema("deploy_headless_agent").properties ?? {}).sort()).toEqual(
      [
        "agent_type",
        "base_ref",
        "engine",
        "idempotency_key",
        "isolation",
        "max_cost_usd",
        "max_tokens",
        "parent",
        "prompt",
        "queue",
        "queue_timeout_seconds",
        "sandbox",
        "stall_timeout_seconds",
        "task_id",
        "timeout_seconds"
      ]
    )
    expect(schema("deploy_headless_agent").required?.slice().sort()).toEqual(["agent_type", "prompt", "task_id"])
    expect(Object.keys(schema("create_real_task").properties ?? {})).toEqual(
      expect.arrayContaining(["description", "client_cwd", ...Object.keys(context)])
    )
    expect(Object.keys(schema("list_tasks").properties ?? {}).sort()).toEqual(["cursor", "limit", "scope"])
    expect(schema("get_global_status").properties ?? {}).toEqual({})
    // The allow-lists of ids reach the model as patterns.
    const taskIdField = (schema("deploy_headless_agent").properties as Record<string, { pattern?: string }>)["task_id"]
    expect(taskIdField?.pattern).toBe("^TASK-[A-Za-z0-9_-]{1,59}$")
  })

  it("create_real_task stores the task context and client_cwd", async () => {
    const created = await ok(client, "create_real_task", {
      description: `walkthrough over ${kind}`,
      priority: "P1",
      client_cwd: cwd,
      max_concurrent: 5,
      max_agents: 10,
      max_depth: 3,
      ...context
    })
    expect(created.task_id).toMatch(/^TASK-\d{8}-\d{6}-[0-9a-f]{8}$/)
    expect(created).toMatchObject({
      workspace: NodePath.join(env.home, created.task_id),
      status: "INITIALIZED",
      limits: { max_concurrent: 5, max_agents: 10, max_depth: 3 }
    })
    taskId = created.task_id
    expect(readRegistryFile(env.home, taskId)).toMatchObject({
      task_id: taskId,
      task_description: `walkthrough over ${kind}`,
      priority: "P1",
      working_directory: cwd,
      task_context: context,
      max_concurrent: 5,
      max_agents: 10,
      max_depth: 3,
      agents: []
    })
  })

  it("deploy_headless_agent: a live session in client_cwd, and a prompt file wrapping the mission", async () => {
    lead = await ok(client, "deploy_headless_agent", { task_id: taskId, agent_type: "lead", prompt: MISSION })
    expect(lead).toMatchObject({
      task_id: taskId,
      tmux_session: `agent_${lead.agent_id}`,
      status: "running",
      depth: 1,
      parent: "orchestrator",
      existing: false
    })
    expect(lead.agent_id).toMatch(/^lead-\d{6}-[0-9a-f]{8}$/)
    expect(liveSessions(env.socket)).toEqual([lead.tmux_session])
    // tmux reads a pane's current path from its foreground process, which a just-started pane may not have yet.
    const pane = await waitFor("the pane reports its working directory", () => {
      const p = paneOf(env.socket, lead.tmux_session)
      return p?.cwd !== undefined && p.cwd !== "" ? p : undefined
    }, 30_000)
    expect(pane).toEqual({ dead: false, cwd })
    expect(recordOf(env, taskId, lead.agent_id)).toMatchObject({
      status: "running",
      depth: 1,
      parent: "orchestrator",
      engine: "custom",
      prompt: MISSION,
      prompt_sha256: createHash("sha256").update(MISSION).digest("hex")
    })

    const file = taskFiles(env.home, taskId, lead.agent_id).prompt
    expect(Fs.statSync(file).mode & 0o777).toBe(0o600)
    const prompt = Fs.readFileSync(file, "utf8")
    expect(prompt).not.toBe(MISSION)
    expect(prompt).toContain(`You are agent ${lead.agent_id} (type: lead), working on task ${taskId}.`)
    expect(prompt).toContain(`You were spawned by orchestrator and sit at depth 1 of the agent tree (max depth 3).`)
    expect(prompt).toContain(`## Your mission\n${MISSION}\n`)
    expect(prompt).toContain(`walkthrough over ${kind}`)
    expect(prompt).toContain(context.background_context)
    expect(prompt).toContain("do not touch the lexer")
    expect(prompt).toContain(`- update_agent_progress: task_id "${taskId}", agent_id "${lead.agent_id}"`)
    expect(prompt).toContain(`- report_agent_finding: task_id "${taskId}", agent_id "${lead.agent_id}"`)
    expect(prompt).toContain(`parent_agent_id "${lead.agent_id}"`)
    expect(prompt).toContain("At most 5 agents of this task run at once, 10 in its lifetime.")
  })

  it("spawn_child_agent: a depth-2 child under the lead", async () => {
    child = await ok(client, "spawn_child_agent", {
      task_id: taskId,
      parent_agent_id: lead.agent_id,
      child_agent_type: "helper",
      child_prompt: `CHILD-MISSION-${kind}`
    })
    expect(child).toMatchObject({ status: "running", depth: 2, parent: lead.agent_id, existing: false })
    expect(liveSessions(env.socket).sort()).toEqual([lead.tmux_session, child.tmux_session].sort())
    const task = readRegistryFile(env.home, taskId)
    expect(task.agents.find((a: any) => a.id === child.agent_id)).toMatchObject({
      status: "running",
      parent: lead.agent_id,
      depth: 2,
      type: "helper"
    })
    expect(task.agent_hierarchy[lead.agent_id]).toEqual([child.agent_id])
    const prompt = Fs.readFileSync(taskFiles(env.home, taskId, child.agent_id).prompt, "utf8")
    expect(prompt).toContain(`You were spawned by ${lead.agent_id} and sit at depth 2 of the agent tree`)
    expect(prompt).toContain(`CHILD-MISSION-${kind}`)
  })

  it("get_agent_output: the agent's own output (its prompt, working directory and marker), filtered and tailed", async () => {
    let out: any
    await eventually("MARKER in the lead's output", async () => {
      out = await ok(client, "get_agent_output", { task_id: taskId, agent_id: lead.agent_id })
      return String(out.output).includes("MARKER")
    })
    expect(out).toMatchObject({ task_id: taskId, agent_id: lead.agent_id, status: "running", format: "text" })
    expect(out.output).toContain(MISSION)
    expect(out.output.split("\n")).toContain(cwd)
    const filtered = await ok(client, "get_agent_output", {
      task_id: taskId,
      agent_id: lead.agent_id,
      filter: "^MARK",
      tail: 5
    })
    expect(filtered).toMatchObject({ lines: 1, output: "MARKER" })
    const last = await ok(client, "get_agent_output", { task_id: taskId, agent_id: lead.agent_id, tail: 2 })
    expect(last).toMatchObject({ lines: 2, output: `${cwd}\nMARKER` })
  })

  it("update_agent_progress: the record and the progress log; 'completed' leaves the agent running", async () => {
    const files = taskFiles(env.home, taskId, lead.agent_id)
    const working = await ok(client, "update_agent_progress", {
      task_id: taskId,
      agent_id: lead.agent_id,
      status: "working",
      message: "reading the parser",
      progress: 40
    })
    expect(working).toEqual({
      agent_id: lead.agent_id,
      task_id: taskId,
      status: "working",
      reported_status: "working",
      progress: 40
    })
    expect(recordOf(env, taskId, lead.agent_id)).toMatchObject({
      status: "working",
      reported_status: "working",
      progress: 40,
      last_message: "reading the parser"
    })
    expect(jsonLines(files.progress)).toEqual([
      expect.objectContaining({
        agent_id: lead.agent_id,
        status: "working",
        message: "reading the parser",
        progress: 40
      })
    ])

    const completed = await ok(client, "update_agent_progress", {
      task_id: taskId,
      agent_id: lead.agent_id,
      status: "completed",
      message: "fixed it"
    })
    expect(completed).toMatchObject({ status: "working", reported_status: "completed", progress: 100 })
    const record = recordOf(env, taskId, lead.agent_id)
    expect(record).toMatchObject({
      status: "working",
      reported_status: "completed",
      progress: 100,
      last_message: "fixed it"
    })
    expect(record.completed_at).toBeUndefined()
    expect(jsonLines(files.progress).map((l) => [l.status, l.progress])).toEqual([["working", 40], ["completed", 100]])
    // The report is a claim: the agent's process and session go on.
    expect(liveSessions(env.socket)).toContain(lead.tmux_session)
    expect(paneOf(env.socket, lead.tmux_session)?.dead).toBe(false)
    expect(Fs.existsSync(files.prompt)).toBe(true)
  })

  it("report_agent_finding: appended to the agent's findings log", async () => {
    const data = { file: "src/parser.ts", line: 42 }
    const result = await ok(client, "report_agent_finding", {
      task_id: taskId,
      agent_id: lead.agent_id,
      finding_type: "issue",
      severity: "high",
      message: "the loop stops one line early",
      data
    })
    expect(result).toEqual({ agent_id: lead.agent_id, task_id: taskId, recorded: true, finding_type: "issue" })
    expect(jsonLines(taskFiles(env.home, taskId, lead.agent_id).findings)).toEqual([
      expect.objectContaining({
        agent_id: lead.agent_id,
        finding_type: "issue",
        severity: "high",
        message: "the loop stops one line early",
        data
      })
    ])
  })

  it("get_real_task_status: agents (without their secret hashes), counts and recent reports", async () => {
    const status = await ok(client, "get_real_task_status", { task_id: taskId })
    expect(status).toMatchObject({ task_id: taskId, active_count: 2, total_spawned: 2, max_concurrent: 5 })
    expect(status.agents.map((a: any) => [a.id, a.status, a.depth, a.parent])).toEqual([
      [lead.agent_id, "working", 1, "orchestrator"],
      [child.agent_id, "running", 2, lead.agent_id]
    ])
    // The registry file holds each agent's secret hash; the tool never shows it.
    expect(agentsOf(env, taskId).every((a) => typeof a.secret_sha256 === "string")).toBe(true)
    for (const agent of status.agents) expect(agent).not.toHaveProperty("secret_sha256")
    expect(Object.keys(status.recent_reports)).toEqual([lead.agent_id])
    expect(status.recent_reports[lead.agent_id].progress.map((p: any) => p.status)).toEqual(["working", "completed"])
    expect(status.recent_reports[lead.agent_id].findings).toHaveLength(1)
    const one = await ok(client, "get_real_task_status", { task_id: taskId, recent: 1 })
    expect(one.recent_reports[lead.agent_id].progress.map((p: any) => p.status)).toEqual(["completed"])
  })

  it("kill_real_agent: killed with its reason, session and prompt file gone, log kept; idempotent", async () => {
    const files = taskFiles(env.home, taskId, child.agent_id)
    const killed = await ok(client, "kill_real_agent", {
      task_id: taskId,
      agent_id: child.agent_id,
      reason: "done here"
    })
    expect(killed).toEqual({ agent_id: child.agent_id, task_id: taskId, status: "killed", killed: true, cascaded: [] })
    expect(liveSessions(env.socket)).toEqual([lead.tmux_session])
    expect(recordOf(env, taskId, child.agent_id)).toMatchObject({ status: "killed", reason: "done here" })
    expect(Fs.existsSync(files.prompt)).toBe(false)
    expect(Fs.existsSync(files.log)).toBe(true)
    const again = await ok(client, "kill_real_agent", { task_id: taskId, agent_id: child.agent_id })
    expect(again).toMatchObject({ status: "killed", killed: false })
  })

  it("list_tasks and get_global_status", async () => {
    const { tasks } = await ok(client, "list_tasks", {})
    expect(tasks).toEqual([
      expect.objectContaining({
        task_id: taskId,
        description: `walkthrough over ${kind}`,
        active_count: 1,
        total_spawned: 2,
        max_concurrent: 5
      })
    ])
    // Every task, a page at a time: this one only, with no page after it.
    const all = await ok(client, "list_tasks", { scope: "all", limit: 1 })
    expect(all).toEqual({ tasks: [expect.objectContaining({ task_id: taskId })], unreadable: [] })
    const global = await ok(client, "get_global_status", {})
    expect(global).toEqual({
      caller: { _tag: "Orchestrator" },
      active_tasks: 1,
      active_agents: 1,
      max_concurrent_agents: 100,
      // The task's agents print nothing metered (the custom engine's format is none).
      spend: {
        tokens: { input: 0, output: 0, cache_creation: 0, cache_read: 0 },
        total_tokens: 0,
        cost_usd: 0,
        estimated: false
      },
      usage_limits: [],
      unreadable: []
    })
  })

  it("errors are results with isError and the tag: DuplicateAgent, LimitReached, DepthExceeded, InvalidInput, TaskNotFound, AgentNotFound", async () => {
    const duplicate = await fails(
      client,
      "deploy_headless_agent",
      { task_id: taskId, agent_type: "lead", prompt: MISSION },
      "DuplicateAgent"
    )
    expect(duplicate).toContain(lead.agent_id)

    // Bad arguments: missing, unknown or ill-typed fields, values the domain refuses.
    const missing = await fails(client, "deploy_headless_agent", { task_id: taskId, agent_type: "x" }, "InvalidInput")
    expect(missing).toContain("prompt")
    const extra = await fails(
      client,
      "deploy_headless_agent",
      { task_id: taskId, agent_type: "x", prompt: "p", colour: "red" },
      "InvalidInput"
    )
    expect(extra).toContain("colour")
    await fails(client, "create_real_task", { description: "d", max_concurrent: "five" }, "InvalidInput")
    const badType = await fails(
      client,
      "deploy_headless_agent",
      { task_id: taskId, agent_type: "../evil type", prompt: "p" },
      "InvalidInput"
    )
    expect(badType).toContain("agent type")
    await fails(
      client,
      "update_agent_progress",
      { task_id: taskId, agent_id: lead.agent_id, status: "working", message: "m", progress: 150 },
      "InvalidInput"
    )
    await fails(client, "get_agent_output", { task_id: taskId, agent_id: lead.agent_id, filter: "(" }, "InvalidInput")
    await fails(
      client,
      "create_real_task",
      { description: "d", client_cwd: NodePath.join(cwd, "missing") },
      "InvalidInput"
    )
    await fails(client, "get_real_task_status", { task_id: "../../etc" }, "InvalidInput")

    await fails(client, "get_real_task_status", { task_id: MISSING_TASK }, "TaskNotFound")
    await fails(
      client,
      "deploy_headless_agent",
      { task_id: MISSING_TASK, agent_type: "x", prompt: "p" },
      "TaskNotFound"
    )
    await fails(client, "kill_real_agent", { task_id: taskId, agent_id: "ghost-000000-00000000" }, "AgentNotFound")

    const unknown = await call(client, "no_such_tool", {})
    expect(unknown.isError).toBe(true)
    expect(textOf(unknown)).toContain("Unknown tool no_such_tool")

    // Limits of a second task: max_concurrent 1 and max_depth 1.
    const small = await ok(client, "create_real_task", { description: "small", max_concurrent: 1, max_depth: 1 })
    const only = await ok(client, "deploy_headless_agent", {
      task_id: small.task_id,
      agent_type: "only",
      prompt: "one"
    })
    const limit = await fails(
      client,
      "deploy_headless_agent",
      { task_id: small.task_id, agent_type: "second", prompt: "two" },
      "LimitReached"
    )
    expect(limit).toContain("max_concurrent")
    await fails(
      client,
      "spawn_child_agent",
      { task_id: small.task_id, parent_agent_id: only.agent_id, child_agent_type: "deep", child_prompt: "deeper" },
      "DepthExceeded"
    )

    // Nothing the failed calls touched was kept: no record, no session, no prompt file beyond the live agents.
    expect(agentsOf(env, small.task_id).map((a) => [a.id, a.status])).toEqual([[only.agent_id, "running"]])
    expect(agentsOf(env, taskId).map((a) => a.id)).toEqual([lead.agent_id, child.agent_id])
    expect(liveSessions(env.socket).sort()).toEqual([lead.tmux_session, only.tmux_session].sort())
    expect(promptFiles(env.home, taskId)).toEqual([`${lead.agent_id}.prompt`])
    expect(promptFiles(env.home, small.task_id)).toEqual([`${only.agent_id}.prompt`])
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// 2. Agent identity

describe("agent identity: a server started as an agent acts only for itself and its subtree", () => {
  let env: TestEnv
  let orchestrator: Served
  let agent: Served
  let taskId = ""
  let otherTaskId = ""
  let alpha: any
  let beta: any
  let stranger: any
  let secret = ""

  const identityOf = (agentId: string, agentSecret: string, task = taskId) => ({
    SPAWNKIT_TASK_ID: task,
    SPAWNKIT_AGENT_ID: agentId,
    SPAWNKIT_AGENT_SECRET: agentSecret
  })

  beforeAll(async () => {
    env = makeTestEnv()
    orchestrator = await startStdio(env)
    const o = orchestrator.client
    taskId = (await ok(o, "create_real_task", { description: "identity" })).task_id
    otherTaskId = (await ok(o, "create_real_task", { description: "someone else's" })).task_id
    alpha = await ok(o, "deploy_headless_agent", { task_id: taskId, agent_type: "alpha", prompt: "alpha work" })
    beta = await ok(o, "deploy_headless_agent", { task_id: taskId, agent_type: "beta", prompt: "beta work" })
    stranger = await ok(o, "deploy_headless_agent", {
      task_id: otherTaskId,
      agent_type: "stranger",
      prompt: "elsewhere"
    })
    secret = await agentSecret(env.socket, alpha.tmux_session)
    expect(secret).toMatch(/^[0-9a-f]{64}$/)
    agent = await startStdio(env, identityOf(alpha.agent_id, secret))
  })
  afterAll(async () => {
    await killServers()
    await disposeEnv(env)
  })

  it("the secret is in the agent's own environment only: not tmux's, the registry holds its hash, the prompt does not hold it", async () => {
    expect(sessionEnv(env.socket, alpha.tmux_session, "SPAWNKIT_AGENT_ID")).toBe(alpha.agent_id)
    expect(sessionEnv(env.socket, alpha.tmux_session, "SPAWNKIT_TASK_ID")).toBe(taskId)
    // The secret never reaches tmux: its session has only where the runner found it (a file it deleted).
    expect(sessionEnv(env.socket, alpha.tmux_session, "SPAWNKIT_AGENT_SECRET")).toBeUndefined()
    const secretFile = sessionEnv(env.socket, alpha.tmux_session, "SPAWNKIT_AGENT_SECRET_FILE")
    expect(secretFile !== undefined && !Fs.existsSync(secretFile)).toBe(true)
    const betaSecret = await agentSecret(env.socket, beta.tmux_session)
    expect(betaSecret).toMatch(/^[0-9a-f]{64}$/)
    expect(betaSecret).not.toBe(secret)
    const registryText = Fs.readFileSync(NodePath.join(env.home, taskId, "AGENT_REGISTRY.json"), "utf8")
    expect(registryText).not.toContain(secret)
    expect(recordOf(env, taskId, alpha.agent_id).secret_sha256).toBe(createHash("sha256").update(secret).digest("hex"))
    expect(Fs.readFileSync(taskFiles(env.home, taskId, alpha.agent_id).prompt, "utf8")).not.toContain(secret)
    // The custom engine takes no MCP config file; only claude agents get one.
    expect(promptFiles(env.home, taskId).filter((f) => f.endsWith(".mcp.json"))).toEqual([])
  })

  it("it reports its own progress and spawns children under itself", async () => {
    const c = agent.client
    expect(await ok(c, "get_global_status", {})).toMatchObject({
      caller: { _tag: "Agent", taskId, agentId: alpha.agent_id }
    })
    const progress = await ok(c, "update_agent_progress", {
      task_id: taskId,
      agent_id: alpha.agent_id,
      status: "working",
      message: "alpha at work",
      progress: 10
    })
    expect(progress).toMatchObject({ agent_id: alpha.agent_id, status: "working", progress: 10 })
    expect(recordOf(env, taskId, alpha.agent_id)).toMatchObject({ progress: 10, last_message: "alpha at work" })
    await ok(c, "report_agent_finding", {
      task_id: taskId,
      agent_id: alpha.agent_id,
      finding_type: "insight",
      severity: "low",
      message: "alpha noticed something"
    })

    // deploy_headless_agent without a parent: the agent itself is the parent.
    const sub = await ok(c, "deploy_headless_agent", { task_id: taskId, agent_type: "sub", prompt: "sub work" })
    expect(sub).toMatchObject({ parent: alpha.agent_id, depth: 2, status: "running" })
    const explicit = await ok(c, "spawn_child_agent", {
      task_id: taskId,
      parent_agent_id: alpha.agent_id,
      child_agent_type: "sub2",
      child_prompt: "more sub work"
    })
    expect(explicit).toMatchObject({ parent: alpha.agent_id, depth: 2 })
    // Deeper in its own subtree is allowed too.
    const grandchild = await ok(c, "spawn_child_agent", {
      task_id: taskId,
      parent_agent_id: sub.agent_id,
      child_agent_type: "leaf",
      child_prompt: "leaf work"
    })
    expect(grandchild).toMatchObject({ parent: sub.agent_id, depth: 3 })
    expect(liveSessions(env.socket)).toEqual(
      expect.arrayContaining([sub.tmux_session, explicit.tmux_session, grandchild.tmux_session])
    )
    expect(recordOf(env, taskId, sub.agent_id)).toMatchObject({ parent: alpha.agent_id, depth: 2, status: "running" })

    // It may read its own output and its task, and kill agents below itself.
    await ok(c, "get_agent_output", { task_id: taskId, agent_id: alpha.agent_id })
    expect((await ok(c, "get_real_task_status", { task_id: taskId })).task_id).toBe(taskId)
    expect(await ok(c, "kill_real_agent", { task_id: taskId, agent_id: grandchild.agent_id })).toMatchObject({
      status: "killed",
      killed: true
    })
    expect(liveSessions(env.socket)).not.toContain(grandchild.tmux_session)
    // It sees its own task only.
    const { tasks } = await ok(c, "list_tasks", {})
    expect(tasks.map((t: any) => t.task_id)).toEqual([taskId])
  })

  it("it is refused (NotPermitted) for a sibling's progress, spawning under a sibling, creating tasks, another task", async () => {
    const c = agent.client
    const before = { tasks: Fs.readdirSync(env.home).filter((d) => d.startsWith("TASK-")).sort() }
    const sessionsBefore = liveSessions(env.socket).sort()
    const betaBefore = recordOf(env, taskId, beta.agent_id)

    const sibling = await fails(
      c,
      "update_agent_progress",
      { task_id: taskId, agent_id: beta.agent_id, status: "working", message: "spoofed", progress: 99 },
      "NotPermitted"
    )
    expect(sibling).toContain(beta.agent_id)
    await fails(
      c,
      "report_agent_finding",
      { task_id: taskId, agent_id: beta.agent_id, finding_type: "issue", severity: "low", message: "spoofed" },
      "NotPermitted"
    )
    await fails(
      c,
      "spawn_child_agent",
      { task_id: taskId, parent_agent_id: beta.agent_id, child_agent_type: "x", child_prompt: "under beta" },
      "NotPermitted"
    )
    await fails(
      c,
      "deploy_headless_agent",
      { task_id: taskId, agent_type: "x", prompt: "under beta", parent: beta.agent_id },
      "NotPermitted"
    )
    await fails(c, "create_real_task", { description: "an agent's own task" }, "NotPermitted")
    await fails(c, "kill_real_agent", { task_id: taskId, agent_id: beta.agent_id }, "NotPermitted")
    await fails(c, "kill_real_agent", { task_id: taskId, agent_id: alpha.agent_id }, "NotPermitted")
    await fails(c, "get_agent_output", { task_id: taskId, agent_id: beta.agent_id }, "NotPermitted")
    // Another task.
    await fails(c, "get_real_task_status", { task_id: otherTaskId }, "NotPermitted")
    await fails(
      c,
      "deploy_headless_agent",
      { task_id: otherTaskId, agent_type: "x", prompt: "intrude" },
      "NotPermitted"
    )
    await fails(
      c,
      "update_agent_progress",
      { task_id: otherTaskId, agent_id: stranger.agent_id, status: "working", message: "spoofed" },
      "NotPermitted"
    )
    await fails(c, "kill_real_agent", { task_id: otherTaskId, agent_id: stranger.agent_id }, "NotPermitted")

    // Nothing changed: no task, no session, beta's record and files untouched, the other task as it was.
    expect(Fs.readdirSync(env.home).filter((d) => d.startsWith("TASK-")).sort()).toEqual(before.tasks)
    expect(liveSessions(env.socket).sort()).toEqual(sessionsBefore)
    expect(recordOf(env, taskId, beta.agent_id)).toEqual(betaBefore)
    expect(Fs.existsSync(taskFiles(env.home, taskId, beta.agent_id).progress)).toBe(false)
    expect(Fs.existsSync(taskFiles(env.home, taskId, beta.agent_id).findings)).toBe(false)
    expect(agentsOf(env, otherTaskId).map((a) => [a.id, a.status])).toEqual([[stranger.agent_id, "running"]])
  })

  it("a server with a wrong secret, a forged agent id or another task fails to start and never serves", async () => {
    const cases: ReadonlyArray<
      { readonly name: string; readonly identity: Record<string, string>; readonly args?: Array<string> }
    > = [
      { name: "wrong secret", identity: identityOf(alpha.agent_id, randomBytes(32).toString("hex")) },
      { name: "no secret", identity: identityOf(alpha.agent_id, "") },
      { name: "forged id (beta's id, alpha's secret)", identity: identityOf(beta.agent_id, secret) },
      { name: "unknown agent id", identity: identityOf("ghost-000000-00000000", secret) },
      { name: "alpha's id and secret in another task", identity: identityOf(alpha.agent_id, secret, otherTaskId) },
      {
        name: "wrong secret over HTTP",
        identity: identityOf(alpha.agent_id, randomBytes(32).toString("hex")),
        args: ["--http", "--port", "0"]
      }
    ]
    for (const { args = [], identity, name } of cases) {
      const server = startServerProcess(env, args, identity)
      // stdin stays open: a stdio server that served would wait on it forever, so only a refusal exits.
      const exit = await within(`${name}: the server exits`, server.exit, 20_000).finally(() => {
        if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill("SIGKILL")
      })
      expect(exit.code, `${name}: ${server.stderr()}`).not.toBe(0)
      expect(exit.code, name).not.toBeNull()
      expect(server.stderr(), name).toMatch(/error \[NotPermitted\]: .*does not belong to agent/)
      expect(server.stderr(), name).not.toContain("spawnkit MCP server on")
      expect(server.stdout(), name).toBe("")
    }
    // The genuine identity still works.
    const check = own(await startStdio(env, identityOf(alpha.agent_id, secret)))
    expect(await ok(check.client, "get_global_status", {})).toMatchObject({ caller: { agentId: alpha.agent_id } })
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// 3. A client no one here wrote: the MCP Inspector CLI. It starts the server itself, with its own minimal environment
//    (no locale) plus the -e flags, as MCP clients do.

interface InspectorRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const runInspector = (env: TestEnv, args: ReadonlyArray<string>): Promise<InspectorRun> => {
  const envFlags = Object.entries(env.env).flatMap(([k, v]) => ["-e", `${k}=${v}`])
  const argv = ["@modelcontextprotocol/inspector", "--cli", ...envFlags, process.execPath, CLI, "serve", ...args]
  return new Promise((resolve, reject) => {
    execFile(
      "npx",
      argv,
      {
        cwd: REPO,
        encoding: "utf8",
        timeout: 90_000,
        maxBuffer: 16 * 1024 * 1024,
        // The inspector's catalog (never written by these calls) is kept inside the test's home anyway.
        env: { ...process.env, MCP_CATALOG_PATH: NodePath.join(env.home, "inspector-catalog.json") }
      },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== "number") reject(error)
        else resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr })
      }
    )
  })
}

const inspectorJson = (run: InspectorRun, what: string): any => {
  expect(run.code, `${what}: exit ${run.code}; stderr: ${run.stderr}; stdout: ${run.stdout}`).toBe(0)
  return JSON.parse(run.stdout)
}

describe("the MCP Inspector CLI against the stdio server", () => {
  let env: TestEnv
  beforeAll(() => {
    env = makeTestEnv()
  })
  afterAll(() => disposeEnv(env))

  it("tools/list, then create_real_task and deploy_headless_agent through tools/call", async () => {
    const listed = inspectorJson(await runInspector(env, ["--method", "tools/list"]), "tools/list")
    expect(listed.tools.map((t: any) => t.name).sort()).toEqual([...TOOL_NAMES].sort())

    const createdRun = await runInspector(env, [
      "--method",
      "tools/call",
      "--tool-name",
      "create_real_task",
      "--tool-arg",
      "description=made by the MCP Inspector",
      "max_concurrent=3"
    ])
    const created = inspectorJson(createdRun, "create_real_task")
    expect(created.isError ?? false, JSON.stringify(created)).toBe(false)
    const task = JSON.parse(created.content[0].text)
    expect(task.task_id).toMatch(/^TASK-/)
    expect(readRegistryFile(env.home, task.task_id)).toMatchObject({
      task_description: "made by the MCP Inspector",
      max_concurrent: 3
    })

    const deployed = inspectorJson(
      await runInspector(env, [
        "--method",
        "tools/call",
        "--tool-name",
        "deploy_headless_agent",
        "--tool-arg",
        `task_id=${task.task_id}`,
        "agent_type=inspected",
        "prompt=hello from the inspector"
      ]),
      "deploy_headless_agent"
    )
    expect(deployed.isError ?? false, JSON.stringify(deployed)).toBe(false)
    const agent = JSON.parse(deployed.content[0].text)
    expect(agent).toMatchObject({ task_id: task.task_id, status: "running", depth: 1, existing: false })
    // The inspector's server has exited; the agent it spawned lives on in tmux, recorded as running.
    expect(liveSessions(env.socket)).toEqual([agent.tmux_session])
    expect(paneOf(env.socket, agent.tmux_session)?.dead).toBe(false)
    expect(recordOf(env, task.task_id, agent.agent_id)).toMatchObject({ status: "running", type: "inspected" })
    expect(Fs.readFileSync(taskFiles(env.home, task.task_id, agent.agent_id).prompt, "utf8")).toContain(
      "hello from the inspector"
    )

    // An error comes back to the inspector as a tool result with isError.
    const missing = await runInspector(env, [
      "--method",
      "tools/call",
      "--tool-name",
      "get_real_task_status",
      "--tool-arg",
      `task_id=${MISSING_TASK}`
    ])
    // The inspector reports a tool error by its exit status and still prints the result.
    expect(missing.code, missing.stderr).not.toBe(0)
    const missingResult = JSON.parse(missing.stdout)
    expect(missingResult.isError, missing.stdout).toBe(true)
    expect(missingResult.content[0].text).toMatch(/^TaskNotFound:/)
  }, 300_000)
})

// ---------------------------------------------------------------------------------------------------------------------
// 4. Cancellation and 5. graceful shutdown, with a spawn that hangs after creating its session

/**
 * Start a deploy that hangs (after-session) and wait until its session, prompt file and reservation exist. Returns
 * its outcome, and whether the call is still pending (it must be, for a cancellation or shutdown to be what ends it).
 */
const hangingDeploy = async (env: TestEnv, client: Client, taskId: string, signal?: AbortSignal) => {
  let pending = true
  const settled = call(
    client,
    "deploy_headless_agent",
    { task_id: taskId, agent_type: "slow", prompt: "a spawn that hangs" },
    signal !== undefined ? { signal } : undefined
  ).then((result) => ({ result }), (error: unknown) => ({ error })).finally(() => {
    pending = false
  })
  await waitFor("the hanging spawn's session exists", () => liveSessions(env.socket).length === 1)
  await waitFor(
    "the hanging spawn's reservation and prompt file exist",
    () => agentsOf(env, taskId).length === 1 && promptFiles(env.home, taskId).length === 1
  )
  expect(agentsOf(env, taskId)[0]).toMatchObject({ status: "reserved", reservation: expect.any(Object) })
  expect(liveSessions(env.socket)).toHaveLength(1)
  return { settled, stillPending: () => pending }
}

const expectNothingLeft = (env: TestEnv, taskId: string) => {
  expect(liveSessions(env.socket)).toEqual([])
  expect(promptFiles(env.home, taskId)).toEqual([])
  expect(agentsOf(env, taskId)).toEqual([])
  expect(readRegistryFile(env.home, taskId)).toMatchObject({ active_count: 0, total_spawned: 0 })
}

describe("cancelling a hanging deploy_headless_agent rolls it back", () => {
  it("stdio: the client's AbortSignal cancels the call; no session, prompt file or record remains", async () => {
    const env = newTestEnv()
    const served = own(await startStdio(env, HANG_AFTER_SESSION))
    const { task_id } = await ok(served.client, "create_real_task", { description: "cancel over stdio" })
    const controller = new AbortController()
    const { settled, stillPending } = await hangingDeploy(env, served.client, task_id, controller.signal)
    expect(stillPending()).toBe(true)
    controller.abort(new Error("the test cancels the spawn"))
    expect(await within("the cancelled call settles", settled)).toHaveProperty("error")
    await waitFor(
      "the cancelled spawn is rolled back",
      () =>
        liveSessions(env.socket).length === 0 && promptFiles(env.home, task_id).length === 0 &&
        agentsOf(env, task_id).length === 0
    )
    expectNothingLeft(env, task_id)
    // The server goes on serving.
    expect(await ok(served.client, "get_global_status", {})).toMatchObject({ active_agents: 0 })
  })

  it("http: the SDK client's notifications/cancelled reaches the call in its MCP session and rolls it back", async () => {
    const env = newTestEnv()
    const served = own(await startHttp(env, HANG_AFTER_SESSION))
    const { task_id } = await ok(served.client, "create_real_task", { description: "cancel notification over http" })
    const controller = new AbortController()
    const { settled, stillPending } = await hangingDeploy(env, served.client, task_id, controller.signal)
    expect(stillPending()).toBe(true)
    controller.abort(new Error("the test cancels the spawn"))
    expect(await within("the cancelled call settles", settled)).toHaveProperty("error")
    await waitFor(
      "the cancelled spawn is rolled back",
      () =>
        liveSessions(env.socket).length === 0 && promptFiles(env.home, task_id).length === 0 &&
        agentsOf(env, task_id).length === 0
    )
    expectNothingLeft(env, task_id)
    expect(await ok(served.client, "get_global_status", {})).toMatchObject({ active_agents: 0 })
  })

  it("http: aborting closes the HTTP request; no session, prompt file or record remains", async () => {
    const env = newTestEnv()
    const served = own(await startHttp(env, HANG_AFTER_SESSION))
    const { task_id } = await ok(served.client, "create_real_task", { description: "cancel over http" })
    const controller = new AbortController()
    // A client whose requests close when the caller aborts (the SDK transport takes a fetch implementation).
    const cancellable = await connectHttp(served.url!, {
      token: served.token,
      fetch: (url, init) =>
        fetch(url, {
          ...init,
          signal: init?.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal
        })
    })
    try {
      const { settled, stillPending } = await hangingDeploy(env, cancellable, task_id, controller.signal)
      expect(stillPending()).toBe(true)
      controller.abort(new Error("the test cancels the spawn"))
      expect(await within("the cancelled call settles", settled)).toHaveProperty("error")
      await waitFor(
        "the cancelled spawn is rolled back",
        () =>
          liveSessions(env.socket).length === 0 && promptFiles(env.home, task_id).length === 0 &&
          agentsOf(env, task_id).length === 0
      )
      expectNothingLeft(env, task_id)
      expect(await ok(served.client, "get_global_status", {})).toMatchObject({ active_agents: 0 })
    } finally {
      await cancellable.close().catch(() => undefined)
    }
  })
})

describe("graceful shutdown: SIGTERM while a spawn hangs", () => {
  it.each(KINDS)("%s: the server exits and leaves no session, prompt file or reserved record", async (kind) => {
    const env = newTestEnv()
    const served = own(await startServer(kind, env, HANG_AFTER_SESSION))
    const { task_id } = await ok(served.client, "create_real_task", { description: `shutdown over ${kind}` })
    const { settled, stillPending } = await hangingDeploy(env, served.client, task_id)
    expect(stillPending()).toBe(true)
    process.kill(served.pid, "SIGTERM")
    await within("the server exits after SIGTERM", served.exited, 120_000)
    expect(await within("the pending call settles", settled)).toHaveProperty("error")
    // Checked once, right after the exit: the server released everything before it exited.
    expectNothingLeft(env, task_id)
  })
})
