/**
 * Money as a resource, against real tmux, real agent processes and both registries: agents print usage the way Claude
 * Code's stream-json does (bin/usage-agent.mjs, a custom engine declared SPAWNKIT_AGENT_FORMAT=claude) and
 * the supervisor meters their logs as they grow.
 *
 * - A tree of 8 agents, each printing 1,000 output tokens every 200 ms under a task cap of 40,000 tokens (and the
 *   same in USD): every one is stopped and recorded over_budget with the figures, a new spawn is refused
 *   BudgetExceeded, nothing is left running. The stop latency after the crossing line and the overshoot are printed
 *   (the benchmark measures them; no test here holds a wall-clock budget).
 * - A subtree cap stops that subtree; its siblings keep running.
 * - A supervisor restarted mid-run records exactly the spend of the whole output (no line counted twice or lost).
 * - A rate-limit event walls its engine on this host: spawns on it are refused with retryAfterMs, others are not,
 *   and after the reset spawns are admitted again.
 * - Hostile output lines (a 10 MB line, truncated JSON, negative and absurd numbers, a lower repeat of a message, a
 *   result of another session) change nothing and stop nothing: the valid lines around them are counted exactly.
 *
 * Agents wait for a go file before printing usage, so a whole tree starts at once whatever the spawn speed.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { type Backend, BACKENDS, liveSessions, runIn, type TestEnv, testEnvs, waitFor } from "../support/Harness.js"

const USAGE_AGENT = NodePath.resolve(import.meta.dirname, "..", "..", "bin", "usage-agent.mjs")
/** Claude Sonnet's list price of an output token, in USD (the price table's default for the claude format). */
const SONNET_OUTPUT_USD = 15 / 1_000_000

const newEnv = testEnvs()
const running: Array<Fiber.Fiber<never, unknown>> = []
afterEach(async () => {
  for (const fiber of running.splice(0)) await Effect.runPromise(Fiber.interrupt(fiber))
})

/** An environment whose agents are usage agents with these options (`{dir}`: the test's directory), metered as Claude Code's output. */
const usageEnv = (options: ReadonlyArray<string>, backend: Backend = "file"): TestEnv => {
  const base = newEnv("sleep 600", backend)
  const go = NodePath.join(base.dir, "go")
  const command = [process.execPath, USAGE_AGENT, "--go", go, ...options.map((o) => o.replace("{dir}", base.dir))]
    .join(" ")
  return {
    ...base,
    layer: (overrides = {}, faults) =>
      base.layer({ agentCommand: Option.some(command), agentFormat: "claude", ...overrides }, faults)
  }
}
const letGo = (env: TestEnv) => Fs.writeFileSync(NodePath.join(env.dir, "go"), "")

const startSupervisor = (env: TestEnv) => {
  const fiber = Effect.runFork(
    Spawnkit.supervise({ reconcileEvery: Duration.zero }).pipe(Effect.provide(env.layer()))
  )
  running.push(fiber)
  return fiber
}

const spawnIn = (env: TestEnv, taskId: string, type: string, extra: Record<string, unknown> = {}) =>
  runIn(env, Spawnkit.spawn({ taskId, agentType: type, prompt: `${type} work`, ...extra })).then((a) => a.agent_id)

/** A tree of 8: two top-level agents with three children each. */
const spawnTree = async (env: TestEnv, taskId: string, rootBudget: Record<string, unknown> = {}) => {
  const a = await spawnIn(env, taskId, "lead-a", rootBudget)
  const b = await spawnIn(env, taskId, "lead-b")
  const aKids = [await spawnIn(env, taskId, "a1", { parent: a }), await spawnIn(env, taskId, "a2", { parent: a })]
  aKids.push(await spawnIn(env, taskId, "a3", { parent: a }))
  const bKids = [await spawnIn(env, taskId, "b1", { parent: b }), await spawnIn(env, taskId, "b2", { parent: b })]
  bKids.push(await spawnIn(env, taskId, "b3", { parent: b }))
  return { a, b, aSubtree: [a, ...aKids], bSubtree: [b, ...bKids] }
}

const agentsOf = (env: TestEnv, taskId: string): Array<any> => env.readTask(taskId).agents
const recordOf = (env: TestEnv, taskId: string, id: string) => agentsOf(env, taskId).find((a) => a.id === id)
const tokensOf = (agent: any): number =>
  agent.usage === undefined
    ? 0
    : agent.usage.tokens.input + agent.usage.tokens.output + agent.usage.tokens.cache_creation +
      agent.usage.tokens.cache_read

