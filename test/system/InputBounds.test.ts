/**
 * Bounds and validation of what callers store and ask for, through the real MCP server (stdio, SDK client), the
 * compiled CLI and the API: task text (description, context, lists) and the bounds the listed input schemas carry;
 * how much a status call reads; tools without arguments refuse extra ones; id errors name their field; agent types
 * start with a letter or digit, while agents of older registries whose ids start with `-` stay addressable.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { cli, makeTestEnv, readRegistryFile, type TestEnv } from "../support/Harness.js"
import { call, disposeEnv, fails, killServers, ok, type Served, startStdio, taskFiles, textOf } from "../support/Mcp.js"

let env: TestEnv
let served: Served
let client: Client

beforeAll(async () => {
  env = makeTestEnv()
  served = await startStdio(env)
  client = served.client
})
afterAll(async () => {
  await killServers()
  await disposeEnv(env)
})

const taskDirs = () => Fs.readdirSync(env.home).filter((n) => n.startsWith("TASK-")).sort()

/** The InvalidInput error of an API call, with its field. */
const apiError = async (effect: Effect.Effect<unknown, unknown, Spawnkit.Services>, what: string) => {
  const exit = await Effect.runPromiseExit(effect.pipe(Effect.provide(env.layer())))
  if (Exit.isSuccess(exit)) throw new Error(`${what}: expected a failure, got ${JSON.stringify(exit.value)}`)
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) throw new Error(`${what}: expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  expect(error.value, what).toBeInstanceOf(Spawnkit.InvalidInput)
  return error.value as Spawnkit.InvalidInput
}

/** Fail a tool call with InvalidInput naming `field` (the JSON details of the error text). */
const refusedNaming = async (name: string, args: Record<string, unknown>, field: string, what: string) => {
  const text = await fails(client, name, args, "InvalidInput")
  expect(text, what).toContain(`"field":"${field}"`)
  return text
}

describe("task text", () => {
  it("create_real_task refuses oversized, NUL, blank and lone-surrogate values naming the field, creating nothing", async () => {
    const before = taskDirs()
    const lists = (item: string, n = 100) => Array.from({ length: n }, () => item)
    const cases: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
      ["description of 10,001 characters", { description: "x".repeat(10_001) }, "description"],
      ["empty description", { description: "" }, "description"],
      ["blank description", { description: " \n\t " }, "description"],
      ["NUL in the description", { description: "before\0after" }, "description"],
      ["lone high surrogate in the description", { description: "a\uD800b" }, "description"],
      ["lone low surrogate in the description", { description: "\uDC00" }, "description"],
      [
        "8 MiB background_context",
        { description: "d", background_context: "x".repeat(8 * 1024 * 1024) },
        "background_context"
      ],
      [
        "background_context of 65,537 characters",
        { description: "d", background_context: "x".repeat(65_537) },
        "background_context"
      ],
      ["NUL in conversation_history", { description: "d", conversation_history: "a\0b" }, "conversation_history"],
      [
        "101 expected_deliverables",
        { description: "d", expected_deliverables: lists("x", 101) },
        "expected_deliverables"
      ],
      [
        "a success criterion of 2,001 characters",
        { description: "d", success_criteria: ["ok", "x".repeat(2_001)] },
        "success_criteria.1"
      ],
      ["a blank constraint", { description: "d", constraints: ["fine", "   "] }, "constraints.1"],
      [
        "a lone surrogate in relevant_files",
        { description: "d", relevant_files: ["\uDFFFsrc/a.ts"] },
        "relevant_files.0"
      ],
      [
        "a context of 270 KB in all, each field within its own bound",
        {
          description: "d",
          background_context: "b".repeat(60_000),
          conversation_history: "c".repeat(60_000),
          expected_deliverables: lists("e".repeat(1_500))
        },
        "task_context"
      ]
    ]
    for (const [what, args, field] of cases) await refusedNaming("create_real_task", args, field, what)
    expect(taskDirs()).toEqual(before)

    // Within every bound (each at its maximum) the task is created, and its context stored as given.
    const context = {
      background_context: "b".repeat(65_536),
      expected_deliverables: lists("e".repeat(1_000)),
      constraints: ["\u65e5\u672c \ud83d\ude42"]
    }
    const created = await ok(client, "create_real_task", { description: "d".repeat(10_000), ...context })
    expect(readRegistryFile(env.home, created.task_id).task_context).toEqual(context)
    expect(taskDirs()).toEqual([...before, created.task_id].sort())
  })

  it("spawnkit task create and Spawnkit.createTask refuse the same, creating nothing", async () => {
    const before = taskDirs()
    for (const description of [" \t ", "x".repeat(10_001)]) {
      const out = cli(env, ["task", "create", "--description", description, "--json"])
      expect(out.status, out.stdout + out.stderr).not.toBe(0)
      const error = JSON.parse(out.stdout).error
      expect(error.tag).toBe("InvalidInput")
      expect(error.message).toMatch(/^Invalid description: /)
    }
    const api: ReadonlyArray<readonly [unknown, string]> = [
      [{ description: "a\0b" }, "description"],
      [{ description: "\uD83D" }, "description"],
      [
        { description: "d", task_context: { background_context: "x".repeat(8 * 1024 * 1024) } },
        "task_context.background_context"
      ],
      [
        { description: "d", task_context: { expected_deliverables: ["ok", ""] } },
        "task_context.expected_deliverables.1"
      ],
      [{ description: "d", task_context: { anything: "else" } }, "task_context.anything"],
      [{ description: "d", working_directory: "/" + "a".repeat(5_000) }, "working_directory"]
    ]
    for (const [input, field] of api) {
      const error = await apiError(Spawnkit.createTask(input), field)
      expect(error.field, field).toBe(field)
    }
    expect(taskDirs()).toEqual(before)
  })

  it("the listed input schemas carry the bounds", async () => {
    const { tools } = await client.listTools()
    const props = (name: string) => tools.find((t) => t.name === name)!.inputSchema.properties as Record<string, any>
    const create = props("create_real_task")
    expect(create["description"]).toMatchObject({ type: "string", minLength: 1, maxLength: 10_000 })
    for (const text of ["description", "background_context", "conversation_history"]) {
      expect(create[text].description, text).toContain("not blank, no NUL, no lone surrogates")
    }
    expect(create["background_context"]).toMatchObject({ type: "string", minLength: 1, maxLength: 65_536 })
    expect(create["conversation_history"]).toMatchObject({ maxLength: 65_536 })
    for (const list of ["expected_deliverables", "success_criteria", "constraints", "relevant_files"]) {
      expect(create[list], list).toMatchObject({
        type: "array",
        maxItems: 100,
        items: { type: "string", maxLength: 2_000 }
      })
    }
    expect(create["client_cwd"]).toMatchObject({ maxLength: 4_096 })
    expect(create["max_concurrent"]).toMatchObject({ type: "integer", minimum: 1, maximum: 10_000 })
    expect(create["max_agents"]).toMatchObject({ minimum: 1, maximum: 1_000_000 })
    expect(create["max_depth"]).toMatchObject({ minimum: 1, maximum: 100 })
    expect(create["timeout_seconds"]).toMatchObject({ minimum: 1, maximum: 2_592_000 })
    expect(create["stall_timeout_seconds"]).toMatchObject({ minimum: 1, maximum: 2_592_000 })
    expect(tools.find((t) => t.name === "create_real_task")!.description).toContain("262144 bytes")
    for (const spawnTool of ["deploy_headless_agent", "spawn_child_agent"]) {
      expect(props(spawnTool)["timeout_seconds"], spawnTool).toMatchObject({ minimum: 1, maximum: 2_592_000 })
      expect(props(spawnTool)["stall_timeout_seconds"], spawnTool).toMatchObject({ minimum: 1, maximum: 2_592_000 })
    }
    expect(props("get_agent_output")["tail"]).toMatchObject({ type: "integer", minimum: 1, maximum: 5_000 })
    expect(props("get_agent_output")["max_bytes"]).toMatchObject({ minimum: 1, maximum: 4 * 1024 * 1024 })
    expect(props("get_agent_output")["filter"]).toMatchObject({ maxLength: 500 })
    expect(props("update_agent_progress")["progress"]).toMatchObject({ minimum: 0, maximum: 100 })
    expect(props("get_real_task_status")["recent"]).toMatchObject({ minimum: 0, maximum: 100 })
    for (const none of ["list_tasks", "get_global_status"]) {
      expect(tools.find((t) => t.name === none)!.inputSchema, none).toMatchObject({
        type: "object",
        additionalProperties: false
      })
    }
  })
})

describe("get_real_task_status reads a bounded amount", () => {
  it("recent: 0 returns no report, recent: 1 the last one", async () => {
    const { task_id } = await ok(client, "create_real_task", { description: "recent" })
    const agent = await ok(client, "deploy_headless_agent", { task_id, agent_type: "reporter", prompt: "p" })
    for (const message of ["first", "second"]) {
      await ok(client, "update_agent_progress", { task_id, agent_id: agent.agent_id, status: "working", message })
    }
    expect((await ok(client, "get_real_task_status", { task_id, recent: 0 })).recent_reports).toEqual({})
    const one = await ok(client, "get_real_task_status", { task_id, recent: 1 })
    expect(one.recent_reports[agent.agent_id].progress.map((p: any) => p.message)).toEqual(["second"])
  })

  it("only the tail of each report log, and only for the 50 most recently updated agents", async () => {
    const { task_id } = await ok(client, "create_real_task", { description: "many agents" })
    const live = await ok(client, "deploy_headless_agent", { task_id, agent_type: "live", prompt: "p" })
    // 200 progress entries of about 1 KB: the last 64 KiB of the log hold about 60 of them.
    const line = (i: number) =>
      JSON.stringify({ status: "working", message: `m${i} ${"x".repeat(1_000)}`, progress: 1 })
    Fs.mkdirSync(NodePath.dirname(taskFiles(env.home, task_id, live.agent_id).progress), { recursive: true })
    Fs.appendFileSync(
      taskFiles(env.home, task_id, live.agent_id).progress,
      Array.from({ length: 200 }, (_, i) => line(i) + "\n").join("")
    )
    // 60 ended agents from an older run, each with a report, updated one second apart, all before the live agent.
    const registryFile = NodePath.join(env.home, task_id, "AGENT_REGISTRY.json")
    const registry = readRegistryFile(env.home, task_id)
    const liveRecord = registry.agents[0]
    const old = Array.from({ length: 60 }, (_, i) => {
      const id = `old${String(i).padStart(2, "0")}-000000-00000000`
      const at = new Date(Date.parse("2026-01-01T00:00:00.000Z") + i * 1_000).toISOString()
      Fs.writeFileSync(taskFiles(env.home, task_id, id).progress, line(i) + "\n")
      const { secret_sha256: _secret, ...rest } = liveRecord
      return {
        ...rest,
        id,
        type: `old${i}`,
        tmux_session: `agent_${id}`,
        status: "completed",
        started_at: at,
        last_update: at,
        completed_at: at
      }
    })
    Fs.writeFileSync(registryFile, JSON.stringify({ ...registry, agents: [...old, liveRecord] }, null, 2))

    const status = await ok(client, "get_real_task_status", { task_id, recent: 100 })
    expect(status.agents).toHaveLength(61)
    const reported = Object.keys(status.recent_reports).sort()
    expect(reported).toEqual([live.agent_id, ...old.slice(11).map((a) => a.id)].sort())
    const entries = status.recent_reports[live.agent_id].progress
    expect(entries.length).toBeLessThan(70)
    expect(entries.length).toBeGreaterThan(50)
    expect(entries[entries.length - 1].message).toMatch(/^m199 /)
  })
})

describe("arguments and ids", () => {
  it("list_tasks and get_global_status refuse extra arguments, as the other tools do", async () => {
    expect(await refusedNaming("list_tasks", { everything: true }, "everything", "list_tasks")).toContain(
      "excess property"
    )
    expect(await refusedNaming("get_global_status", { verbose: 1 }, "verbose", "get_global_status")).toContain(
      "this tool takes no arguments"
    )
    expect((await call(client, "list_tasks", {})).isError ?? false).toBe(false)
  })

  it("an invalid id is InvalidInput naming task_id or agent_id (MCP and API)", async () => {
    const { task_id } = await ok(client, "create_real_task", { description: "ids" })
    await refusedNaming("get_real_task_status", { task_id: "../escape" }, "task_id", "status")
    await refusedNaming("get_agent_output", { task_id, agent_id: "a/b" }, "agent_id", "output")
    await refusedNaming("kill_real_agent", { task_id, agent_id: "$(touch x)" }, "agent_id", "kill")
    expect((await apiError(Spawnkit.kill("../escape", "a"), "kill task")).field).toBe("task_id")
    expect((await apiError(Spawnkit.kill(task_id, "a b"), "kill agent")).field).toBe("agent_id")
    expect((await apiError(Spawnkit.status("TASK-a/b"), "status")).field).toBe("task_id")
    expect((await apiError(Spawnkit.agentOutput(task_id, "a\nb"), "output")).field).toBe("agent_id")
  })

  it("an agent type starting with '-' is refused; an older agent whose id starts with '-' stays addressable", async () => {
    const { task_id } = await ok(client, "create_real_task", { description: "dashes" })
    const refused = await refusedNaming(
      "deploy_headless_agent",
      { task_id, agent_type: "-foo", prompt: "p" },
      "agent_type",
      "mcp"
    )
    expect(refused).toContain("starting with a letter or digit")
    const viaCli = cli(env, ["spawn", "--task", task_id, "--type=-foo", "--prompt", "p", "--json"])
    expect(viaCli.status).not.toBe(0)
    expect(JSON.parse(viaCli.stdout).error).toMatchObject({ tag: "InvalidInput" })
    expect(JSON.parse(viaCli.stdout).error.message).toContain("starting with a letter or digit")
    expect((await apiError(Spawnkit.spawn({ taskId: task_id, agentType: "-foo", prompt: "p" }), "api")).field).toBe(
      "agentType"
    )
    expect(readRegistryFile(env.home, task_id).agents).toEqual([])

    // A registry written before the rule, holding an ended agent of type "-old".
    const agent = await ok(client, "deploy_headless_agent", { task_id, agent_type: "w", prompt: "p" })
    const registry = readRegistryFile(env.home, task_id)
    const id = "-old-000000-00000000"
    const { secret_sha256: _secret, ...rest } = registry.agents[0]
    const oldAgent = { ...rest, id, type: "-old", tmux_session: `agent_${id}`, status: "completed" }
    Fs.writeFileSync(
      NodePath.join(env.home, task_id, "AGENT_REGISTRY.json"),
      JSON.stringify({ ...registry, agents: [...registry.agents, oldAgent] })
    )
    Fs.writeFileSync(taskFiles(env.home, task_id, id).log, "old output\n")
    expect(await ok(client, "get_agent_output", { task_id, agent_id: id })).toMatchObject({
      agent_id: id,
      output: "old output"
    })
    const output = cli(env, ["output", "--task", task_id, `--agent=${id}`, "--json"])
    expect(output.status, output.stderr).toBe(0)
    expect(JSON.parse(output.stdout)).toMatchObject({ agent_id: id, status: "completed", output: "old output" })
    expect((await ok(client, "get_real_task_status", { task_id })).agents.map((a: any) => a.id)).toEqual([
      agent.agent_id,
      id
    ])
    expect(textOf(await call(client, "kill_real_agent", { task_id, agent_id: id }))).toContain("\"killed\": false")
  })
})
