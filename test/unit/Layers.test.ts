/**
 * The layout's one-way rule: each folder of `src/` is one concept, and a module imports only from its own folder or
 * from folders below it in LAYERS. A change that makes a lower layer reach up (the registry importing the spawn, the
 * domain importing a service) fails here with the offending import named.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const SRC = path.resolve(import.meta.dirname, "../../src")

/** Lowest first. A module in layer i may import from layers 0..i-1 and from its own folder. */
const LAYERS: ReadonlyArray<ReadonlyArray<string>> = [
  ["internal"],
  ["domain"],
  ["budget"],
  ["faults", "admission", "metering"],
  ["SpawnkitConfig.ts"],
  ["host"],
  ["events"],
  ["registry"],
  ["worktree"],
  ["spawn"],
  ["lifecycle"],
  ["supervisor", "tasks", "reports"],
  ["wait"],
  ["Spawnkit.ts"],
  ["mcp", "bench"],
  ["cli"],
  ["index.ts"]
]

const layerOf = (unit: string) => LAYERS.findIndex((names) => names.includes(unit))

/** The folder (or, at the top of src/, the file) a module belongs to. */
const unitOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!

const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name)
    return e.isDirectory() ? sources(full) : /\.(ts|mts)$/.test(e.name) ? [full] : []
  })

const importsOf = (file: string) =>
  [...fs.readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*["'](\.\.?\/[^"']+)["']/g)].map((m) =>
    path.resolve(path.dirname(file), m[1]!)
  )

describe("layout", () => {
  const files = sources(SRC)

  it("every module of src/ belongs to a named layer", () => {
    const unplaced = [...new Set(files.map(unitOf))].filter((u) => layerOf(u) < 0)
    expect(unplaced).toEqual([])
  })

  it("imports flow one way: down the layers, never up or sideways", () => {
    const violations = files.flatMap((file) => {
      const from = unitOf(file)
      return importsOf(file)
        .filter((target) => target.startsWith(SRC + path.sep))
        .map(unitOf)
        .filter((to) => to !== from && !(layerOf(to) < layerOf(from)))
        .map((to) => `${path.relative(SRC, file)} imports ${to}`)
    })
    expect([...new Set(violations)]).toEqual([])
  })

  it("nothing in src/ imports the public barrel index.ts (it is for the API's users)", () => {
    const importers = files.filter((f) => importsOf(f).some((t) => t === path.join(SRC, "index.js")))
    expect(importers.map((f) => path.relative(SRC, f))).toEqual([])
  })

  it("index.ts re-exports and declares nothing of its own", () => {
    const text = fs.readFileSync(path.join(SRC, "index.ts"), "utf8").replace(/\/\*[\s\S]*?\*\//g, "")
    const statements = text.split("\n").filter((l) => /^(export|import)\s/.test(l))
    expect(statements.filter((l) => !/^export (\*|\{|type \{)/.test(l))).toEqual([])
  })
})
