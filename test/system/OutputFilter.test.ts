/**
 * Output filters (`get_agent_output`'s `filter`, `spawnkit output --filter`): RE2 syntax compiled by re2js and matched
 * in a worker thread under a deadline. The filter's worker thread (from dist/) keeping matching lines and stopping at
 * its deadline, then the real MCP server over HTTP: a catastrophic pattern over a 4 MiB log of a real agent while
 * another client is served. The pattern checks are unit-tested in test/unit/reports/LineFilter.test.ts.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Spawnkit from "../../src/index.js"
import { makeTestEnv, type TestEnv } from "../support/Harness.js"
import { connectHttp, disposeEnv, killServers, ok, startHttp, taskFiles } from "../support/Mcp.js"

/** Run a filter over `lines` with a deadline; the Exit. */
const runFilter = (pattern: string, lines: ReadonlyArray<string>, deadlineMs = 10_000) =>
  Effect.runPromiseExit(
    Effect.scoped(Effect.flatMap(Spawnkit.makeLineFilter(pattern, deadlineMs), (f) => f.matching(lines)))
  )

const invalidInputOf = (exit: Exit.Exit<unknown, unknown>, what: string): Spawnkit.InvalidInput => {
  if (Exit.isSuccess(exit)) throw new Error(`${what}: expected InvalidInput, got ${JSON.stringify(exit.value)}`)
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) throw new Error(`${what}: expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  expect(error.value, what).toBeInstanceOf(Spawnkit.InvalidInput)
  return error.value as Spawnkit.InvalidInput
}

describe("filter matching in a worker thread", () => {
  it("keeps the lines an RE2 pattern matches, in order", async () => {
    const lines = ["MARKER one", "other", "ERROR 42 in parser", "error 7", "MARK", "no match here"]
    const exit = await runFilter("^MARK|(?i:error) [0-9]+", lines)
    if (Exit.isFailure(exit)) throw new Error(Cause.pretty(exit.cause))
    expect(exit.value).toEqual(["MARKER one", "ERROR 42 in parser", "error 7", "MARK"])
  })

  it("stops a pattern whose matching takes longer than the deadline and refuses it; this thread runs on meanwhile", async () => {
    // Linear in the text, but in proportion to the compiled pattern too: seconds per 10 KB line here.
    let seed = 7
    const randomAB = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed & 1 ? "a" : "b"
    }
    const lines = Array.from({ length: 20 }, () => Array.from({ length: 10 * 1024 }, randomAB).join("") + "1")
    let ticks = 0
    const timer = setInterval(() => ticks++, 10)
    const started = Date.now()
    const exit = await runFilter("(a|b|ab|ba){1,1000}\\d", lines, 1_000).finally(() => clearInterval(timer))
    const elapsed = Date.now() - started
    console.log(`costly filter refused after ${elapsed} ms; this thread's 10 ms timer ticked ${ticks} times meanwhile`)
    const error = invalidInputOf(exit, "costly pattern")
    expect(error.field).toBe("filter")
    expect(error.reason).toContain("longer than 1000 ms")
    // Had the match run on this thread, the timer could not have ticked before the refusal.
    expect(ticks).toBeGreaterThan(0)
  })
})

describe("a catastrophic filter over a large log, through the MCP server", () => {
  let env: TestEnv | undefined
  afterEach(async () => {
    await killServers()
    await disposeEnv(env)
    env = undefined
  })

  it("is answered (linear time) while another client's call is answered meanwhile", async () => {
    env = makeTestEnv()
    const served = await startHttp(env)
    const first = served.client
    const second = await connectHttp(served.url!, { token: served.token })
    const { task_id } = await ok(first, "create_real_task", { description: "catastrophic filter" })
    const agent = await ok(first, "deploy_headless_agent", { task_id, agent_type: "writer", prompt: "p" })
    // 4 MiB of lines that make a backtracking engine explode (10 KB of 'a' then '!'), and three that match.
    const bad = "a".repeat(10 * 1024 - 1) + "!\n"
    const log = taskFiles(env.home, task_id, agent.agent_id).log
    const lines = Array.from({ length: 400 }, (_, i) => (i % 150 === 0 ? "aaaa\n" : bad))
    Fs.appendFileSync(log, lines.join(""))
    expect(Fs.statSync(log).size).toBeGreaterThan(4_000_000)

    const t0 = Date.now()
    const filtered = ok(first, "get_agent_output", {
      task_id,
      agent_id: agent.agent_id,
      filter: "^(a+)+$",
      max_bytes: 4 * 1024 * 1024,
      tail: 5000
    }).then((r) => ({ r, ms: Date.now() - t0 }))
    const t1 = Date.now()
    const global = await ok(second, "get_global_status", {})
    const globalMs = Date.now() - t1
    const { r: output, ms: filterMs } = await filtered
    console.log(`get_global_status answered in ${globalMs} ms; the catastrophic filter over 4 MiB in ${filterMs} ms`)
    expect(global).toMatchObject({ active_agents: 1 })
    // A backtracking engine never finishes a line here; the bound is far above what was measured (under 1 s).
    expect(globalMs).toBeLessThan(10_000)
    expect(output).toMatchObject({ agent_id: agent.agent_id, lines: 3, output: "aaaa\naaaa\naaaa" })
    await second.close()
  }, 120_000)
})
