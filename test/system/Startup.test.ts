/**
 * Start-up: each command of the built CLI loads only what it needs. The CLI runs with a resolve hook
 * (support/record-modules.mjs) that records every module it loads; a bundle's chunks are mapped back to the source
 * and package files they hold through dist/bundle/meta.json, so the checks hold for the bundle and for plain tsc
 * output alike. `--help`, `status`, `spawn` and the exit hook's command must not load the MCP SDK, pg, the
 * PostgreSQL registry, re2js or the benchmark; `serve` must load the SDK (and still not pg or the HTTP transport),
 * and a database URL must bring in the PostgreSQL registry. The benchmark's start-up scenario runs one round here.
 *
 * Needs `npm run build` first.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { measureStartup, StartupFailed } from "../../src/bench/Startup.js"
import { CLI, createDatabase, dropDatabase } from "../support/Harness.js"

const ROOT = NodePath.resolve(import.meta.dirname, "..", "..")
const RECORDER = NodePath.join(import.meta.dirname, "..", "support", "record-modules.mjs")
const META = NodePath.join(ROOT, "dist", "bundle", "meta.json")

/** What no command but the ones that need it may load, by the package-relative path of its files. */
const LAZY = {
  "the MCP SDK": /^node_modules\/@modelcontextprotocol\/sdk\//,
  "the HTTP transport": /^(src\/mcp\/Http\.ts|dist\/mcp\/Http\.js)$/,
  pg: /^node_modules\/pg\//,
  "the PostgreSQL registry": /^(src\/registry\/PgRegistry\.ts|dist\/registry\/PgRegistry\.js)$/,
  re2js: /^node_modules\/re2js\//,
  "the benchmark": /^(src|dist)\/bench\//
} as const
type Lazy = keyof typeof LAZY

/** The outputs of the CLI bundle and the inputs each holds (none when the CLI is plain tsc output). */
const bundleInputs = (): ReadonlyMap<string, ReadonlyArray<string>> => {
  if (!Fs.existsSync(META)) return new Map()
  const meta = JSON.parse(Fs.readFileSync(META, "utf8")) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>
  }
  return new Map(Object.entries(meta.outputs).map(([output, o]) => [output, Object.keys(o.inputs)]))
}

/** The package-relative files behind a set of loaded module URLs (a bundle chunk stands for the files it holds). */
const filesBehind = (urls: ReadonlyArray<string>): ReadonlySet<string> => {
  const inputs = bundleInputs()
  const files = new Set<string>()
  for (const url of urls) {
    if (!url.startsWith("file:")) continue
    const rel = NodePath.relative(ROOT, fileURLToPath(url)).split(NodePath.sep).join("/")
    for (const file of inputs.get(rel) ?? [rel]) files.add(file)
  }
  return files
}

/** Which of the lazily loaded groups a process loaded. */
const lazyLoaded = (files: ReadonlySet<string>): ReadonlyArray<Lazy> =>
  (Object.keys(LAZY) as Array<Lazy>).filter((name) => [...files].some((f) => LAZY[name].test(f)))

