/**
 * MCP resources and logging of the real `spawnkit serve` over stdio, driven by the SDK's own Client: resources/list,
 * resources/templates/list and resources/read of each resource; an agent's server sees its own task's resources
 * only; bad and unknown URIs are refused with a clear JSON-RPC error and change nothing; logging/setLevel validates
 * the level, and a failed call is logged to its client at its level (a refusal: warning; the server's own failure,
 * such as a corrupt registry: error) and not below the level set.
 *
 * Needs `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
  type ReadResourceResult
} from "@modelcontextprotocol/sdk/types.js"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { CLI, makeTestEnv, type TestEnv } from "../support/Harness.js"
import { agentSecret, call, disposeEnv, killServers, ok, type Served, startStdio, waitFor } from "../support/Mcp.js"

expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)

const NO_RECONCILE = { SPAWNKIT_RECONCILE_INTERVAL: "0" }

let env: TestEnv
let orchestrator: Served
let agent: Served
let taskId = ""
let otherTaskId = ""
let alpha: any

const jsonOf = (result: ReadResourceResult): any => {
  expect(result.contents).toHaveLength(1)
  const [content] = result.contents
  expect(content!.mimeType).toBe("application/json")
  return JSON.parse((content as { readonly text: string }).text)
}

/** The JSON-RPC error a promise rejects with. */
const rpcError = async (promise: Promise<unknown>): Promise<McpError> => {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(McpError)
  return error as McpError
}

const registryText = (task: string) => Fs.readFileSync(NodePath.join(env.home, task, "AGENT_REGISTRY.json"), "utf8")

beforeAll(async () => {
  env = makeTestEnv()
  orchestrator = await startStdio(env, NO_RECONCILE)
  const o = orchestrator.client
  taskId = (await ok(o, "create_real_task", { description: "resources" })).task_id
  otherTaskId = (await ok(o, "create_real_task", { description: "someone else's" })).task_id
  alpha = await ok(o, "deploy_headless_agent", { task_id: taskId, agent_type: "alpha", prompt: "alpha work" })
  await ok(o, "deploy_headless_agent", { task_id: otherTaskId, agent_type: "stranger", prompt: "elsewhere" })
  await ok(o, "update_agent_progress", {
    task_id: taskId,
    agent_id: alpha.agent_id,
    status: "working",
    message: "halfway there",
    progress: 50
  })
  await ok(o, "report_agent_finding", {
    task_id: taskId,
    agent_id: alpha.agent_id,
    finding_type: "insight",
    severity: "low",
    message: "the parser is slow"
  })
  const secret = await agentSecret(env.socket, alpha.tmux_session)
  agent = await startStdio(env, {
    ...NO_RECONCILE,
    SPAWNKIT_TASK_ID: taskId,
    SPAWNKIT_AGENT_ID: alpha.agent_id,
    SPAWNKIT_AGENT_SECRET: secret
  })
}, 180_000)

afterAll(async () => {
  await killServers()
  await disposeEnv(env)
})

