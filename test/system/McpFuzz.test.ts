/**
 * Hostile and random inputs for every field of every MCP tool, through a real stdio server: each call starts from
 * arguments that would succeed and breaks one field (or two, at random): a value of the wrong JSON type, a string
 * over its maxLength or under its minLength, a number outside its bounds or not an integer, a literal outside its
 * enum, a hostile id (traversal, shell syntax, NUL, a flag), a missing required field, an extra field, or arguments
 * that are not an object at all. Every call must be refused with a typed error (an `InvalidInput` naming the broken
 * field, or a not-found/not-permitted error for a well-formed id that names nothing; arguments that are not an object
 * at all are refused by the protocol layer with a JSON-RPC error), and afterwards the server still
 * answers, and the home's files, the registry and tmux's sessions are exactly as they were.
 *
 * The fields and their bounds are read from the server's own `tools/list`, so a tool or field added later is fuzzed
 * without touching this file. Random choices come from a seeded generator; the seed is printed
 * (SPAWNKIT_FUZZ_SEED replays one).
 */
import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { afterEach } from "vitest"
import { liveSessions, testEnvs } from "../support/Harness.js"
import { call, killServers, ok, startStdio, textOf } from "../support/Mcp.js"

const newEnv = testEnvs()
afterEach(async () => {
  await killServers()
})

const SEED = Number(process.env["SPAWNKIT_FUZZ_SEED"] ?? Math.floor(Math.random() * 2 ** 31))
/** A small seeded generator (mulberry32), so a failing run can be replayed. */
const rngFrom = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface JsonSchema {
  readonly type?: string | ReadonlyArray<string>
  readonly enum?: ReadonlyArray<unknown>
  readonly anyOf?: ReadonlyArray<JsonSchema>
  readonly minLength?: number
  readonly maxLength?: number
  readonly minimum?: number
  readonly maximum?: number
  readonly maxItems?: number
  readonly items?: JsonSchema
  readonly properties?: Readonly<Record<string, JsonSchema>>
  readonly required?: ReadonlyArray<string>
}

const typeOf = (s: JsonSchema): string | undefined =>
  typeof s.type === "string"
    ? s.type
    : Array.isArray(s.type)
    ? s.type[0]
    : s.enum !== undefined
    ? "enum"
    : s.anyOf?.every((x) => x.enum !== undefined || (x as { const?: unknown }).const !== undefined)
    ? "enum"
    : s.anyOf !== undefined
    ? typeOf(s.anyOf[0]!)
    : undefined

/** Fields whose values are ids: hostile strings there must be refused, not stored or used. */
const ID_FIELDS = new Set([
  "task_id",
  "agent_id",
  "parent",
  "parent_agent_id",
  "agent_type",
  "child_agent_type",
  "cursor"
])
const HOSTILE_IDS = [
  "../x",
  "../../etc/passwd",
  "TASK-../../outside",
  "/abs/path",
  "a;b",
  "$(touch CANARY)",
  "`id`",
  "a b",
  "nul\u0000byte",
  "-rf",
  "--help",
  "agent_x:0.0",
  "x".repeat(300),
  ""
]

/** Values that no field of this schema accepts. */
const invalidValues = (name: string, s: JsonSchema): ReadonlyArray<unknown> => {
  const type = typeOf(s)
  const out: Array<unknown> = []
  if (type === "string" || type === "enum") out.push(123, true, null, {}, [])
  if (type === "integer" || type === "number") out.push("1", null, {}, true)
  if (type === "integer") out.push(1.5)
  if (type === "boolean") out.push("true", 1, null)
  if (type === "array") out.push("x", {}, 7, [123], [null])
  if (type === "object") out.push("x", [], 7, null)
  if (type === "enum") out.push("NOT_ONE_OF_THEM", "")
  if (s.maxLength !== undefined) out.push("y".repeat(s.maxLength + 1))
  if (s.minLength !== undefined && s.minLength > 0) out.push("")
  if (s.minimum !== undefined) out.push(s.minimum - 1)
  if (s.maximum !== undefined) out.push(s.maximum + 1)
  if (s.maxItems !== undefined) out.push(Array.from({ length: s.maxItems + 1 }, () => "z"))
  if (type === "string" && ID_FIELDS.has(name)) out.push(...HOSTILE_IDS)
  return out
}

/** A tree's files with a digest of each (directories by kind). */
const tree = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const entry of Fs.readdirSync(d, { withFileTypes: true })) {
      const p = NodePath.join(d, entry.name)
      if (entry.isDirectory()) {
        out[p] = "dir"
        walk(p)
      } else {
        out[p] = createHash("sha256").update(Fs.readFileSync(p)).digest("hex")
      }
    }
  }
  walk(dir)
  return out
}

/** Errors a broken call may end with: a typed refusal, never a defect or a success. */
const REFUSALS = /^(InvalidInput|TaskNotFound|AgentNotFound|ParentNotFound|NotPermitted):/

