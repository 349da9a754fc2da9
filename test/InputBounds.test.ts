/**
 * Bounds and validation of what callers store and ask for, through the real MCP server (stdio, SDK client), the
 * compiled CLI and the API: task text (description, context, lists) and the bounds the listed input schemas carry;
 * how much a status call reads; tools without arguments refuse extra ones; id errors name their field; agent types
 * start with a letter or digit, while agents of older registries whose ids start with `-` stay addressable.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Spawnkit from "../src/index.js"
import { cli, makeTestEnv, readRegistryFile, type TestEnv } from "./support/Harness.js"
import { call, disposeEnv, fails, killServers, ok, type Served, startStdio, taskFiles, textOf } from "./support/Mcp.js"

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

describe("arguments and ids", () => {
  it("list_tasks and get_global_status refuse extra arguments, as the other tools do", async () => {
    expect(await refusedNaming("list_tasks", { everything: true }, "everything", "list_tasks")).toContain("this tool takes no arguments")
    await refusedNaming("get_global_status", { verbose: 1 }, "verbose", "get_global_status")
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
    const refused = await refusedNaming("deploy_headless_agent", { task_id, agent_type: "-foo", prompt: "p" }, "agentType", "mcp")
    expect(refused).toContain("starting with a letter or digit")
    const viaCli = cli(env, ["spawn", "--task", task_id, "--type=-foo", "--prompt", "p", "--json"])
    expect(viaCli.status).not.toBe(0)
    expect(JSON.parse(viaCli.stdout).error).toMatchObject({ tag: "InvalidInput" })
    expect(JSON.parse(viaCli.stdout).error.message).toContain("starting with a letter or digit")
    expect((await apiError(Spawnkit.spawn({ taskId: task_id, agentType: "-foo", prompt: "p" }), "api")).field).toBe("agentType")
    expect(readRegistryFile(env.home, task_id).agents).toEqual([])

    // A registry written before the rule, holding an ended agent of type "-old".
    const agent = await ok(client, "deploy_headless_agent", { task_id, agent_type: "w", prompt: "p" })
    const registry = readRegistryFile(env.home, task_id)
    const id = "-old-000000-00000000"
    const { secret_sha256: _secret, ...rest } = registry.agents[0]
    const oldAgent = { ...rest, id, type: "-old", tmux_session: `agent_${id}`, status: "completed" }
    Fs.writeFileSync(NodePath.join(env.home, task_id, "AGENT_REGISTRY.json"), JSON.stringify({ ...registry, agents: [...registry.agents, oldAgent] }))
    Fs.writeFileSync(taskFiles(env.home, task_id, id).log, "old output\n")
    expect(await ok(client, "get_agent_output", { task_id, agent_id: id })).toMatchObject({ agent_id: id, output: "old output" })
    const output = cli(env, ["output", "--task", task_id, `--agent=${id}`, "--json"])
    expect(output.status, output.stderr).toBe(0)
    expect(JSON.parse(output.stdout)).toMatchObject({ agent_id: id, status: "completed", output: "old output" })
    expect((await ok(client, "get_real_task_status", { task_id })).agents.map((a: any) => a.id)).toEqual([agent.agent_id, id])
    expect(textOf(await call(client, "kill_real_agent", { task_id, agent_id: id }))).toContain('"killed": false')
  })
})
