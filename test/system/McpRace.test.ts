/**
 * The MCP servers race each other: 3 `spawnkit serve` processes over stdio and 1 over Streamable HTTP, all on one
 * SPAWNKIT_HOME and one tmux socket, each driven by a real MCP SDK client. 60 deploy_headless_agent calls (15 per
 * server, distinct prompts) go out at once against a task with max_concurrent 20: exactly 20 are admitted, the
 * registry file, the tmux server and the prompt files agree on those 20, and the 40 others are tool errors naming
 * LimitReached and max_concurrent.
 *
 * Needs `npm run build` first (the servers run dist/cli/main.js).
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type ChildProcess, spawn as spawnProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import {
  CLI,
  liveSessions,
  makeTestEnv,
  processAlive,
  promptFiles,
  readRegistryFile,
  stopChild,
  type TestEnv,
  waitFor
} from "../support/Harness.js"

const STDIO_SERVERS = 3
const CALLS_PER_SERVER = 15
const MAX_CONCURRENT = 20
const CALL_TIMEOUT_MS = 90_000

const envs: Array<TestEnv> = []
const clients: Array<Client> = []
const children: Array<ChildProcess> = []

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()))
  await Promise.all(children.splice(0).map(stopChild))
  for (const env of envs.splice(0)) env.cleanup()
})

/** The servers' environment: the test's home and socket, no inherited agent identity or HTTP token. */
const serverEnv = (env: TestEnv): Record<string, string> => {
  const base = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] =>
      e[1] !== undefined && !/^SPAWNKIT_(AGENT_ID|AGENT_SECRET|TASK_ID|HTTP_)/.test(e[0])
    )
  )
  return { ...base, ...env.env, SPAWNKIT_GLOBAL_MAX_CONCURRENT: "1000", SPAWNKIT_MAX_SPAWNS_PER_MINUTE: "100000" }
}

const SERVER_LINE = /spawnkit MCP server on (http:\/\/127\.0\.0\.1:(\d+)\/mcp)/

/** Start `serve --http --port 0` and resolve with its URL once it logs that it listens. */
const startHttpServer = (env: TestEnv) =>
  new Promise<string>((resolve, reject) => {
    const child = spawnProcess(process.execPath, [CLI, "serve", "--http", "--host", "127.0.0.1", "--port", "0"], {
      env: serverEnv(env),
      stdio: ["ignore", "ignore", "pipe"]
    })
    children.push(child)
    let stderr = ""
    const timer = setTimeout(() => reject(new Error(`HTTP server did not start within 120 s: ${stderr}`)), 120_000)
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d
      const match = SERVER_LINE.exec(stderr)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`HTTP server exited with ${code} before listening: ${stderr}`))
    })
  })

const connect = async (transport: StdioClientTransport | StreamableHTTPClientTransport, name: string) => {
  const client = new Client({ name, version: "1.0.0" })
  clients.push(client)
  await client.connect(transport)
  return client
}

interface ToolResult {
  readonly isError?: boolean
  readonly content: ReadonlyArray<{ readonly type: string; readonly text?: string }>
  readonly structuredContent?: Record<string, unknown>
}

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS })) as unknown as ToolResult

const textOf = (r: ToolResult) => r.content.map((c) => c.text ?? "").join("\n")

const ACTIVE = new Set(["reserved", "running", "working", "blocked"])

