/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`, run from node_modules, offline) against
 * `spawnkit serve --http` on loopback: each server scenario that applies to a server with its own tools passes.
 *
 * Scenarios left out, and why:
 * - tools-call-*, json-schema-2020-12, elicitation-*, server-sse-polling, server-sse-multiple-streams: they call the
 *   suite's own test tools (`test_simple_text`, `test_reconnection`, `json_schema_2020_12_tool`, …).
 * - prompts-*, completion-complete: they need the suite's test prompts; spawnkit serves no prompts or completions.
 * - resources-read-text, resources-read-binary, resources-templates-read, resources-subscribe,
 *   resources-unsubscribe: they read or subscribe to the suite's own resources (`test://static-text`,
 *   `test://template/{id}/data`, `test://watched-resource`), which spawnkit refuses as unknown URIs, as it must.
 *   Subscribing and unsubscribing to spawnkit's own resources is tested in McpResources.test.ts.
 *
 * Needs `npm run build` first.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as NodePath from "node:path"
import { onTestFinished } from "vitest"
import { CLI, makeTempDir } from "../support/Harness.js"
import { ownedPerTest, startHttp } from "../support/Mcp.js"

expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)

const SUITE = NodePath.resolve(
  import.meta.dirname,
  "..",
  "..",
  "node_modules",
  "@modelcontextprotocol",
  "conformance",
  "dist",
  "index.js"
)

const SCENARIOS = [
  "server-initialize",
  "ping",
  "tools-list",
  "logging-set-level",
  "resources-list",
  "dns-rebinding-protection"
]

const { newEnv, own } = ownedPerTest()

/** Run one scenario of the suite against `url`; its exit status and output. */
const runScenario = (url: string, scenario: string, cwd: string) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve, reject) => {
    // The suite writes its results under its working directory: a temp directory of the test's.
    const child = spawn(process.execPath, [SUITE, "server", "--url", url, "--scenario", scenario], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d))
    child.on("error", reject)
    child.on("exit", (code) => resolve({ code, output }))
  })

/**
 * The suite's client sends no credentials, and every request to spawnkit needs one: a forwarder on loopback that adds
 * the orchestrator's bearer token to each request and passes everything else (the Host and Origin headers included,
 * so the DNS-rebinding scenario still reaches the server's own checks) and each answer (SSE streams too) unchanged.
 */
const withToken = async (target: string, token: string) => {
  const to = new URL(target)
  const server = Http.createServer((req, res) => {
    const upstream = Http.request(
      {
        host: to.hostname,
        port: to.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, authorization: `Bearer ${token}` }
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      }
    )
    upstream.on("error", () => res.destroy())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  onTestFinished(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const address = server.address() as AddressInfo
  return `http://127.0.0.1:${address.port}${to.pathname}`
}

describe("the MCP conformance suite against serve --http", () => {
  it("passes every server scenario that applies to spawnkit", async () => {
    expect(Fs.existsSync(SUITE), "npm install (the conformance suite is a devDependency)").toBe(true)
    const env = newEnv()
    const served = own(await startHttp(env, { SPAWNKIT_RECONCILE_INTERVAL: "0" }))
    const url = await withToken(served.url!, served.token!)
    const results = makeTempDir("sk-conformance-")
    try {
      for (const scenario of SCENARIOS) {
        const { code, output } = await runScenario(url, scenario, results)
        expect(output, scenario).toMatch(/Passed: (\d+)\/\1, 0 failed/)
        expect(code, `${scenario}:\n${output}`).toBe(0)
      }
    } finally {
      Fs.rmSync(results, { recursive: true, force: true })
    }
  }, 180_000)
})