/** When the usage line that took the tree past `cap` output tokens was printed (each line carries its time). */
const crossingTime = (env: TestEnv, taskId: string, ids: ReadonlyArray<string>, cap: number, perLine: number) => {
  const times: Array<number> = []
  for (const id of ids) {
    const log = Fs.readFileSync(NodePath.join(env.home, taskId, "logs", `${id}.log`), "utf8")
    for (const line of log.split("\n")) {
      if (!line.startsWith("{\"type\":\"assistant\"")) continue
      times.push(JSON.parse(line).timestamp)
    }
  }
  times.sort((x, y) => x - y)
  return times[Math.ceil(cap / perLine) - 1]!
}

const spawnError = (env: TestEnv, taskId: string, extra: Record<string, unknown> = {}) =>
  runIn(env, Effect.flip(Spawnkit.spawn({ taskId, agentType: "late", prompt: "one more", ...extra })))

describe.each(BACKENDS)("budgets (%s registry)", (backend) => {
  for (const cap of [{ max_tokens: 40_000 }, { max_cost_usd: 40_000 * SONNET_OUTPUT_USD }]) {
    const kind = "max_tokens" in cap ? "tokens" : "cost_usd"
    it(`a tree over its task's ${kind} cap is stopped and recorded over_budget, an event says so, no more spawns`, async () => {
      const env = usageEnv(["--every", "200", "--output", "1000"], backend)
      startSupervisor(env)
      const task = await runIn(env, Spawnkit.createTask({ description: "capped", max_concurrent: 20, ...cap }))
      const tree = await spawnTree(env, task.task_id)
      const ids = [...tree.aSubtree, ...tree.bSubtree]
      letGo(env)
      const stopped = await waitFor("the whole tree over budget", () => {
        const agents = agentsOf(env, task.task_id)
        return agents.every((a) => a.status === "over_budget") && agents
      })
      for (const agent of stopped) {
        expect(agent.budget_stop).toMatchObject({ kind, cap: Object.values(cap)[0] })
        expect(agent.budget_stop.spent).toBeGreaterThanOrEqual(agent.budget_stop.cap)
        expect(agent.reason).toContain("over budget: the task's budget is spent")
      }
      const journal = await runIn(env, Stream.runCollect(Spawnkit.events({ taskId: task.task_id as Spawnkit.TaskId })))
      expect(journal.filter((e) => e.kind === "over_budget").map((e) => e.agent_id).sort()).toEqual([...ids].sort())
      await waitFor("no session left", () => liveSessions(env.socket).length === 0)
      const refused = await spawnError(env, task.task_id)
      expect(refused).toMatchObject({ _tag: "BudgetExceeded", kind, cap: Object.values(cap)[0] })
      // What the agents printed between the crossing and their end is still metered (the overshoot).
      await waitFor("the last lines metered", () => agentsOf(env, task.task_id).every((a) => a.usage?.complete))
      const spent = agentsOf(env, task.task_id).reduce((n, a) => n + tokensOf(a), 0)
      const crossing = crossingTime(env, task.task_id, ids, 40_000, 1000)
      const lastStop = Math.max(...stopped.map((a) => Date.parse(a.completed_at)))
      console.log(
        `[budget ${backend} ${kind}] stopped ${lastStop - crossing} ms after the crossing line; ` +
          `spent ${spent} tokens for a cap of 40000 (overshoot ${spent - 40_000})`
      )
      expect(spent).toBeGreaterThanOrEqual(40_000)
    })
  }
})

