/**
 * Budgets through the MCP tools, end to end over stdio and Streamable HTTP with the SDK's own Client: a task created
 * with `max_tokens` and agents deployed with a subtree budget are metered by the server's own supervisor; a spent
 * budget stops its agents (`wait_for_agents` sees them end `over_budget`), `get_real_task_status` shows the task's
 * spend against its cap and each agent's usage, `get_global_status` the spend, and the next deploy is refused with
 * BudgetExceeded. Needs `npm run build` first.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as NodePath from "node:path"
import { makeTestEnv, type TestEnv } from "../support/Harness.js"
import {
  call,
  disposeEnv,
  fails,
  killServers,
  type Kind,
  ok,
  type Served,
  startServer,
  within
} from "../support/Mcp.js"

const USAGE_AGENT = NodePath.resolve(import.meta.dirname, "..", "..", "bin", "usage-agent.mjs")
const KINDS: ReadonlyArray<Kind> = ["stdio", "http"]

const servers: Array<Served> = []
const envs: Array<TestEnv> = []
afterEach(async () => {
  await killServers(servers.splice(0))
  for (const env of envs.splice(0)) await disposeEnv(env)
})

const serve = async (kind: Kind) => {
  const env = makeTestEnv(`${process.execPath} ${USAGE_AGENT} --every 100 --output 1000`)
  envs.push(env)
  const served = await startServer(kind, env, { SPAWNKIT_AGENT_FORMAT: "claude" })
  servers.push(served)
  return served.client
}

describe.each(KINDS)("budgets over %s", (kind) => {
  it("a subtree budget and a task budget stop their agents over_budget, and the next deploy is refused", async () => {
    const client = await serve(kind)
    const { task_id } = await ok(client, "create_real_task", { description: "budgeted", max_tokens: 8000 })
    const capped = await ok(client, "deploy_headless_agent", {
      task_id,
      agent_type: "capped",
      prompt: "spend",
      max_tokens: 3000
    })
    const free = await ok(client, "deploy_headless_agent", { task_id, agent_type: "free", prompt: "spend too" })
    const waited = await within(
      "both agents end",
      call(client, "wait_for_agents", {
        task_id,
        agent_ids: [capped.agent_id, free.agent_id],
        timeout_seconds: 120
      }, { timeout: 130_000 }),
      130_000
    )
    const agents = (waited.structuredContent as any).agents
    expect(agents.map((a: any) => a.status)).toEqual(["over_budget", "over_budget"])

    const status = await ok(client, "get_real_task_status", { task_id, recent: 0 })
    const record = (id: string) => status.agents.find((a: any) => a.id === id)
    // The capped agent stopped on its own budget, the other on the task's.
    expect(record(capped.agent_id).budget_stop).toMatchObject({ agent_id: capped.agent_id, kind: "tokens", cap: 3000 })
    expect(record(free.agent_id).budget_stop).toMatchObject({ kind: "tokens", cap: 8000 })
    expect(record(free.agent_id).budget_stop.agent_id).toBeUndefined()
    expect(record(capped.agent_id).usage.tokens.output).toBeGreaterThanOrEqual(3000)
    expect(status.spend).toMatchObject({ max_tokens: 8000, estimated: true })
    expect(status.spend.total_tokens).toBeGreaterThanOrEqual(8000)
    expect(status.spend.cost_usd).toBeGreaterThan(0)

    await fails(client, "deploy_headless_agent", { task_id, agent_type: "late", prompt: "more" }, "BudgetExceeded")
    const global = await ok(client, "get_global_status", {})
    expect(global.usage_limits).toEqual([])
  })
})
