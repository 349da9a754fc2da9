/**
 * The README's table of MCP tools against the tool definitions (pure: the tool list is imported, no server runs):
 * the same tools, each with the hints the code gives it; and every listed tool carries input and output JSON Schemas
 * derived from its Effect Schemas, the domain's bounds and patterns included.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { listedTool } from "../../../src/mcp/Server.js"
import { tools } from "../../../src/mcp/tools/index.js"

const README = Fs.readFileSync(NodePath.join(import.meta.dirname, "..", "..", "..", "README.md"), "utf8")

const HINT_COLUMNS = [
  ["read-only", "readOnlyHint"],
  ["destructive", "destructiveHint"],
  ["idempotent", "idempotentHint"],
  ["open world", "openWorldHint"]
] as const

/** A listed JSON Schema, as far as these checks read it. */
type ObjectSchema = {
  readonly additionalProperties?: unknown
  readonly properties?: Record<string, Record<string, unknown>>
}
const listed = (tool: (typeof tools)[number]) => {
  const l = listedTool(tool)
  return { ...l, inputSchema: l.inputSchema as ObjectSchema, outputSchema: l.outputSchema as ObjectSchema }
}

const cellsOf = (line: string) => line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim())

/** The rows of the README table whose header starts `| tool | what it does |`, by tool name. */
const readmeTable = (): Map<string, Record<string, string>> => {
  const lines = README.split("\n")
  const start = lines.findIndex((l) => /^\|\s*tool\s*\|\s*what it does\s*\|/.test(l))
  expect(start, "the README has a `| tool | what it does | … |` table").toBeGreaterThanOrEqual(0)
  const header = cellsOf(lines[start]!)
  const rows = new Map<string, Record<string, string>>()
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break
    const cells = cellsOf(line)
    const name = /^`([a-z_]+)`$/.exec(cells[0] ?? "")?.[1]
    expect(name, `a tool name in backquotes in the first cell of: ${line}`).toBeDefined()
    rows.set(name!, Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ""])))
  }
  return rows
}

/** A hint cell reads "yes" or "no", maybe followed by an explanation. */
const hintOf = (cell: string, what: string): boolean => {
  const word = /^(yes|no)\b/.exec(cell)?.[1]
  expect(word, `${what}: a cell starting with yes or no, got ${JSON.stringify(cell)}`).toBeDefined()
  return word === "yes"
}

describe("the README's MCP tool table", () => {
  const table = readmeTable()

  it("names exactly the tools the server lists, in the same order", () => {
    expect([...table.keys()]).toEqual(tools.map((t) => t.name))
  })

  it.each(tools.map((t) => [t.name, t] as const))("%s: the hints in the table are the tool's hints", (name, tool) => {
    const row = table.get(name)
    expect(row, `${name} is in the README table`).toBeDefined()
    for (const [column, hint] of HINT_COLUMNS) {
      expect(hintOf(row![column] ?? "", `${name} ${column}`), `${name}: ${column}`).toBe(tool.hints[hint])
    }
    expect(row!["what it does"]!.length, `${name}: what it does`).toBeGreaterThan(0)
  })
})

describe("listed tool schemas", () => {
  it.each(tools.map((t) => [t.name, t] as const))("%s: an input and an output object schema", (_name, tool) => {
    const schemas = listed(tool)
    expect(listedTool(tool).inputSchema.type).toBe("object")
    expect(schemas.inputSchema.additionalProperties).toBe(false)
    expect(listedTool(tool).outputSchema.type).toBe("object")
    expect(Object.keys(schemas.outputSchema.properties ?? {}).length).toBeGreaterThan(0)
    expect(schemas.annotations).toEqual({ title: tool.title, ...tool.hints })
  })

  it("the spawn tools show the domain's bounds, patterns and literals", () => {
    const byName = new Map(tools.map((t) => [t.name, listed(t)]))
    for (const name of ["deploy_headless_agent", "spawn_child_agent"]) {
      const properties = byName.get(name)!.inputSchema.properties ?? {}
      expect(properties["task_id"]).toMatchObject({ type: "string", pattern: "^TASK-[A-Za-z0-9_-]{1,59}$" })
      expect(properties["timeout_seconds"]).toMatchObject({ type: "integer", minimum: 1, maximum: 2_592_000 })
      expect(properties["engine"]).toMatchObject({ enum: ["claude", "codex", "gemini", "custom"] })
      expect(properties["idempotency_key"]).toMatchObject({ pattern: "^[\\x21-\\x7e]{1,200}$" })
    }
    const create = byName.get("create_real_task")!.inputSchema.properties ?? {}
    expect(create["priority"]).toMatchObject({ enum: ["P0", "P1", "P2", "P3", "P4"] })
    expect(create["max_depth"]).toMatchObject({ type: "integer", minimum: 1, maximum: 100 })
    const finding = byName.get("report_agent_finding")!
    expect(finding.inputSchema.properties?.["severity"]).toMatchObject({ enum: ["low", "medium", "high", "critical"] })
    expect(finding.outputSchema.properties?.["finding_type"]).toMatchObject({
      enum: ["issue", "solution", "insight", "recommendation"]
    })
  })
})