describe("MCP tools under random and hostile arguments", () => {
  it("refuse every broken call with a typed error naming the field, and change nothing", async () => {
    const env = newEnv()
    const served = await startStdio(env, { SPAWNKIT_RECONCILE_INTERVAL: "0" })
    const client = served.client
    const task = await ok(client, "create_real_task", { description: "fuzz", max_concurrent: 5 })
    const agent = await ok(client, "deploy_headless_agent", {
      task_id: task.task_id,
      agent_type: "lead",
      prompt: "stay"
    })
    const tools = (await client.listTools()).tools

    // Arguments that succeed, one set per tool, on the task and agent above.
    const valid: Record<string, Record<string, unknown>> = {
      create_real_task: { description: "d", max_concurrent: 2 },
      deploy_headless_agent: { task_id: task.task_id, agent_type: "w", prompt: "p" },
      spawn_child_agent: {
        task_id: task.task_id,
        parent_agent_id: agent.agent_id,
        child_agent_type: "c",
        child_prompt: "p"
      },
      get_real_task_status: { task_id: task.task_id },
      get_agent_output: { task_id: task.task_id, agent_id: agent.agent_id },
      kill_real_agent: { task_id: task.task_id, agent_id: agent.agent_id },
      update_agent_progress: { task_id: task.task_id, agent_id: agent.agent_id, status: "working", message: "m" },
      report_agent_finding: {
        task_id: task.task_id,
        agent_id: agent.agent_id,
        finding_type: "insight",
        severity: "low",
        message: "m"
      },
      list_tasks: {},
      get_global_status: {},
      resume_agent: { task_id: task.task_id, agent_id: agent.agent_id, prompt: "go on" },
      list_agent_branches: { task_id: task.task_id },
      wait_for_agents: { task_id: task.task_id, agent_ids: [agent.agent_id], timeout_seconds: 0 }
    }
    expect(tools.map((t) => t.name).sort()).toEqual(Object.keys(valid).sort())

    const rng = rngFrom(SEED)
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rng() * xs.length)]!
    const calls: Array<{ readonly tool: string; readonly args: unknown; readonly fields: ReadonlyArray<string> }> = []
    for (const tool of tools) {
      const base = valid[tool.name]!
      const schema = tool.inputSchema as JsonSchema
      const properties = Object.entries(schema.properties ?? {})
      for (const [field, fieldSchema] of properties) {
        for (const value of invalidValues(field, fieldSchema)) {
          calls.push({ tool: tool.name, args: { ...base, [field]: value }, fields: [field] })
        }
      }
      for (const field of schema.required ?? []) {
        const { [field]: _, ...rest } = base
        calls.push({ tool: tool.name, args: rest, fields: [field] })
      }
      calls.push({ tool: tool.name, args: { ...base, not_a_field: 1 }, fields: ["not_a_field"] })
      for (const junk of ["x", 7, [1, 2], null]) calls.push({ tool: tool.name, args: junk, fields: [] })
      // Two fields broken at once, at random.
      for (let i = 0; i < 10 && properties.length >= 2; i++) {
        const [a, as] = pick(properties)
        const [b, bs] = pick(properties)
        const va = invalidValues(a, as)
        const vb = invalidValues(b, bs)
        if (a === b || va.length === 0 || vb.length === 0) continue
        calls.push({ tool: tool.name, args: { ...base, [a]: pick(va), [b]: pick(vb) }, fields: [a, b] })
      }
    }

    const homeBefore = tree(env.home)
    const sessionsBefore = liveSessions(env.socket).sort()
    const tags: Record<string, number> = {}
    for (const c of calls) {
      const what = `${c.tool} ${JSON.stringify(c.args).slice(0, 300)} (seed ${SEED})`
      const outcome = await call(client, c.tool, c.args as Record<string, unknown>).then(
        (result) => ({ result }),
        (error: unknown) => ({ error })
      )
      if ("error" in outcome) {
        // The SDK checks a request's shape before any tool sees it: `arguments` must be an object.
        expect(
          typeof c.args === "object" && c.args !== null && !Array.isArray(c.args),
          `${what}: ${String(outcome.error)}`
        )
          .toBe(false)
        expect(String(outcome.error), what).toMatch(/MCP error -326\d\d/)
        tags["JSON-RPC error"] = (tags["JSON-RPC error"] ?? 0) + 1
        continue
      }
      const result = outcome.result
      const text = textOf(result)
      expect(result.isError, `${what} must be refused, got ${text.slice(0, 300)}`).toBe(true)
      expect(text, what).toMatch(REFUSALS)
      const tag = text.slice(0, text.indexOf(":"))
      tags[tag] = (tags[tag] ?? 0) + 1
      if (tag === "InvalidInput" && c.fields.length === 1) {
        expect(text, `${what}: the error names the field`).toContain(c.fields[0]!)
      }
    }
    console.log(
      `mcp fuzz: ${calls.length} broken calls over ${tools.length} tools, seed ${SEED}: ${JSON.stringify(tags)}`
    )

    // Nothing changed, and the server still serves.
    expect(tree(env.home)).toEqual(homeBefore)
    expect(liveSessions(env.socket).sort()).toEqual(sessionsBefore)
    expect((await client.listTools()).tools).toHaveLength(tools.length)
    const status = await ok(client, "get_real_task_status", { task_id: task.task_id })
    expect(status.agents.map((a: { id: string; status: string }) => [a.id, a.status])).toEqual([[
      agent.agent_id,
      "running"
    ]])
    expect(served.hasExited()).toBe(false)
  })
})