const dirs: Array<string> = []
const sockets: Array<string> = []
afterEach(() => {
  for (const socket of sockets.splice(0)) {
    spawnSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" })
    // The server is gone: nothing answers on its socket any more.
    expect(spawnSync("tmux", ["-S", socket, "list-sessions"], { stdio: "ignore" }).status).not.toBe(0)
  }
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

/** A temp home and a tmux socket inside it; environment variables for the CLI on them (none of the caller's). */
const makeEnv = () => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-startup-test-"))
  dirs.push(dir)
  const socket = NodePath.join(dir, "tmux.sock")
  sockets.push(socket)
  const inherited = Object.fromEntries(
    Object.entries(process.env).flatMap(([k, v]) => (k.startsWith("SPAWNKIT_") || v === undefined ? [] : [[k, v]]))
  )
  return {
    dir,
    socket,
    env: {
      ...inherited,
      SPAWNKIT_HOME: NodePath.join(dir, "home"),
      SPAWNKIT_TMUX_SOCKET: socket,
      SPAWNKIT_AGENT_COMMAND: "sleep 600",
      SPAWNKIT_RECONCILE_INTERVAL: "0"
    } as Record<string, string>
  }
}

let runs = 0
/** Run the built CLI with the module recorder; its result and the files it loaded. */
const recorded = (env: Record<string, string>, args: ReadonlyArray<string>, input?: string) => {
  const out = NodePath.join(env["SPAWNKIT_HOME"]!, "..", `modules-${++runs}.txt`)
  const result = spawnSync(process.execPath, ["--import", RECORDER, CLI, ...args], {
    encoding: "utf8",
    env: { ...env, SPAWNKIT_TEST_MODULES_FILE: out },
    ...(input === undefined ? { stdio: ["ignore", "pipe", "pipe"] } : { input })
  })
  const urls = Fs.readFileSync(out, "utf8").split("\n").filter((l) => l !== "")
  return { ...result, files: filesBehind(urls) }
}

describe("start-up: each command loads only what it needs", () => {
  it("--help loads none of the lazily loaded modules", () => {
    const { env } = makeEnv()
    const help = recorded(env, ["--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("spawnkit")
    // The recorder saw the CLI itself: an empty record would pass every check below.
    expect([...help.files].some((f) => f.startsWith("src/cli/main.ts") || f === "dist/cli/main.js")).toBe(true)
    expect(lazyLoaded(help.files)).toEqual([])
  })

  it("status, spawn and the exit hook's command load none of them on the file registry", () => {
    const { env, socket } = makeEnv()
    const created = recorded(env, ["task", "create", "--description", "start-up", "--json"])
    expect(created.status, created.stderr).toBe(0)
    expect(lazyLoaded(created.files)).toEqual([])
    const taskId = JSON.parse(created.stdout).task_id as string

    const status = recorded(env, ["status", "--task", taskId, "--json"])
    expect(status.status, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).task_id).toBe(taskId)
    expect(lazyLoaded(status.files)).toEqual([])
    // The registry was read: the file registry's module is among those loaded.
    expect([...status.files].some((f) => /registry\/FileRegistry\.(ts|js)$/.test(f))).toBe(true)

    const spawned = recorded(env, [
      "spawn",
      "--task",
      taskId,
      "--type",
      "startup",
      "--prompt",
      "p",
      "--engine",
      "custom",
      "--json"
    ])
    expect(spawned.status, spawned.stderr).toBe(0)
    expect(lazyLoaded(spawned.files)).toEqual([])

    const pane = spawnSync("tmux", ["-S", socket, "list-panes", "-a", "-F", "#{pane_id}"], { encoding: "utf8" })
    expect(pane.status).toBe(0)
    const paneId = pane.stdout.trim().split("\n")[0]!
    expect(paneId).toMatch(/^%\d+$/)
    const hook = recorded(env, ["agent-exited", "--pane", paneId, "--socket", socket])
    expect(hook.status, hook.stderr).toBe(0)
    expect([...hook.files].some((f) => /lifecycle\/ExitHook\.(ts|js)$/.test(f))).toBe(true)
    expect(lazyLoaded(hook.files)).toEqual([])
  })

  it("serve loads the MCP SDK and, for its agents' broker, the HTTP transport; still not pg or the benchmark", () => {
    const { env } = makeEnv()
    const initialize = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "startup-test", version: "0" } }
    })
    // stdin ends after the request: the server answers, then shuts down.
    const serve = recorded(env, ["serve"], initialize + "\n")
    expect(serve.status, serve.stderr).toBe(0)
    const answer = serve.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)).find((m) => m.id === 1)
    expect(answer?.result?.serverInfo?.name).toBeTypeOf("string")
    const loaded = lazyLoaded(serve.files)
    expect(loaded).toContain("the MCP SDK")
    // An orchestrator's stdio server is the host's broker too: it loads the HTTP transport once its client is served.
    expect(loaded).toContain("the HTTP transport")
    for (const absent of ["pg", "the PostgreSQL registry", "the benchmark"] as const) {
      expect(loaded).not.toContain(absent)
    }
  })

  it("a database URL brings in the PostgreSQL registry and pg", () => {
    const { env } = makeEnv()
    const database = createDatabase()
    try {
      const status = recorded({ ...env, SPAWNKIT_DATABASE_URL: database.url }, ["status", "--json"])
      expect(status.status, status.stderr).toBe(0)
      expect(JSON.parse(status.stdout).tasks).toEqual([])
      const loaded = lazyLoaded(status.files)
      expect(loaded).toContain("pg")
      expect(loaded).toContain("the PostgreSQL registry")
      expect(loaded).not.toContain("the MCP SDK")
    } finally {
      dropDatabase(database.name)
    }
  })
})

