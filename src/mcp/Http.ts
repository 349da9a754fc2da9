/**
 * Streamable HTTP transport for a shared server, following the MCP specification's security guidance: loopback by
 * default, a bearer token required on any other address, Origin (and, on loopback, Host) validated against DNS
 * rebinding, and a request body limit. One SDK server and transport per MCP session (`Mcp-Session-Id`), so a client's
 * `notifications/cancelled` reaches the call it cancels; closing the connection of a call cancels it too.
 */
import { randomUUID, timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import * as Effect from "effect/Effect"
import { InvalidInput } from "../domain/Errors.js"
import { type InFlight, makeServer, type ToolRuntime } from "./Server.js"

/** Settings of the HTTP server. */
export interface HttpSettings {
  readonly host: string
  readonly port: number
  /** Bearer token every request must carry; required on a non-loopback address. */
  readonly token: string | undefined
  /** Origins allowed besides loopback ones (exact match, e.g. `https://app.example`). */
  readonly allowedOrigins: ReadonlyArray<string>
  readonly maxBodyBytes: number
}

/** Path the MCP endpoint is served on. */
export const MCP_PATH = "/mcp"

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"])

/** Whether an address or host name is loopback. */
export const isLoopback = (host: string) => LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host)

const hostName = (hostHeader: string) => {
  const match = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader)
  return match?.[1]?.toLowerCase()
}

const originAllowed = (origin: string, settings: HttpSettings) => {
  if (settings.allowedOrigins.includes(origin)) return true
  const parsed = URL.canParse(origin) ? new URL(origin) : undefined
  return parsed !== undefined && (parsed.protocol === "http:" || parsed.protocol === "https:") &&
    isLoopback(parsed.hostname)
}

const tokenMatches = (header: string | undefined, token: string) => {
  const given = Buffer.from(header?.startsWith("Bearer ") ? header.slice(7) : "")
  const expected = Buffer.from(token)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

const refuse = (res: Http.ServerResponse, status: number, message: string, headers: Http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }))
}

// A body over the limit is read to its end and discarded (memory stays bounded by the limit; Node's requestTimeout
// bounds the time), and only then refused: a client still sending would otherwise get a reset connection or EPIPE
// instead of the 413.
const readBody = (req: Http.IncomingMessage, limit: number) =>
  new Promise<Buffer | "too large">((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
      else chunks.length = 0
    })
    req.on("end", () => resolve(size > limit ? "too large" : Buffer.concat(chunks)))
    req.on("error", reject)
  })

const handle = async (
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  settings: HttpSettings,
  runtime: ToolRuntime,
  inFlight: InFlight,
  sessions: Map<string, StreamableHTTPServerTransport>
) => {
  const url = new URL(req.url ?? "/", "http://localhost")
  if (url.pathname !== MCP_PATH) return refuse(res, 404, `Not found: the MCP endpoint is ${MCP_PATH}`)
  const origin = req.headers.origin
  if (origin !== undefined && !originAllowed(origin, settings)) {
    return refuse(res, 403, `Origin ${origin} is not allowed`)
  }
  if (isLoopback(settings.host)) {
    const host = hostName(req.headers.host ?? "")
    if (host === undefined || !isLoopback(host)) return refuse(res, 403, "Host header must name a loopback address")
  }
  if (settings.token !== undefined && !tokenMatches(req.headers.authorization, settings.token)) {
    return refuse(res, 401, "Missing or wrong bearer token", { "www-authenticate": "Bearer" })
  }
  if (req.method === "DELETE") {
    const id = req.headers["mcp-session-id"]
    const session = typeof id === "string" ? sessions.get(id) : undefined
    if (session === undefined) return refuse(res, 404, "Unknown or expired MCP session")
    return session.handleRequest(req, res)
  }
  if (req.method !== "POST") {
    return refuse(res, 405, "Only POST (and DELETE of a session) is supported; the server sends no SSE stream", {
      allow: "POST, DELETE"
    })
  }
  const body = await readBody(req, settings.maxBodyBytes)
  if (body === "too large") {
    return refuse(res, 413, `Request body over ${settings.maxBodyBytes} bytes`, { connection: "close" })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString("utf8"))
  } catch {
    return refuse(res, 400, "Request body is not JSON")
  }
  const sessionId = req.headers["mcp-session-id"]
  if (typeof sessionId === "string") {
    const session = sessions.get(sessionId)
    if (session === undefined) return refuse(res, 404, "Unknown or expired MCP session; initialize a new one")
    cancelOnDisconnect(res, session, parsed)
    return session.handleRequest(req, res, parsed)
  }
  if (sessions.size >= MAX_SESSIONS) return refuse(res, 503, `Too many open MCP sessions (${MAX_SESSIONS})`)
  // A new session: one SDK server and transport per client, so the client's notifications/cancelled reach the
  // server that runs the call and interrupt it.
  const server = makeServer(runtime, inFlight)
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    enableJsonResponse: true,
    onsessioninitialized: (id) => {
      sessions.set(id, transport)
    }
  })
  transport.onclose = () => {
    if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
    void server.close()
  }
  await server.connect(transport)
  cancelOnDisconnect(res, transport, parsed)
  await transport.handleRequest(req, res, parsed)
  // A request that did not open a session (e.g. not an initialize) leaves nothing behind.
  if (transport.sessionId === undefined) await transport.close()
}

