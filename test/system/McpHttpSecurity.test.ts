/**
 * Security of `spawnkit serve --http`, against the real server process over loopback: bearer token (401), foreign
 * Origin (403, token or not), non-loopback Host (403, DNS rebinding), body limit (413), PUT/PATCH (405), GET without a session; every refused
 * request leaves the workspace and the tmux server as they were, and the same request with the right credentials
 * does change them (so "nothing changed" means something). A non-loopback address without a token is refused at
 * start-up and never listens; with a token it serves (requests here go to 127.0.0.1 only).
 *
 * Needs `npm run build` first (the server runs dist/cli/main.js).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn as spawnProcess } from "node:child_process"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { CLI, liveSessions, makeTestEnv, stopChild, type TestEnv } from "../support/Harness.js"

const TOKEN = "secret-token"
const MAX_BODY = 2048

const envs: Array<TestEnv> = []
const children: Array<ChildProcess> = []

const stopAll = async () => {
  await Promise.all(children.splice(0).map(stopChild))
  for (const env of envs.splice(0)) env.cleanup()
}

/** The server's environment: the test's home and socket; no inherited HTTP settings or agent identity. */
const serverEnv = (env: TestEnv, extra: Record<string, string> = {}): Record<string, string> => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] =>
      e[1] !== undefined && !/^SPAWNKIT_(AGENT_ID|AGENT_SECRET|TASK_ID|HTTP_)/.test(e[0])
    )
  ),
  ...env.env,
  ...extra
})

interface Server {
  readonly child: ChildProcess
  readonly port: number
  /** The URL requests are sent to: always 127.0.0.1, whatever address the server listens on. */
  readonly url: string
  readonly env: TestEnv
}