describe("resources", () => {
  it("the server declares resources (with subscribe) and logging", () => {
    const capabilities = orchestrator.client.getServerCapabilities()
    expect(capabilities?.resources).toEqual({ subscribe: true, listChanged: false })
    expect(capabilities?.logging).toEqual({})
  })

  it("lists tasks://list and each active task's status and timeline, and the two templates", async () => {
    const { resources } = await orchestrator.client.listResources()
    const uris = resources.map((r) => r.uri)
    expect(uris[0]).toBe("tasks://list")
    for (const t of [taskId, otherTaskId]) {
      expect(uris).toContain(`task://${t}/status`)
      expect(uris).toContain(`task://${t}/progress-timeline`)
    }
    for (const r of resources) {
      expect(r.name).toBeTruthy()
      expect(r.description).toBeTruthy()
      expect(r.mimeType).toBe("application/json")
    }
    const { resourceTemplates } = await orchestrator.client.listResourceTemplates()
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual([
      "task://{task_id}/status",
      "task://{task_id}/progress-timeline"
    ])
  })

  it("reads tasks://list as list_tasks shows it", async () => {
    const listing = jsonOf(await orchestrator.client.readResource({ uri: "tasks://list" }))
    expect(listing).toEqual(await ok(orchestrator.client, "list_tasks", {}))
    expect(listing.tasks.map((t: any) => t.task_id).sort()).toEqual([taskId, otherTaskId].sort())
  })

  it("reads a task's status as get_real_task_status shows it", async () => {
    const status = jsonOf(await orchestrator.client.readResource({ uri: `task://${taskId}/status` }))
    expect(status).toEqual(await ok(orchestrator.client, "get_real_task_status", { task_id: taskId }))
    expect(status.agents.map((a: any) => a.id)).toEqual([alpha.agent_id])
    expect(status.agents[0].secret_sha256).toBeUndefined()
  })

  it("reads a task's progress timeline: its reports in time order", async () => {
    const timeline = jsonOf(await orchestrator.client.readResource({ uri: `task://${taskId}/progress-timeline` }))
    expect(timeline.task_id).toBe(taskId)
    expect(timeline.truncated).toBe(false)
    const reports = timeline.entries.filter((e: any) => e.kind === "progress" || e.kind === "finding")
    expect(reports).toMatchObject([
      { kind: "progress", agent_id: alpha.agent_id, message: "halfway there", progress: 50 },
      { kind: "finding", agent_id: alpha.agent_id, message: "the parser is slow", finding_type: "insight" }
    ])
    const times = timeline.entries.map((e: any) => Date.parse(e.at))
    expect(times).toEqual([...times].sort((a, b) => a - b))
  })

  it("an agent's server lists and reads its own task's resources only", async () => {
    const { resources } = await agent.client.listResources()
    expect(resources.map((r) => r.uri)).toEqual([
      "tasks://list",
      `task://${taskId}/status`,
      `task://${taskId}/progress-timeline`
    ])
    const listing = jsonOf(await agent.client.readResource({ uri: "tasks://list" }))
    expect(listing.tasks.map((t: any) => t.task_id)).toEqual([taskId])
    expect(jsonOf(await agent.client.readResource({ uri: `task://${taskId}/status` })).task_id).toBe(taskId)
    for (const view of ["status", "progress-timeline"]) {
      const error = await rpcError(agent.client.readResource({ uri: `task://${otherTaskId}/${view}` }))
      expect(error.code).toBe(ErrorCode.InvalidParams)
      expect(error.message).toContain("NotPermitted")
      expect(error.message).toContain(otherTaskId)
    }
    const refused = await rpcError(agent.client.subscribeResource({ uri: `task://${otherTaskId}/status` }))
    expect(refused.message).toContain("NotPermitted")
  })

  it("bad and unknown URIs are refused with a clear error and change nothing", async () => {
    const before = [registryText(taskId), registryText(otherTaskId)]
    const client = orchestrator.client
    for (const uri of ["nope://x", "tasks://everything", `task://${taskId}/secrets`, `task://${taskId}`, ""]) {
      const error = await rpcError(client.readResource({ uri }))
      expect(error.code, uri).toBe(ErrorCode.InvalidParams)
      expect(error.message, uri).toContain("is no spawnkit resource")
    }
    const badId = await rpcError(client.readResource({ uri: "task://not a task/status" }))
    expect(badId.code).toBe(ErrorCode.InvalidParams)
    expect(badId.message).toContain("InvalidInput")
    const missing = await rpcError(client.readResource({ uri: "task://TASK-20990101-000000-deadbeef/status" }))
    expect(missing.code).toBe(-32002)
    expect(missing.message).toContain("TaskNotFound")
    const noUri = await rpcError(client.request({ method: "resources/read", params: {} } as any, {} as any))
    expect(noUri.code).toBe(ErrorCode.InvalidParams)
    const subscribeUnknown = await rpcError(client.subscribeResource({ uri: "test://watched-resource" }))
    expect(subscribeUnknown.code).toBe(ErrorCode.InvalidParams)
    expect([registryText(taskId), registryText(otherTaskId)]).toEqual(before)
  })

  it("subscribing to and unsubscribing from a spawnkit resource succeed", async () => {
    await orchestrator.client.subscribeResource({ uri: `task://${taskId}/status` })
    await orchestrator.client.subscribeResource({ uri: "tasks://list" })
    await orchestrator.client.unsubscribeResource({ uri: `task://${taskId}/status` })
    await orchestrator.client.unsubscribeResource({ uri: "tasks://list" })
  })
})

describe("logging", () => {
  it("logging/setLevel refuses a level that is none of the eight", async () => {
    const error = await rpcError(
      orchestrator.client.request({ method: "logging/setLevel", params: { level: "loud" } } as any, {} as any)
    )
    expect(error.code).toBe(ErrorCode.InvalidParams)
    expect(error.message).toContain("debug, info, notice, warning, error, critical, alert, emergency")
  })

  it("a failed call is logged at its level, and not below the level the client set", async () => {
    const env2 = makeTestEnv()
    let served: Served | undefined
    try {
      served = await startStdio(env2, NO_RECONCILE)
      const client = served.client
      const messages: Array<{ readonly level: string; readonly data: any }> = []
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void messages.push(n.params))
      const corrupt = (await ok(client, "create_real_task", { description: "to be corrupted" })).task_id
      Fs.writeFileSync(NodePath.join(env2.home, corrupt, "AGENT_REGISTRY.json"), "{ not json")
      const missing = "TASK-20990101-000000-deadbeef"

      await client.setLoggingLevel("error")
      expect((await call(client, "get_real_task_status", { task_id: missing })).isError).toBe(true)
      expect((await call(client, "get_real_task_status", { task_id: corrupt })).isError).toBe(true)
      await waitFor("the error is logged", () => messages.length > 0, 30_000)
      // Notifications arrive in order: the refusal (a warning) was sent before the error, or not at all.
      expect(messages).toHaveLength(1)
      expect(messages[0]).toMatchObject({
        level: "error",
        data: { tool: "get_real_task_status", error: "RegistryCorrupt" }
      })

      await client.setLoggingLevel("warning")
      expect((await call(client, "get_real_task_status", { task_id: missing })).isError).toBe(true)
      await waitFor("the refusal is logged", () => messages.length > 1, 30_000)
      expect(messages[1]).toMatchObject({
        level: "warning",
        data: { tool: "get_real_task_status", error: "TaskNotFound" }
      })
      expect(messages[1]!.data.message).toContain(missing)
    } finally {
      if (served !== undefined) await killServers([served])
      await disposeEnv(env2)
    }
  }, 120_000)
})
