/**
 * MCP sessions of `serve --http`, against the real server with real SDK clients and raw HTTP: a session idle for
 * SPAWNKIT_HTTP_SESSION_IDLE_SECONDS expires; at SPAWNKIT_HTTP_MAX_SESSIONS the least recently used session without a
 * call in flight makes room for a new client (abandoned sessions never lock clients out), one with a call in flight
 * never does, and when all have one a new client gets 503; bad values of both settings stop the server. Every
 * request is answered: a call whose session is deleted while it runs, or that its client cancels, gets its POST
 * answered with a JSON-RPC error, and its spawn is rolled back.
 *
 * Calls are kept in flight with the fault injection `after-session:hang` (a spawn that hangs once its tmux session
 * exists). Needs `npm run build` first.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpError } from "@modelcontextprotocol/sdk/types.js"
import * as Fs from "node:fs"
import { CLI, liveSessions, readRegistryFile } from "../support/Harness.js"
import {
  connectHttp,
  HANG_AFTER_SESSION,
  ok,
  ownedPerTest,
  startHangingDeploy,
  startHttp,
  startServerProcess,
  waitFor,
  waitRolledBack,
  within
} from "../support/Mcp.js"

expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)

const { newEnv, own, ownProcess } = ownedPerTest()

// ---------------------------------------------------------------------------------------------------------------------
// Raw HTTP: sessions a client opens and abandons (never DELETEs)

const JSON_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }
let nextId = 1

interface Reply {
  readonly status: number
  readonly body: any
  readonly sessionId: string | null
}

/** The orchestrator's token of every server here. */
const TOKEN = "sessions-test-token-0123456789"