/** Start `serve --http` with `args` and resolve once it logs the address it listens on. */
const startServer = (args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  new Promise<Server>((resolve, reject) => {
    const env = makeTestEnv()
    envs.push(env)
    const child = spawnProcess(process.execPath, [CLI, "serve", "--http", "--port", "0", ...args], {
      env: serverEnv(env, extraEnv),
      stdio: ["ignore", "ignore", "pipe"]
    })
    children.push(child)
    let stderr = ""
    const timer = setTimeout(() => reject(new Error(`server did not start within 120 s: ${stderr}`)), 120_000)
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d
      const match = /spawnkit MCP server on http:\/\/(\S+):(\d+)\/mcp/.exec(stderr)
      if (match !== null) {
        clearTimeout(timer)
        const port = Number(match[2])
        resolve({ child, port, url: `http://127.0.0.1:${port}/mcp`, env })
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening: ${stderr}`))
    })
  })

// ---------------------------------------------------------------------------------------------------------------------
// Requests

const JSON_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }
const BEARER = { authorization: `Bearer ${TOKEN}` }

let nextId = 1
const rpc = (method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: "2.0", id: nextId++, method, params })
const initialize = () =>
  rpc("initialize", {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "security-test", version: "1.0.0" }
  })
const toolCall = (name: string, args: Record<string, unknown>) => rpc("tools/call", { name, arguments: args })
const createTask = () => toolCall("create_real_task", { description: "must not exist unless authorized" })
const deploy = (taskId: string, prompt: string) =>
  toolCall("deploy_headless_agent", { task_id: taskId, agent_type: "probe", prompt })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const postRaw = async (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
  const res = await fetch(url, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

const isInitialize = (body: unknown) =>
  typeof body === "object" && body !== null && (body as { method?: unknown }).method === "initialize"

/**
 * POST a JSON-RPC body as a client would: anything but an initialize goes into an MCP session opened with the same
 * headers first. A refused initialize (401, 403, …) is returned as the reply, since the body would be refused alike.
 */
const post = async (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
  if (typeof body === "string" || isInitialize(body) || "mcp-session-id" in headers) return postRaw(url, body, headers)
  const init = await postRaw(url, initialize(), headers)
  const sessionId = init.headers.get("mcp-session-id")
  if (init.status !== 200 || sessionId === null) return init
  const version = JSON.parse(init.text).result.protocolVersion as string
  return postRaw(url, body, { ...headers, "mcp-session-id": sessionId, "mcp-protocol-version": version })
}

/** The JSON-RPC result of a successful reply (the server answers with JSON, not SSE). */
const resultOf = (reply: Reply): any => {
  expect(reply.status, reply.text).toBe(200)
  const message = JSON.parse(reply.text)
  expect(message.error, reply.text).toBeUndefined()
  return message.result
}

/** A POST over node:http, which (unlike fetch) lets the test set the Host header. */
const rawPost = (port: number, host: string, body: unknown) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = Http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/mcp",
        method: "POST",
        headers: { ...JSON_HEADERS, ...BEARER, host }
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8").on("data", (d: string) => (text += d)).on(
          "end",
          () => resolve({ status: res.statusCode!, text })
        )
      }
    )
    req.on("error", reject)
    req.end(JSON.stringify(body))
  })

// ---------------------------------------------------------------------------------------------------------------------
// What a request may change: the files under the home (names, sizes, contents) and the tmux sessions

/**
 * Everything a request could change: files under the home with their bytes, and the live sessions. Agents' logs are
 * left out: an agent spawned by an earlier (authorized) request creates and writes its log on its own schedule.
 */
const snapshot = (env: TestEnv) => {
  const files: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
      const path = NodePath.join(dir, entry.name)
      if (entry.isFile() && NodePath.basename(dir) === "logs") continue
      // The server's supervisor marks its presence there when it starts, whatever the requests.
      if (entry.name === ".spawnkit-exits" && dir === env.home) continue
      if (entry.isDirectory()) {
        files.push(`${NodePath.relative(env.home, path)}/`)
        walk(path)
      } else {
        files.push(`${NodePath.relative(env.home, path)} ${Fs.readFileSync(path).toString("base64")}`)
      }
    }
  }
  walk(env.home)
  return { files: files.sort(), sessions: liveSessions(env.socket).sort() }
}

const taskDirs = (env: TestEnv) => Fs.readdirSync(env.home).filter((n) => n.startsWith("TASK-"))

/** Send a request that must be refused with `status`, and check that it changed nothing. */
const expectRefused = async (server: Server, status: number, send: () => Promise<{ status: number; text: string }>) => {
  const before = snapshot(server.env)
  const reply = await send()
  expect(reply.status, reply.text).toBe(status)
  const message = JSON.parse(reply.text)
  expect(message).toMatchObject({ jsonrpc: "2.0", error: { code: -32000 } })
  expect(snapshot(server.env)).toEqual(before)
  return message.error.message as string
}

// ---------------------------------------------------------------------------------------------------------------------
// Listening

const ssListening = (port: number) => {
  const r = spawnSync("ss", ["-ltnH"], { encoding: "utf8" })
  expect(r.status, `ss -ltn failed: ${r.stderr}`).toBe(0)
  return r.stdout.split("\n").some((line) => new RegExp(`:${port}\\s`).test(line))
}

const connectRefused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"))
  })

/** A port that was free a moment ago. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Start a server that must refuse to start: it must exit non-zero, and never listen on `port` while it runs. */
const expectRefusesToStart = async (
  args: ReadonlyArray<string>,
  port: number,
  extraEnv: Record<string, string> = {}
) => {
  const env = makeTestEnv()
  envs.push(env)
  const child = spawnProcess(process.execPath, [CLI, "serve", "--http", "--port", String(port), ...args], {
    env: serverEnv(env, extraEnv),
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.push(child)
  let output = ""
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  let done = false
  void exited.then(() => (done = true))
  let sawListening = false
  const deadline = Date.now() + 30_000
  while (!done) {
    if (ssListening(port)) sawListening = true
    if (Date.now() > deadline) throw new Error(`server with ${args.join(" ")} still running after 30 s: ${output}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const code = await exited
  expect(code, output).not.toBe(0)
  expect(code, output).not.toBeNull()
  expect(output).toMatch(/InvalidConfiguration/)
  expect(output).toMatch(/not a loopback address/)
  expect(output).toMatch(/SPAWNKIT_HTTP_TOKEN \(or --token\)/)
  expect(sawListening, `something listened on port ${port}`).toBe(false)
  expect(ssListening(port)).toBe(false)
  expect(await connectRefused(port)).toBe(true)
  expect(liveSessions(env.socket)).toEqual([])
  expect(taskDirs(env)).toEqual([])
}

// ---------------------------------------------------------------------------------------------------------------------

describe("HTTP server with a token on loopback", () => {
  let server: Server
  beforeAll(async () => {
    expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)
    server = await startServer(["--token", TOKEN], { SPAWNKIT_HTTP_MAX_BODY_BYTES: String(MAX_BODY) })
  })
  afterAll(stopAll)

  it("no token or a wrong one -> 401 and nothing changes; the right token does change things", async () => {
    const wrong: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer wrong-token" },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: TOKEN },
      { authorization: `Basic ${Buffer.from(`user:${TOKEN}`).toString("base64")}` },
      { authorization: "Bearer " }
    ]
    for (const headers of wrong) {
      const message = await expectRefused(server, 401, () => post(server.url, createTask(), headers))
      expect(message).toContain("bearer token")
    }
    const unauthorized = await post(server.url, initialize())
    expect(unauthorized.status).toBe(401)
    expect(unauthorized.headers.get("www-authenticate")).toBe("Bearer")
    expect(taskDirs(server.env)).toEqual([])

    // The same request with the token creates a task: the refusals above did refuse a change.
    const created = resultOf(await post(server.url, createTask(), BEARER))
    expect(created.isError).toBeUndefined()
    const taskId = created.structuredContent.task_id as string
    expect(taskDirs(server.env)).toEqual([taskId])

    // Spawning: refused without the token (no session, no record), done with it.
    for (const headers of wrong.slice(0, 2)) {
      await expectRefused(server, 401, () => post(server.url, deploy(taskId, "unauthorized spawn"), headers))
    }
    expect(liveSessions(server.env.socket)).toEqual([])
    const spawned = resultOf(await post(server.url, deploy(taskId, "authorized spawn"), BEARER))
    expect(spawned.isError, JSON.stringify(spawned)).toBeUndefined()
    expect(liveSessions(server.env.socket)).toEqual([spawned.structuredContent.tmux_session])
  })

  it("a foreign Origin -> 403, with or without the token, and nothing changes", async () => {
    const foreign = [
      "http://evil.example",
      `http://evil.example:${server.port}`,
      "https://evil.example",
      "http://localhost.evil.example",
      "http://127.0.0.1.evil.example",
      "null",
      "file://"
    ]
    for (const origin of foreign) {
      for (const auth of [BEARER, {}]) {
        const message = await expectRefused(server, 403, () => post(server.url, createTask(), { ...auth, origin }))
        expect(message).toBe(`Origin ${origin} is not allowed`)
      }
    }
  })

  it("a loopback Origin with the token works: initialize and tools/list", async () => {
    for (const origin of [`http://localhost:${server.port}`, `http://127.0.0.1:${server.port}`, "http://[::1]:5173"]) {
      const init = resultOf(await post(server.url, initialize(), { ...BEARER, origin }))
      expect(init.serverInfo).toEqual({ name: "spawnkit", version: "0.1.0" })
      expect(init.capabilities.tools).toBeDefined()
      const list = resultOf(
        await post(server.url, rpc("tools/list"), { ...BEARER, origin, "mcp-protocol-version": init.protocolVersion })
      )
      const names = (list.tools as Array<{ name: string }>).map((t) => t.name)
      expect(names).toEqual(expect.arrayContaining(["create_real_task", "deploy_headless_agent", "kill_real_agent"]))
    }
    // Without any Origin header (a non-browser client), the token alone is enough.
    expect(resultOf(await post(server.url, initialize(), BEARER)).serverInfo.name).toBe("spawnkit")
  })

  it("a Host header that is not loopback -> 403 (DNS rebinding), even with the token", async () => {
    for (
      const host of [
        "evil.example",
        `evil.example:${server.port}`,
        `192.0.2.1:${server.port}`,
        `localhost.evil.example:${server.port}`
      ]
    ) {
      const message = await expectRefused(server, 403, () => rawPost(server.port, host, createTask()))
      expect(message).toBe("Host header must name a loopback address")
    }
    // The same raw request with a loopback Host is served.
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`]) {
      const reply = await rawPost(server.port, host, initialize())
      expect(reply.status, reply.text).toBe(200)
      expect(JSON.parse(reply.text).result.serverInfo.name).toBe("spawnkit")
    }
  })

  it(`a body over SPAWNKIT_HTTP_MAX_BODY_BYTES (${MAX_BODY}) -> 413, and nothing changes`, async () => {
    const big = JSON.stringify({
      ...createTask(),
      params: { name: "create_real_task", arguments: { description: "x".repeat(10_000) } }
    })
    expect(big.length).toBeGreaterThan(MAX_BODY)
    const message = await expectRefused(server, 413, () => post(server.url, big, BEARER))
    expect(message).toBe(`Request body over ${MAX_BODY} bytes`)
    // Much larger (the client is still sending when the limit is passed), and without a Content-Length (chunked):
    // still a 413 every time, never a reset connection or EPIPE.
    for (let n = 0; n < 5; n++) await expectRefused(server, 413, () => post(server.url, "y".repeat(2_000_000), BEARER))
    await expectRefused(server, 413, async () => {
      const chunks = Array.from({ length: 10 }, () => new TextEncoder().encode(" ".repeat(1000)))
      const res = await fetch(server.url, {
        method: "POST",
        headers: { ...JSON_HEADERS, ...BEARER },
        body: new ReadableStream({
          start(controller) {
            for (const chunk of chunks) controller.enqueue(chunk)
            controller.close()
          }
        }),
        duplex: "half"
      } as RequestInit)
      return { status: res.status, text: await res.text() }
    })
    // A body under the limit is served, and the server is still up.
    const small = JSON.stringify(initialize())
    expect(small.length).toBeLessThan(MAX_BODY)
    expect(resultOf(await post(server.url, small, BEARER)).serverInfo.name).toBe("spawnkit")
  })

  it("PUT and PATCH -> 405 with Allow: GET, POST, DELETE; GET needs a session; DELETE ends a session", async () => {
    for (const method of ["PUT", "PATCH"]) {
      const before = snapshot(server.env)
      const res = await fetch(server.url, { method, headers: { ...BEARER, accept: "text/event-stream" } })
      expect(res.status, method).toBe(405)
      expect(res.headers.get("allow")).toBe("GET, POST, DELETE")
      expect(JSON.parse(await res.text()).error.code).toBe(-32000)
      expect(snapshot(server.env)).toEqual(before)
    }
    const getWithout = await fetch(server.url, { method: "GET", headers: { ...BEARER, accept: "text/event-stream" } })
    expect(getWithout.status).toBe(400)
    const getUnknown = await fetch(server.url, {
      method: "GET",
      headers: { ...BEARER, accept: "text/event-stream", "mcp-session-id": "no-such-session" }
    })
    expect(getUnknown.status).toBe(404)
    const noSession = await fetch(server.url, { method: "DELETE", headers: BEARER })
    expect(noSession.status).toBe(404)
    const init = await postRaw(server.url, initialize(), BEARER)
    const sessionId = init.headers.get("mcp-session-id")
    expect(sessionId).toBeTruthy()
    const ended = await fetch(server.url, { method: "DELETE", headers: { ...BEARER, "mcp-session-id": sessionId! } })
    expect(ended.status).toBe(200)
    const after = await postRaw(server.url, rpc("tools/list"), { ...BEARER, "mcp-session-id": sessionId! })
    expect(after.status).toBe(404)
  })
})

describe("HTTP server token from SPAWNKIT_HTTP_TOKEN", () => {
  afterEach(stopAll)

  it("the environment variable works like --token", async () => {
    const server = await startServer([], { SPAWNKIT_HTTP_TOKEN: TOKEN })
    await expectRefused(server, 401, () => post(server.url, createTask()))
    await expectRefused(server, 401, () => post(server.url, createTask(), { authorization: "Bearer nope" }))
    await expectRefused(server, 403, () => post(server.url, createTask(), { ...BEARER, origin: "http://evil.example" }))
    expect(resultOf(await post(server.url, initialize(), BEARER)).serverInfo.name).toBe("spawnkit")
  })
})

describe("HTTP server on a non-loopback address", () => {
  afterEach(stopAll)

  const nonLoopback = Object.values(Os.networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address

  it("0.0.0.0 without a token (flag, env, empty token) fails to start and never listens", async () => {
    await expectRefusesToStart(["--host", "0.0.0.0"], await freePort())
    await expectRefusesToStart([], await freePort(), { SPAWNKIT_HTTP_HOST: "0.0.0.0" })
    await expectRefusesToStart(["--host", "0.0.0.0", "--token", ""], await freePort())
    await expectRefusesToStart(["--host", "0.0.0.0"], await freePort(), { SPAWNKIT_HTTP_TOKEN: "" })
    await expectRefusesToStart(["--host", "::"], await freePort())
  }, 300_000)

  it("this machine's own non-loopback address without a token fails to start and never listens", async () => {
    expect(nonLoopback, "this machine has no non-loopback IPv4 address").toBeDefined()
    await expectRefusesToStart(["--host", nonLoopback!], await freePort())
  })

  it("0.0.0.0 with a token starts; requests (sent to 127.0.0.1) need the token", async () => {
    const server = await startServer(["--host", "0.0.0.0", "--token", TOKEN])
    expect(ssListening(server.port)).toBe(true)
    await expectRefused(server, 401, () => post(server.url, createTask()))
    await expectRefused(server, 401, () => post(server.url, createTask(), { authorization: "Bearer wrong-token" }))
    await expectRefused(server, 403, () => post(server.url, createTask(), { ...BEARER, origin: "http://evil.example" }))
    const init = resultOf(await post(server.url, initialize(), BEARER))
    expect(init.serverInfo.name).toBe("spawnkit")
    const created = resultOf(await post(server.url, createTask(), BEARER))
    expect(taskDirs(server.env)).toEqual([created.structuredContent.task_id])
  })
})
