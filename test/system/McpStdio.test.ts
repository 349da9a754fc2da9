/**
 * The stdio server against its client, real processes: a message over the limit (10 MiB by default) is answered
 * with a JSON-RPC error carrying its id and the server goes on serving (the SDK's own transport went deaf and never
 * exited); the server exits when its stdin closes, even in the middle of an oversized message, and when its stdout
 * closes, after rolling back the spawn it was running. Driven by the SDK's client and by raw JSON-RPC lines.
 *
 * Needs `npm run build` first.
 */
import { describe, expect, it } from "@effect/vitest"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import * as Fs from "node:fs"
import { CLI, liveSessions, promptFiles, readRegistryFile } from "../support/Harness.js"
import {
  call,
  HANG_AFTER_SESSION,
  ok,
  ownedPerTest,
  type ServerProcess,
  startServerProcess,
  startStdio,
  waitFor,
  within
} from "../support/Mcp.js"

expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)

const { newEnv, own, ownProcess } = ownedPerTest()

let nextId = 1

/** A stdio server spoken to in raw JSON-RPC lines, as a client that misbehaves or goes away would. */
const rawStdio = (server: ServerProcess) => {
  const replies = (): Array<any> => server.stdout().split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
  const reply = (id: number) => waitFor(`the reply to request ${id}`, () => replies().find((r) => r.id === id), 120_000)
  const send = (message: unknown) => server.proc.stdin!.write(JSON.stringify(message) + "\n")
  const request = (method: string, params: Record<string, unknown> = {}) => {
    const id = nextId++
    send({ jsonrpc: "2.0", id, method, params })
    return id
  }
  const initialize = async () => {
    const result = (await reply(request("initialize", {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "raw-stdio", version: "1.0.0" }
    }))).result
    expect(result.serverInfo.name).toBe("spawnkit")
    send({ jsonrpc: "2.0", method: "notifications/initialized" })
  }
  return { reply, send, request, initialize }
}

/** More than the default limit of a stdio message (10 MiB). */
const OVERSIZED = 11 * 1024 * 1024
const OVER_LIMIT =
  /^Message of \d+ bytes is over the limit of 10485760 bytes \(SPAWNKIT_STDIO_MAX_MESSAGE_BYTES\); it was not read/

describe("stdio: oversized messages are answered, and the server exits when its client goes away", () => {
  it("an oversized call (SDK client) gets a JSON-RPC error with its id; the server goes on serving", async () => {
    const served = own(await startStdio(newEnv()))
    const refused = await within(
      "the oversized call is answered",
      call(served.client, "create_real_task", { description: "x".repeat(OVERSIZED) }).then(
        (result) => ({ result }),
        (error: unknown) => ({ error })
      ),
      30_000
    )
    expect(refused).toHaveProperty("error")
    const error = (refused as { error: unknown }).error
    expect(error).toBeInstanceOf(McpError)
    expect((error as McpError).code).toBe(-32600)
    expect((error as McpError).message).toMatch(/Message of \d+ bytes is over the limit of 10485760 bytes/)
    expect(served.stderr()).toMatch(/refused a stdio message \(id \d+\): Message of \d+ bytes is over the limit/)
    // Nothing was done, and the server still serves.
    expect(await ok(served.client, "list_tasks", {})).toEqual({ tasks: [], unreadable: [] })
    expect(await ok(served.client, "create_real_task", { description: "a normal one" })).toHaveProperty("task_id")
  }, 300_000)

  it("with its stdin closed it exits, also in the middle of an oversized message", async () => {
    const server = ownProcess(startServerProcess(newEnv(), []))
    const stdio = rawStdio(server)
    await stdio.initialize()
    const answer = await stdio.reply(stdio.request("tools/call", {
      name: "list_tasks",
      arguments: { pad: "y".repeat(OVERSIZED) }
    }))
    expect(answer.error.code).toBe(-32600)
    expect(answer.error.message).toMatch(OVER_LIMIT)
    expect((await stdio.reply(stdio.request("tools/list"))).result.tools.length).toBeGreaterThan(0)
    // Half of another oversized message, and the client goes away.
    server.proc.stdin!.write(
      `{"jsonrpc":"2.0","id":${nextId++},"method":"ping","params":{"pad":"${"z".repeat(OVERSIZED)}`
    )
    server.proc.stdin!.end()
    expect(await within("the server exits once stdin is closed", server.exit, 120_000)).toEqual({
      code: 0,
      signal: null
    })
    expect(server.stderr()).toContain("stdio transport closed (stdin ended); shutting down")
  }, 300_000)

  it("when its stdout closes it exits, and the spawn it was running is rolled back", async () => {
    const env = newEnv()
    const server = ownProcess(startServerProcess(env, [], HANG_AFTER_SESSION))
    const stdio = rawStdio(server)
    await stdio.initialize()
    const created = await stdio.reply(
      stdio.request("tools/call", { name: "create_real_task", arguments: { description: "stdout" } })
    )
    const taskId = created.result.structuredContent.task_id as string
    stdio.request("tools/call", {
      name: "deploy_headless_agent",
      arguments: { task_id: taskId, agent_type: "slow", prompt: "hangs" }
    })
    await waitFor("the hanging spawn's session exists", () => liveSessions(env.socket).length === 1)
    await waitFor(
      "the hanging spawn's reservation exists",
      () => readRegistryFile(env.home, taskId).agents.length === 1
    )
    // The client stops reading: the server learns it at its next write.
    server.proc.stdout!.destroy()
    stdio.request("ping")
    expect(await within("the server exits once its stdout is closed", server.exit, 120_000)).toEqual({
      code: 0,
      signal: null
    })
    expect(server.stderr()).toMatch(/stdio transport closed \(stdout failed: write EPIPE\); shutting down/)
    // Checked once, right after the exit: the server released everything before it exited.
    expect(liveSessions(env.socket)).toEqual([])
    expect(promptFiles(env.home, taskId)).toEqual([])
    expect(readRegistryFile(env.home, taskId).agents).toEqual([])
  }, 300_000)
})