const post = async (url: string, message: unknown, sessionId?: string): Promise<Reply> => {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${TOKEN}`,
      ...(sessionId !== undefined ? { "mcp-session-id": sessionId } : {})
    },
    body: JSON.stringify(message)
  })
  const text = await res.text()
  return {
    status: res.status,
    body: text === "" ? undefined : JSON.parse(text),
    sessionId: res.headers.get("mcp-session-id")
  }
}

const rpc = (method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: "2.0", id: nextId++, method, params })

/** Open a session with a bare initialize and return its id. */
const openSession = async (url: string): Promise<string> => {
  const reply = await post(
    url,
    rpc("initialize", {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "abandoning-client", version: "1.0.0" }
    })
  )
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  expect(reply.sessionId).toBeTruthy()
  return reply.sessionId!
}

/** tools/list in a session: its HTTP status, and the error message of a refusal. */
const listIn = async (url: string, sessionId: string) => {
  const reply = await post(url, rpc("tools/list"), sessionId)
  return { status: reply.status, message: reply.body?.error?.message as string | undefined }
}

const sessionIdOf = (client: Client) => (client.transport as StreamableHTTPClientTransport).sessionId!

const EXPIRED = "Unknown or expired MCP session; initialize a new one"

describe("HTTP sessions: expiry and eviction", () => {
  it(
    "at SPAWNKIT_HTTP_MAX_SESSIONS, abandoned sessions make room for new SDK clients, least recently used first",
    async () => {
      const CAP = 20
      const env = newEnv()
      const served = own(await startHttp(env, { SPAWNKIT_HTTP_TOKEN: TOKEN, SPAWNKIT_HTTP_MAX_SESSIONS: String(CAP) }))
      const url = served.url!
      // The cap's worth: the served client's session and CAP - 1 sessions opened and abandoned (no DELETE).
      const abandoned: Array<string> = []
      for (let i = 1; i < CAP; i++) abandoned.push(await openSession(url))
      // The served client is used again, so the first abandoned session is now the least recently used.
      await served.client.listTools()

      const first = await connectHttp(url, { token: TOKEN })
      try {
        expect(await ok(first, "create_real_task", { description: "admitted at the cap" })).toHaveProperty("task_id")
        expect(await listIn(url, abandoned[0]!)).toEqual({ status: 404, message: EXPIRED })
        expect(served.stderr()).toMatch(
          new RegExp(
            `closed MCP session ${
              abandoned[0]!.slice(0, 8)
            }… \\(least recently used, idle \\d+ s\\) to admit a new client: ${CAP} sessions open`
          )
        )
        // Using the second abandoned session makes the third the least recently used: the next client evicts that one.
        expect((await listIn(url, abandoned[1]!)).status).toBe(200)
        const second = await connectHttp(url, { token: TOKEN })
        try {
          expect((await second.listTools()).tools.length).toBeGreaterThan(0)
          expect(await listIn(url, abandoned[2]!)).toEqual({ status: 404, message: EXPIRED })
          expect((await listIn(url, abandoned[1]!)).status).toBe(200)
          expect((await listIn(url, abandoned[3]!)).status).toBe(200)
          expect((await served.client.listTools()).tools.length).toBeGreaterThan(0)
          expect((await first.listTools()).tools.length).toBeGreaterThan(0)
        } finally {
          await second.close()
        }
      } finally {
        await first.close()
      }
    },
    300_000
  )

  it(
    "a session with a call in flight is never evicted; when every session has one, a new client gets 503",
    async () => {
      const env = newEnv()
      const served = own(
        await startHttp(env, { SPAWNKIT_HTTP_TOKEN: TOKEN, ...HANG_AFTER_SESSION, SPAWNKIT_HTTP_MAX_SESSIONS: "2" })
      )
      const url = served.url!
      const { task_id } = await ok(served.client, "create_real_task", { description: "eviction pressure" })
      const oldest = await startHangingDeploy(env, served.client, task_id)

      // A second client fills the cap; a third makes room by evicting it, not the older session with a call in flight.
      const idle = await openSession(url)
      const third = await connectHttp(url, { token: TOKEN })
      const controller = new AbortController()
      try {
        expect(await listIn(url, idle)).toEqual({ status: 404, message: EXPIRED })
        const thirds = await startHangingDeploy(env, third, task_id, controller.signal)

        // Both sessions have a call in flight: a new client is refused, clearly, and nothing is closed.
        const refused = await post(
          url,
          rpc("initialize", {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "one-too-many", version: "1.0.0" }
          })
        )
        expect(refused.status).toBe(503)
        expect(refused.body.error.message).toBe(
          "Too many open MCP sessions: all 2 (SPAWNKIT_HTTP_MAX_SESSIONS) have a call in flight; retry when one ends"
        )
        await expect(connectHttp(url, { token: TOKEN })).rejects.toThrow(/503|Too many open MCP sessions/)
        expect((await served.client.listTools()).tools.length).toBeGreaterThan(0)
        expect((await third.listTools()).tools.length).toBeGreaterThan(0)

        // Once the third client's call is cancelled (its POST answered), its session is the one that makes room.
        controller.abort(new Error("the test cancels the spawn"))
        expect(await within("the cancelled call settles", thirds.settled)).toHaveProperty("error")
        const fourth = await connectHttp(url, { token: TOKEN })
        try {
          expect((await fourth.listTools()).tools.length).toBeGreaterThan(0)
          expect(await listIn(url, sessionIdOf(third))).toEqual({ status: 404, message: EXPIRED })
          // The oldest session lived through all of it, its call still in flight.
          expect(oldest.stillPending()).toBe(true)
          expect((await served.client.listTools()).tools.length).toBeGreaterThan(0)
        } finally {
          await fourth.close()
        }
      } finally {
        await third.close()
      }
    },
    300_000
  )

  it("a session idle for SPAWNKIT_HTTP_SESSION_IDLE_SECONDS expires; one with a call in flight does not", async () => {
    const env = newEnv()
    const served = own(
      await startHttp(env, {
        SPAWNKIT_HTTP_TOKEN: TOKEN,
        ...HANG_AFTER_SESSION,
        SPAWNKIT_HTTP_SESSION_IDLE_SECONDS: "1"
      })
    )
    const url = served.url!
    const { task_id } = await ok(served.client, "create_real_task", { description: "expiry" })
    const controller = new AbortController()
    const busy = await startHangingDeploy(env, served.client, task_id, controller.signal)
    const idle = await openSession(url)
    // Waited on the server's own report, never on a request to the idle session (a request would use it).
    await waitFor(
      "the server closes the idle session",
      () => /closed 1 MCP session\(s\) idle for 1 s \(SPAWNKIT_HTTP_SESSION_IDLE_SECONDS\)/.test(served.stderr())
    )
    expect(await listIn(url, idle)).toEqual({ status: 404, message: EXPIRED })
    // The busy session outlived its idle time: its call is in flight, and it still serves.
    expect(busy.stillPending()).toBe(true)
    expect((await served.client.listTools()).tools.length).toBeGreaterThan(0)

    // Once its call ends, it is idle like any other and expires too.
    controller.abort(new Error("the test cancels the spawn"))
    expect(await within("the cancelled call settles", busy.settled)).toHaveProperty("error")
    await waitRolledBack(env, task_id)
    const id = sessionIdOf(served.client)
    await waitFor(
      "the server closes the formerly busy session",
      () => (served.stderr().match(/closed 1 MCP session\(s\) idle for 1 s/g) ?? []).length >= 2
    )
    expect(await listIn(url, id)).toEqual({ status: 404, message: EXPIRED })
  }, 300_000)

  it(
    "a bad SPAWNKIT_HTTP_SESSION_IDLE_SECONDS or SPAWNKIT_HTTP_MAX_SESSIONS stops serve --http with an InvalidConfiguration naming it",
    async () => {
      for (
        const [name, value] of [["SPAWNKIT_HTTP_SESSION_IDLE_SECONDS", "15m"], [
          "SPAWNKIT_HTTP_MAX_SESSIONS",
          "0"
        ]] as const
      ) {
        const server = ownProcess(startServerProcess(newEnv(), ["--http", "--port", "0"], { [name]: value }))
        const exit = await within(`serve --http with ${name}=${value} exits`, server.exit, 120_000)
        expect(exit.code, server.stderr()).toBe(78)
        expect(server.stderr()).toMatch(new RegExp(`error \\[InvalidConfiguration\\]: .*${name}`, "s"))
        expect(server.stderr()).not.toContain("spawnkit MCP server on")
      }
    },
    300_000
  )
})

// ---------------------------------------------------------------------------------------------------------------------

describe("HTTP: every request is answered", () => {
  it(
    "DELETE of a session while its call runs: the call's POST is answered, the spawn rolled back, the session gone",
    async () => {
      const env = newEnv()
      const served = own(await startHttp(env, { ...HANG_AFTER_SESSION, SPAWNKIT_HTTP_TOKEN: TOKEN }))
      const { task_id } = await ok(served.client, "create_real_task", { description: "delete mid-call" })
      const { settled, stillPending } = await startHangingDeploy(env, served.client, task_id)
      expect(stillPending()).toBe(true)
      const sessionId = sessionIdOf(served.client)

      // The SDK client's own DELETE.
      await within("DELETE answered", (served.client.transport as StreamableHTTPClientTransport).terminateSession())
      const outcome = await within("the call's POST is answered after the DELETE", settled)
      expect(outcome).toHaveProperty("error")
      const error = (outcome as { error: unknown }).error
      expect(error).toBeInstanceOf(McpError)
      expect((error as McpError).message).toContain(
        "Cancelled: the client ended the MCP session (DELETE); the call was interrupted."
      )
      await waitRolledBack(env, task_id)
      expect(readRegistryFile(env.home, task_id)).toMatchObject({ active_count: 0, total_spawned: 0 })
      expect(await listIn(served.url!, sessionId)).toEqual({ status: 404, message: EXPIRED })
    },
    300_000
  )

  it(
    "a call its client cancels (notifications/cancelled) gets its POST answered; the spawn is rolled back",
    async () => {
      const env = newEnv()
      const served = own(await startHttp(env, { ...HANG_AFTER_SESSION, SPAWNKIT_HTTP_TOKEN: TOKEN }))
      const url = served.url!
      const { task_id } = await ok(served.client, "create_real_task", { description: "cancel, raw" })
      const sessionId = await openSession(url)
      const deploy = rpc("tools/call", {
        name: "deploy_headless_agent",
        arguments: { task_id, agent_type: "slow", prompt: "hangs" }
      })
      const pendingPost = post(url, deploy, sessionId)
      await waitFor("the spawn hangs with its session", () => liveSessions(env.socket).length === 1)
      const cancel = await post(url, {
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: deploy.id, reason: "changed my mind" }
      }, sessionId)
      expect(cancel.status).toBe(202)
      const answered = await within("the cancelled call's POST is answered", pendingPost)
      expect(answered.status).toBe(200)
      expect(answered.body).toEqual({
        jsonrpc: "2.0",
        id: deploy.id,
        error: { code: -32000, message: "Cancelled: the client cancelled the request; the call was interrupted." }
      })
      await waitRolledBack(env, task_id)
      expect((await listIn(url, sessionId)).status).toBe(200)
    },
    300_000
  )
})