/** Temp directories of the start-up scenario, and processes that name one (its tmux server, its agents). */
const scenarioLeftovers = () => ({
  dirs: Fs.readdirSync(Os.tmpdir()).filter((d) =>
    d.startsWith("spawnkit-startup-") && !d.startsWith("spawnkit-startup-test-")
  ),
  processes: spawnSync("ps", ["-eo", "args"], { encoding: "utf8" }).stdout.split("\n").filter((l) =>
    /spawnkit-startup-(?!test-)/.test(l)
  )
})

describe("the benchmark's start-up scenario", () => {
  it.live("measures every row in one round and leaves no directory, tmux server or agent behind", () =>
    Effect.gen(function*() {
      const before = scenarioLeftovers()
      const report = yield* measureStartup(1)
      expect(report.rounds).toBe(1)
      expect(report.rows.map((r) => [r.name, r.unit])).toEqual([
        ["node -e 0 (floor)", "ms"],
        ["spawnkit --help", "ms"],
        ["spawnkit status --task T", "ms"],
        ["spawnkit spawn (custom engine)", "ms"],
        ["idle node (memory floor)", "MiB"],
        ["idle spawnkit serve (stdio, after initialize)", "MiB"]
      ])
      for (const row of report.rows) {
        expect(row.median, row.name).toBeGreaterThan(0)
        expect(row.min).toBe(row.median)
        expect(row.max).toBe(row.median)
      }
      expect(report.rows[0]!.floorRatio).toBe(1)
      expect(report.rows[4]!.floorRatio).toBe(1)
      // A spawn starts tmux and an agent: it cannot take less than Node's own start.
      expect(report.rows[3]!.median).toBeGreaterThan(report.rows[0]!.median)
      expect(report.rows.map((r) => r.goal?.under)).toEqual([undefined, 300, 300, undefined, undefined, 100])
      const after = scenarioLeftovers()
      expect(after.dirs.filter((d) => !before.dirs.includes(d))).toEqual([])
      expect(after.processes).toEqual([])
    }).pipe(Effect.provide(NodeServices.layer)))

  it("bench refuses --startup-rounds out of range with InvalidInput and writes nothing", () => {
    const { dir, env } = makeEnv()
    const out = NodePath.join(dir, "results")
    for (const rounds of ["-1", "46"]) {
      const refused = spawnSync(process.execPath, [CLI, "bench", "--startup-rounds", rounds, "--out", out, "--json"], {
        encoding: "utf8",
        env
      })
      expect(refused.status).toBe(1)
      const error = JSON.parse(refused.stdout).error
      expect(error.tag).toBe("InvalidInput")
      expect(error.message).toContain("startup-rounds")
      expect(Fs.existsSync(out)).toBe(false)
    }
  })

  it.live("refuses a round count out of range with StartupFailed and runs nothing", () =>
    Effect.gen(function*() {
      for (const rounds of [0, 46, 1.5]) {
        const error = yield* Effect.flip(measureStartup(rounds))
        expect(error).toBeInstanceOf(StartupFailed)
        expect(error.step).toBe("options")
        expect(error.message).toContain(`got ${rounds}`)
      }
    }).pipe(Effect.provide(NodeServices.layer)))
})