/** Ids of the JSON-RPC requests in a POST body (a message or a batch). */
const requestIds = (body: unknown): Array<string | number> =>
  (Array.isArray(body) ? body : [body]).flatMap((m) =>
    typeof m === "object" && m !== null && "method" in m && "id" in m &&
      (typeof m.id === "string" || typeof m.id === "number")
      ? [m.id]
      : []
  )

/**
 * Treat a connection that closes before its response as the client cancelling the calls it carried: hand the
 * session's server a `notifications/cancelled` for each, which aborts their handlers and interrupts their fibers.
 */
const cancelOnDisconnect = (res: Http.ServerResponse, transport: StreamableHTTPServerTransport, body: unknown) => {
  const ids = requestIds(body)
  if (ids.length === 0) return
  res.on("close", () => {
    if (res.writableFinished) return
    for (const requestId of ids) {
      transport.onmessage?.({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId, reason: "the client closed the connection" }
      })
    }
  })
}

/** Most MCP sessions open at once; each is closed by the client's DELETE or when the server stops. */
export const MAX_SESSIONS = 1000

/** Serve MCP over HTTP until interrupted; refuses a non-loopback address without a token. */
export const serveHttp = (settings: HttpSettings, runtime: ToolRuntime, inFlight: InFlight) =>
  Effect.gen(function*() {
    // An empty token (`--token ""`) would match a request without credentials: it counts as none.
    if (!isLoopback(settings.host) && (settings.token === undefined || settings.token.length === 0)) {
      return yield* new InvalidInput({
        field: "host",
        reason: `${settings.host} is not a loopback address; set SPAWNKIT_HTTP_TOKEN (or --token) to a non-empty token to serve on it`
      })
    }
    const sessions = new Map<string, StreamableHTTPServerTransport>()
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.all([...sessions.values()].map((t) => t.close()))).pipe(Effect.asVoid)
    )
    const server = yield* Effect.acquireRelease(
      Effect.callback<Http.Server, InvalidInput>((resume) => {
        const server = Http.createServer((req, res) => {
          handle(req, res, settings, runtime, inFlight, sessions).catch((error: unknown) => {
            if (!res.headersSent) refuse(res, 500, error instanceof Error ? error.message : String(error))
          })
        })
        server.once("error", (e) => resume(Effect.fail(new InvalidInput({ field: "port", reason: e.message }))))
        server.listen(settings.port, settings.host, () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : settings.port
    yield* Effect.logInfo(`spawnkit MCP server on http://${settings.host}:${port}${MCP_PATH}`)
    return port
  })