describe("budgets", () => {
  it("a subtree cap stops that subtree only; its siblings run on; a spawn under it is refused", async () => {
    const env = usageEnv(["--every", "200", "--output", "1000"])
    startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: "subtree cap", max_concurrent: 20 }))
    const tree = await spawnTree(env, task.task_id, { maxTokens: 12_000 })
    letGo(env)
    await waitFor(
      "the capped subtree over budget",
      () => tree.aSubtree.every((id) => recordOf(env, task.task_id, id).status === "over_budget")
    )
    for (const id of tree.aSubtree) {
      expect(recordOf(env, task.task_id, id).budget_stop).toMatchObject({ agent_id: tree.a, kind: "tokens" })
    }
    // Its siblings' tree runs on, and keeps spending.
    const before = tree.bSubtree.map((id) => tokensOf(recordOf(env, task.task_id, id)))
    await waitFor(
      "the sibling subtree still spending",
      () => tree.bSubtree.every((id, i) => tokensOf(recordOf(env, task.task_id, id)) > before[i]! + 1000)
    )
    for (const id of tree.bSubtree) expect(recordOf(env, task.task_id, id).status).toBe("running")
    expect(liveSessions(env.socket).sort()).toEqual(tree.bSubtree.map((id) => `agent_${id}`).sort())
    expect(await spawnError(env, task.task_id, { parent: tree.aSubtree[1] })).toMatchObject({
      _tag: "ParentNotActive"
    })
    await runIn(env, Spawnkit.kill(task.task_id, tree.b, "done", { cascade: true }))
  })

  it("a supervisor restarted mid-run records exactly what the whole output spent", async () => {
    const env = usageEnv(["--every", "40", "--output", "1000", "--count", "50"])
    const first = startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: "restart", max_concurrent: 20 }))
    const ids = [await spawnIn(env, task.task_id, "one"), await spawnIn(env, task.task_id, "two")]
    letGo(env)
    await waitFor("some usage recorded", () => ids.some((id) => tokensOf(recordOf(env, task.task_id, id)) > 0))
    await Effect.runPromise(Fiber.interrupt(first))
    const recorded = ids.map((id) => tokensOf(recordOf(env, task.task_id, id)))
    const logSize = (id: string) => Fs.statSync(NodePath.join(env.home, task.task_id, "logs", `${id}.log`)).size
    await waitFor(
      "output printed while no supervisor ran",
      () => ids.every((id) => logSize(id) > (recordOf(env, task.task_id, id).usage?.log_offset ?? 0))
    )
    expect(ids.map((id) => tokensOf(recordOf(env, task.task_id, id)))).toEqual(recorded)
    startSupervisor(env)
    const done = await waitFor("both ended and metered to the end", () => {
      const agents = agentsOf(env, task.task_id)
      return agents.every((a) => a.status === "completed" && a.usage?.complete) && agents
    })
    for (const agent of done) {
      expect(agent.usage.tokens).toEqual({ input: 0, output: 50_000, cache_creation: 0, cache_read: 0 })
      expect(agent.usage.cost_usd).toBeCloseTo(50_000 * SONNET_OUTPUT_USD, 9)
      expect(agent.usage.log_offset).toBe(logSize(agent.id))
    }
  })

  it("a log cut by its agent hides nothing written after the cut, and lowers nothing", async () => {
    const env = usageEnv([
      "--every",
      "10",
      "--output",
      "1000",
      "--count",
      "20",
      "--pause-after",
      "10",
      "--resume",
      "{dir}/resume"
    ])
    const resume = NodePath.join(env.dir, "resume")
    startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: "cut", max_concurrent: 20 }))
    const id = await spawnIn(env, task.task_id, "cutter")
    letGo(env)
    await waitFor("the first ten messages metered", () => tokensOf(recordOf(env, task.task_id, id)) === 10_000)
    Fs.truncateSync(NodePath.join(env.home, task.task_id, "logs", `${id}.log`), 0)
    Fs.writeFileSync(resume, "")
    const agent = await waitFor("ended and metered to the end", () => {
      const a = recordOf(env, task.task_id, id)
      return a.status === "completed" && a.usage?.complete && a
    })
    expect(agent.usage.tokens.output).toBe(20_000)
    expect(agent.usage.truncations).toBe(1)
  })

  it("hostile output lines change nothing: the valid lines around them are counted exactly", async () => {
    const env = usageEnv(["--every", "20", "--output", "1000", "--count", "3", "--hostile"])
    startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: "hostile", max_concurrent: 20 }))
    const id = await spawnIn(env, task.task_id, "hostile")
    letGo(env)
    const agent = await waitFor("ended and metered to the end", () => {
      const a = recordOf(env, task.task_id, id)
      return a.status === "completed" && a.usage?.complete && a
    })
    // 3 messages of 1,000 output tokens, and one repeated message counted once at its highest (500).
    expect(agent.usage.tokens).toEqual({ input: 0, output: 3500, cache_creation: 0, cache_read: 0 })
    expect(agent.usage.cost_usd).toBeCloseTo(3500 * SONNET_OUTPUT_USD, 9)
    expect(agent.usage.reported_cost_usd ?? 0).toBeLessThan(1)
    expect(agent.usage.session_id).toBe(id)
  })
})

