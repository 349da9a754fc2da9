/**
 * Budgets and spend through the built CLI, as a user sees them: `task create` and `spawn` take `--max-tokens` /
 * `--max-cost-usd`, `spawnkit supervise` meters the agents' output and stops the capped task, `status` shows each
 * agent's spend and the task's against its budget, `usage` reports it per task, engine and type, and a spawn into the
 * spent task fails with BudgetExceeded (exit status 1, JSON with --json). A price file that does not decode stops
 * `supervise` with InvalidConfiguration (exit status 78) naming the variable.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { onTestFinished } from "vitest"
import { CLI, cli, liveSessions, stdoutJson, stopChild, type TestEnv, testEnvs, waitFor } from "../support/Harness.js"

const USAGE_AGENT = NodePath.resolve(import.meta.dirname, "..", "..", "bin", "usage-agent.mjs")
const newEnv = testEnvs()
const children: Array<ChildProcess> = []
afterEach(async () => {
  for (const child of children.splice(0)) await stopChild(child)
})

const FORMAT = { SPAWNKIT_AGENT_FORMAT: "claude" }

const supervise = (env: TestEnv, extra: Record<string, string> = {}) => {
  const child = spawn(process.execPath, [CLI, "supervise"], {
    env: { ...process.env, ...env.env, ...FORMAT, ...extra },
    stdio: "ignore"
  })
  children.push(child)
  return child
}

describe("budgets and usage from the command line", () => {
  it("caps a task, meters and stops it under supervise, shows the spend, and refuses the next spawn", async () => {
    // The agents spend once both are spawned (a go file): under load the first could otherwise spend the whole cap
    // before the second spawn is admitted, and that spawn would rightly be refused.
    const go = NodePath.join(Os.tmpdir(), `usage-go-${process.pid}-${Date.now()}`)
    const env = newEnv(`${process.execPath} ${USAGE_AGENT} --every 100 --output 1000 --go ${go}`)
    supervise(env)
    const created = cli(env, ["task", "create", "--description", "capped", "--max-tokens", "6000", "--json"])
    expect(created.status).toBe(0)
    const taskId = stdoutJson(created).task_id
    const spawned = ["one", "two"].map((type) =>
      cli(env, ["spawn", "--task", taskId, "--type", type, "--prompt", `work ${type}`, "--json"], FORMAT)
    )
    for (const s of spawned) expect(s.status, s.stdout + s.stderr).toBe(0)
    Fs.writeFileSync(go, "")
    onTestFinished(() => Fs.rmSync(go, { force: true }))
    await waitFor("the task over budget", () => {
      const task = stdoutJson(cli(env, ["status", "--task", taskId, "--json"]))
      return task.agents.every((a: any) => a.status === "over_budget")
    })
    await waitFor("no session left", () => liveSessions(env.socket).length === 0)

    const text = cli(env, ["status", "--task", taskId]).stdout
    expect(text).toMatch(/spent [\d,]+ tokens {2}~\$0\.\d+ {2}of budget 6,000 tokens/)
    expect(text).toMatch(/\[over_budget\] {2}one .* tokens/)

    const usage = stdoutJson(cli(env, ["usage", "--task", taskId, "--json"]))
    expect(usage.rows.map((r: any) => [r.engine, r.agent_type, r.agents])).toEqual([["custom", "one", 1], [
      "custom",
      "two",
      1
    ]])
    expect(usage.total.total_tokens).toBeGreaterThanOrEqual(6000)
    expect(usage.total.tokens.output).toBe(usage.total.total_tokens)
    expect(usage.tasks[0]).toMatchObject({ task_id: taskId, max_tokens: 6000 })
    const table = cli(env, ["usage", "--task", taskId]).stdout
    expect(table).toContain("TASK")
    expect(table).toContain(`${taskId}: spent`)

    const refused = cli(env, ["spawn", "--task", taskId, "--type", "three", "--prompt", "more", "--json"], FORMAT)
    expect(refused.status).toBe(1)
    expect(stdoutJson(refused).error.tag).toBe("BudgetExceeded")
    expect(stdoutJson(refused).error.message).toContain(`The budget of task ${taskId} is spent`)
  })

  it("refuses a budget flag out of range, and a price file that does not decode, changing nothing", () => {
    const env = newEnv()
    const task = stdoutJson(cli(env, ["task", "create", "--description", "t", "--json"])).task_id
    const bad = cli(env, ["spawn", "--task", task, "--type", "w", "--prompt", "p", "--max-tokens", "0", "--json"])
    expect(bad.status).toBe(1)
    expect(stdoutJson(bad).error.tag).toBe("InvalidInput")
    expect(stdoutJson(bad).error.message).toContain("maxTokens")
    const negative = cli(env, ["task", "create", "--description", "t", "--max-cost-usd", "-1", "--json"])
    expect(stdoutJson(negative).error.tag).toBe("InvalidInput")
    const prices = NodePath.join(env.dir, "prices.json")
    Fs.writeFileSync(prices, JSON.stringify({ models: { "claude-x": { input: -1, output: 1 } } }))
    const supervisor = cli(env, ["supervise"], { SPAWNKIT_PRICES_FILE: prices })
    expect(supervisor.status).toBe(78)
    expect(supervisor.stderr).toContain("SPAWNKIT_PRICES_FILE")
    expect(supervisor.stderr).toContain("models.claude-x.input")
  })
})