describe("MCP servers racing (3 stdio + 1 HTTP processes, one home, real tmux)", () => {
  it("requires the compiled CLI", () => {
    expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)
  })

  it(
    `60 concurrent deploy_headless_agent calls over 4 servers, max_concurrent ${MAX_CONCURRENT} -> exactly 20 agents`,
    async () => {
      const t0 = Date.now()
      const env = makeTestEnv()
      envs.push(env)

      const url = await startHttpServer(env)
      const stdio = await Promise.all(
        Array.from({ length: STDIO_SERVERS }, (_, n) =>
          connect(
            new StdioClientTransport({
              command: process.execPath,
              args: [CLI, "serve"],
              env: serverEnv(env),
              stderr: "pipe"
            }),
            `race-stdio-${n}`
          ))
      )
      const token = Fs.readFileSync(NodePath.join(env.home, ".spawnkit-orchestrator.token"), "utf8").trim()
      const http = await connect(
        new StreamableHTTPClientTransport(new URL(url), {
          requestInit: { headers: { authorization: `Bearer ${token}` } }
        }),
        "race-http"
      )
      const servers = [...stdio.map((c, n) => ({ label: `stdio-${n}`, client: c })), { label: "http", client: http }]
      for (const { label, client } of servers) {
        const names = (await client.listTools()).tools.map((t) => t.name)
        expect(names, label).toContain("deploy_headless_agent")
      }
      const readyMs = Date.now() - t0

      const created = await call(stdio[0]!, "create_real_task", {
        description: "MCP race",
        max_concurrent: MAX_CONCURRENT,
        max_agents: 1000
      })
      expect(created.isError, textOf(created)).not.toBe(true)
      const taskId = created.structuredContent!["task_id"] as string
      expect(taskId).toMatch(/^TASK-/)
      // The task is visible through every server, the HTTP one included.
      for (const { label, client } of servers) {
        const status = await call(client, "get_real_task_status", { task_id: taskId })
        expect(status.isError, `${label}: ${textOf(status)}`).not.toBe(true)
        expect(status.structuredContent!["max_concurrent"], label).toBe(MAX_CONCURRENT)
      }

      // While the calls run, the registry file is read every few milliseconds and checked on every snapshot.
      let samples = 0
      let maxOwners = 0
      const violations: Array<string> = []
      const sample = () => {
        try {
          const snapshot = readRegistryFile(env.home, taskId)
          const active = (snapshot.agents as Array<any>).filter((a) => ACTIVE.has(a.status))
          const owners = new Set(active.filter((a) => a.status === "reserved").map((a) => a.reservation?.owner_pid))
          maxOwners = Math.max(maxOwners, owners.size)
          samples++
          if (active.length > MAX_CONCURRENT) violations.push(`${active.length} active records`)
          if (snapshot.active_count !== active.length) {
            violations.push(`active_count ${snapshot.active_count} != ${active.length} active records`)
          }
        } catch (e) {
          violations.push(`read failed: ${String(e)}`)
        }
      }
      const sampler = setInterval(sample, 10)

      // All 60 calls are issued in the same tick, 15 through each server.
      const raceStart = Date.now()
      const calls = servers.flatMap(({ label, client }) =>
        Array.from({ length: CALLS_PER_SERVER }, (_, k) => {
          const prompt = `mcp race via ${label}, attempt ${k}`
          return call(client, "deploy_headless_agent", { task_id: taskId, agent_type: "racer", prompt }).then(
            (result) => ({ label, prompt, result })
          )
        })
      )
      const results = await Promise.all(calls).finally(() => clearInterval(sampler))
      const raceMs = Date.now() - raceStart
      sample()
      expect(violations.slice(0, 10)).toEqual([])
      expect(results).toHaveLength(4 * CALLS_PER_SERVER)

      const ok = results.filter((r) => r.result.isError !== true)
      const rejected = results.filter((r) => r.result.isError === true)
      const tally = (rs: typeof results) =>
        JSON.stringify(
          Object.fromEntries(servers.map(({ label }) => [label, rs.filter((r) => r.label === label).length]))
        )
      const diagnostics = `ok ${tally(ok)}, rejected ${tally(rejected)}; first rejections: ${
        rejected.slice(0, 3).map((r) => textOf(r.result)).join(" || ")
      }`
      expect(ok.length, diagnostics).toBe(MAX_CONCURRENT)
      expect(rejected.length, diagnostics).toBe(4 * CALLS_PER_SERVER - MAX_CONCURRENT)
      for (const { label, result } of rejected) {
        const text = textOf(result)
        expect(text, label).toMatch(/^LimitReached: /)
        expect(text, label).toContain("max_concurrent")
        expect(text, label).toContain(`"limit":"max_concurrent"`)
      }
      const admitted = ok.map(({ label, result }) => {
        const s = result.structuredContent!
        expect(s, label).toMatchObject({
          task_id: taskId,
          status: "running",
          existing: false,
          depth: 1,
          parent: "orchestrator"
        })
        return { id: s["agent_id"] as string, session: s["tmux_session"] as string }
      })
      expect(new Set(admitted.map((a) => a.id)).size).toBe(MAX_CONCURRENT)

      // The registry file, straight from disk.
      const task = readRegistryFile(env.home, taskId)
      const agents: Array<any> = task.agents
      expect(agents).toHaveLength(MAX_CONCURRENT)
      expect(agents.filter((a) => a.status === "running")).toHaveLength(MAX_CONCURRENT)
      expect(agents.filter((a) => a.reservation !== undefined)).toEqual([])
      expect(agents.map((a) => a.id).sort()).toEqual(admitted.map((a) => a.id).sort())
      expect(task.active_count).toBe(agents.filter((a) => ACTIVE.has(a.status)).length)
      expect(task.active_count).toBe(MAX_CONCURRENT)
      expect(task.total_spawned).toBe(MAX_CONCURRENT)

      // The tmux server holds exactly the recorded sessions; each agent has its prompt file.
      const sessions = liveSessions(env.socket).sort()
      expect(sessions).toEqual(agents.map((a) => a.tmux_session).sort())
      expect(sessions).toEqual(admitted.map((a) => a.session).sort())
      expect(promptFiles(env.home, taskId).sort()).toEqual(agents.map((a) => `${a.id}.prompt`).sort())

      // Every server reports the same counts.
      for (const { label, client } of servers) {
        const status = await call(client, "get_real_task_status", { task_id: taskId })
        expect(status.structuredContent, label).toMatchObject({
          active_count: MAX_CONCURRENT,
          total_spawned: MAX_CONCURRENT
        })
      }
      console.log(
        `MCP race: servers ready in ${readyMs} ms, 60 calls in ${raceMs} ms; admitted per server ${tally(ok)}; ` +
          `${samples} registry samples, reservations of up to ${maxOwners} server processes at once; ` +
          `total ${Date.now() - t0} ms`
      )

      // Closing the clients ends the stdio servers (their stdin closes); the agents stay with their records.
      const pids = stdio.map((c) => (c.transport as StdioClientTransport).pid!)
      await Promise.all(clients.splice(0).map((c) => c.close()))
      await waitFor("stdio servers exited", () => pids.every((pid) => !processAlive(pid)))
      expect(liveSessions(env.socket)).toHaveLength(MAX_CONCURRENT)
    },
    300_000
  )
})