/** Each CLI's fixture, the format it is metered as, and the tokens it holds (worked out by hand: test/unit/metering). */
const REPLAYS = [
  ["claude-stream.jsonl", "claude", { input: 413, output: 470, cache_creation: 2500, cache_read: 22000 }],
  ["codex-exec.jsonl", "codex", { input: 1206, output: 310, cache_creation: 0, cache_read: 48896 }],
  ["gemini-stream.jsonl", "gemini", { input: 4000, output: 2000, cache_creation: 0, cache_read: 12000 }]
] as const

describe("each CLI's output, replayed by a custom-engine agent at its pace", () => {
  it.each(REPLAYS)("%s metered as %s output gives its tokens", async (file, format, tokens) => {
    const fixture = NodePath.resolve(import.meta.dirname, "..", "fixtures", "agent-output", file)
    const base = usageEnv(["--replay", fixture, "--every", "30"])
    const env: TestEnv = {
      ...base,
      layer: (overrides = {}, faults) => base.layer({ agentFormat: format, ...overrides }, faults)
    }
    startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: `replay ${file}`, max_concurrent: 20 }))
    const id = await spawnIn(env, task.task_id, "replay")
    letGo(env)
    const agent = await waitFor("ended and metered to the end", () => {
      const a = recordOf(env, task.task_id, id)
      return a.status === "completed" && a.usage?.complete && a
    })
    expect(agent.output_format).toBe(format)
    expect(agent.usage.tokens).toEqual(tokens)
    expect(agent.usage.cost_usd).toBeGreaterThan(0)
  })
})

describe("usage limits", () => {
  it("a rate-limit event walls its engine on this host until the reset; other engines are admitted", async () => {
    const env = usageEnv(["--rate-limit-in", "30", "--count", "1", "--every", "10"])
    startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: "walled", max_concurrent: 20 }))
    const hitAt = Date.now()
    await spawnIn(env, task.task_id, "limited")
    letGo(env)
    await waitFor("the wall up", () => Fs.existsSync(NodePath.join(env.home, ".spawnkit-usage-limits.jsonl")))
    const error: any = await spawnError(env, task.task_id, { engine: "custom" })
    expect(error._tag).toBe("UsageLimited")
    expect(error.engine).toBe("custom")
    const left = 30_000 - (Date.now() - hitAt)
    expect(error.retryAfterMs).toBeLessThanOrEqual(30_000)
    expect(error.retryAfterMs).toBeGreaterThan(left - 2000)
    expect(Date.parse(error.resetsAt)).toBeGreaterThan(Date.now())
    // Another engine is not behind the wall: its spawn gets past admission (whatever its CLI then does).
    const other: any = await runIn(
      env,
      Effect.result(Spawnkit.spawn({ taskId: task.task_id, agentType: "other", prompt: "p", engine: "gemini" }))
    )
    expect(other._tag === "Success" || other.failure._tag !== "UsageLimited").toBe(true)
    // The record of the agent that hit it says so.
    const limited = agentsOf(env, task.task_id).find((a) => a.type === "limited")
    expect(Date.parse(limited.usage.limit.resets_at)).toBeGreaterThan(Date.now())
  })

  it("after the reset, spawns on the engine are admitted again", async () => {
    const env = usageEnv(["--rate-limit-in", "3", "--count", "1", "--every", "10"])
    startSupervisor(env)
    const task = await runIn(env, Spawnkit.createTask({ description: "walled briefly", max_concurrent: 20 }))
    await spawnIn(env, task.task_id, "limited")
    letGo(env)
    await waitFor("the wall up", () => Fs.existsSync(NodePath.join(env.home, ".spawnkit-usage-limits.jsonl")))
    expect((await spawnError(env, task.task_id))._tag).toBe("UsageLimited")
    let admitted: string | undefined
    for (let n = 0; admitted === undefined; n++) {
      const result: any = await runIn(
        env,
        Effect.result(Spawnkit.spawn({ taskId: task.task_id, agentType: "after", prompt: `after ${n}` }))
      )
      if (result._tag === "Success") admitted = result.success.agent_id
      else {
        expect(result.failure._tag).toBe("UsageLimited")
        await new Promise((r) => setTimeout(r, Math.min(result.failure.retryAfterMs, 500)))
      }
    }
    expect(recordOf(env, task.task_id, admitted).status).toBe("running")
  })
})
