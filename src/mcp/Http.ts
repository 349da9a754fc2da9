/**
 * Streamable HTTP transport for a shared server, following the MCP specification's security guidance: loopback by
 * default, a bearer token on every request (the orchestrator's, or an agent's own), Origin (and, on loopback, Host) validated against DNS
 * rebinding, and a request body limit. One SDK server and transport per MCP session (`Mcp-Session-Id`), so a client's
 * `notifications/cancelled` reaches the call it cancels; closing the connection of a call cancels it too.
 *
 * Sessions are bounded: one idle for SPAWNKIT_HTTP_SESSION_IDLE_SECONDS is closed, and at SPAWNKIT_HTTP_MAX_SESSIONS
 * the least recently used one without a call in flight makes room for a new client. Every request is answered: a
 * call whose session closes (DELETE, shutdown) or that its client cancels gets a JSON-RPC error, since the SDK sends
 * nothing for an aborted request and would leave its POST open. Answers are JSON; a session's GET opens its
 * notification stream (SSE) for log messages and resource updates.
 */
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import {
  ErrorCode,
  isInitializeRequest,
  isJSONRPCNotification,
  type RequestId
} from "@modelcontextprotocol/sdk/types.js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import { randomUUID } from "node:crypto"
import * as Http from "node:http"
import { parseAgentToken } from "../domain/AgentToken.js"
import { errnoCode, InvalidConfiguration, ServerBindFailed } from "../domain/Errors.js"
import { type Caller, callerOfToken, sameCaller, sameSecret } from "./Caller.js"
import { describeFailure } from "./Calls.js"
import { type DashboardContext, DashboardSessions, handleDashboard, isDashboardPath } from "./Dashboard.js"
import { EVENTS_PATH, serveEvents } from "./EventStream.js"
import { expiredSessions, sessionToEvict, type SessionUse } from "./HttpSessions.js"
import type { LogSink } from "./Logging.js"
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
  /** Most MCP sessions open at once. */
  readonly maxSessions: number
  /** A session without a call in flight for this long is closed. */
  readonly sessionIdleSeconds: number
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

const bearerOf = (header: string | undefined) => (header?.startsWith("Bearer ") ? header.slice(7) : undefined)

/**
 * Who a request comes from, by its bearer token: the server's own token is the orchestrator; an agent token (see
 * domain/AgentToken.ts) is that agent while it holds its slot. Anything else is refused (401): no token, a wrong one,
 * and an agent token of an agent that ended. A server given no token of its own (a broker beside a stdio server)
 * serves agents only.
 */
const authenticate = (
  state: ServerState,
  req: Http.IncomingMessage
): Promise<Caller | { readonly status: number; readonly message: string }> => {
  const bearer = bearerOf(req.headers.authorization)
  return bearer === undefined
    ? Promise.resolve({ status: 401, message: "Missing or wrong bearer token" })
    : authenticateToken(state, bearer)
}

/** Who a token is: the orchestrator's credential, or an agent's token while it lives; else why not. */
const authenticateToken = async (
  state: ServerState,
  bearer: string
): Promise<Caller | { readonly status: number; readonly message: string }> => {
  const { token } = state.settings
  if (token !== undefined && sameSecret(bearer, token)) return ORCHESTRATOR_CALLER
  const parts = parseAgentToken(bearer)
  if (parts === undefined) return { status: 401, message: "Missing or wrong bearer token" }
  const exit = await state.runtime.runPromiseExit(callerOfToken(parts))
  return Exit.isSuccess(exit)
    ? exit.value
    : { status: 401, message: `Agent token refused: ${describeFailure(exit.cause)}` }
}

const ORCHESTRATOR_CALLER: Caller = { _tag: "Orchestrator" }

/** Why a request from another site is refused (a foreign Origin; on loopback, a foreign Host), if it is. */
const foreignRequest = (req: Http.IncomingMessage, settings: HttpSettings): string | undefined => {
  const origin = req.headers.origin
  if (origin !== undefined && !originAllowed(origin, settings)) return `Origin ${origin} is not allowed`
  if (isLoopback(settings.host)) {
    const host = hostName(req.headers.host ?? "")
    if (host === undefined || !isLoopback(host)) return "Host header must name a loopback address"
  }
  return undefined
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

/** An open MCP session. */
interface Session {
  readonly id: string
  /** Who opened it (its bearer token's principal); every request of the session must come from the same. */
  readonly caller: Caller
  readonly transport: StreamableHTTPServerTransport
  lastUsedMs: number
  /** Requests received and not answered yet, each with its POST's end (answered, or its connection closed). */
  readonly open: Map<RequestId, Promise<void>>
}

/** What the requests of one server share. */
interface ServerState {
  readonly settings: HttpSettings
  readonly runtime: ToolRuntime
  readonly inFlight: InFlight
  readonly logs: LogSink
  readonly sessions: Map<string, Session>
  /** Sessions being initialized: admitted, not in `sessions` yet, so they count against the cap. */
  opening: number
  stopping: boolean
  readonly log: (message: string) => void
  /** The dashboard's logged-in browsers. */
  readonly dashboard: DashboardSessions
}

const dashboardContext = (state: ServerState): DashboardContext => ({
  runtime: state.runtime,
  inFlight: state.inFlight,
  sessions: state.dashboard,
  callerOfToken: async (token) => {
    const caller = await authenticateToken(state, token)
    return "_tag" in caller ? caller : undefined
  },
  readBody,
  refuse: (res, status, message) => refuse(res, status, message)
})

const now = () => performance.now()

const usesOf = (state: ServerState): Array<SessionUse> =>
  [...state.sessions.values()].map((s) => ({ id: s.id, lastUsedMs: s.lastUsedMs, callsInFlight: s.open.size }))

/** Answer a request whose handler will send nothing (it was aborted) with a JSON-RPC error, ending its POST. */
const answerCancelled = (transport: StreamableHTTPServerTransport, requestId: RequestId, reason: string) => {
  transport.send({
    jsonrpc: "2.0",
    id: requestId,
    error: { code: ErrorCode.ConnectionClosed, message: `Cancelled: ${reason}; the call was interrupted.` }
  }).catch(() => {
    // Already answered (the call ended first): its POST is closed, nothing is left to answer.
  })
}

/** Interrupt a session's calls in flight and answer each, saying why. */
const cancelOpenCalls = (session: Session, reason: string) => {
  for (const requestId of session.open.keys()) {
    session.transport.onmessage?.({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId, reason } })
    answerCancelled(session.transport, requestId, reason)
  }
}

/**
 * Close a session the server ends (idle, evicted, shutdown): its calls in flight are answered first, and it resolves
 * once their POSTs have ended. The transport's onclose closes the session's SDK server.
 */
const closeSession = async (state: ServerState, session: Session, reason: string) => {
  state.sessions.delete(session.id)
  const answered = [...new Set(session.open.values())]
  cancelOpenCalls(session, reason)
  await session.transport.close()
  await Promise.all(answered)
}

/** Mark a session used by a request, and the request's calls in flight until their POST is answered or closed. */
const track = (session: Session, res: Http.ServerResponse, body: unknown) => {
  session.lastUsedMs = now()
  const ids = requestIds(body)
  if (ids.length === 0) return
  const answered = new Promise<void>((resolve) => {
    res.on("close", () => {
      for (const id of ids) session.open.delete(id)
      session.lastUsedMs = now()
      resolve()
    })
  })
  for (const id of ids) session.open.set(id, answered)
}

/** The requests a body's `notifications/cancelled` cancel. */
const cancelledIds = (body: unknown): Array<RequestId> =>
  (Array.isArray(body) ? body : [body]).flatMap((m) =>
    isJSONRPCNotification(m) && m.method === "notifications/cancelled" && m.params !== undefined &&
      (typeof m.params["requestId"] === "string" || typeof m.params["requestId"] === "number")
      ? [m.params["requestId"]]
      : []
  )

const shortId = (id: string) => id.slice(0, 8)

/**
 * Where a new session fits: under the cap, or in place of the least recently used session without a call in flight;
 * "full" when every session has a call in flight.
 */
const roomFor = (state: ServerState): "free" | "full" | Session => {
  if (state.sessions.size + state.opening < state.settings.maxSessions) return "free"
  const victim = sessionToEvict(usesOf(state))
  return (victim === undefined ? undefined : state.sessions.get(victim)) ?? "full"
}

const evict = async (state: ServerState, session: Session) => {
  const idleSeconds = Math.round((now() - session.lastUsedMs) / 1000)
  await closeSession(state, session, "the session was evicted")
  state.log(
    `closed MCP session ${shortId(session.id)}… (least recently used, idle ${idleSeconds} s) to admit a new client: ` +
      `${state.settings.maxSessions} sessions open (SPAWNKIT_HTTP_MAX_SESSIONS)`
  )
}

/**
 * Serve a POST without a session: one SDK server and transport per client, so the client's notifications/cancelled
 * reach the server that runs the call and interrupt it. Only an initialize opens a session.
 */
const openSession = async (
  state: ServerState,
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  body: unknown,
  caller: Caller
) => {
  const server = makeServer(state.runtime, state.inFlight, state.logs, caller)
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    enableJsonResponse: true,
    onsessioninitialized: (id) => {
      state.sessions.set(id, { id, caller, transport, lastUsedMs: now(), open: new Map() })
    },
    onsessionclosed: (id) => {
      const session = state.sessions.get(id)
      if (session !== undefined) cancelOpenCalls(session, "the client ended the MCP session (DELETE)")
    }
  })
  transport.onclose = () => {
    if (transport.sessionId !== undefined) state.sessions.delete(transport.sessionId)
    void server.close()
  }
  await server.connect(transport)
  cancelOnDisconnect(res, transport, body)
  await transport.handleRequest(req, res, body)
  // A request that did not open a session (e.g. not an initialize) leaves nothing behind.
  if (transport.sessionId === undefined) await transport.close()
}

/**
 * DELETE of a session ends it: the SDK's transport calls onsessionclosed (which answers the calls in flight), then
 * closes.
 */
const endSession = (state: ServerState, req: Http.IncomingMessage, res: Http.ServerResponse) => {
  const id = req.headers["mcp-session-id"]
  const session = typeof id === "string" ? state.sessions.get(id) : undefined
  if (session === undefined) return refuse(res, 404, "Unknown or expired MCP session")
  return session.transport.handleRequest(req, res)
}

/**
 * GET with a session's id opens that session's notification stream (the SDK's standalone SSE stream): progress of
 * long calls, log messages and resource updates, which answer no request. At most one per session. It is no call in
 * flight: it does not keep the session from expiring or from being evicted, and closing the session ends it.
 */
const openNotificationStream = (state: ServerState, req: Http.IncomingMessage, res: Http.ServerResponse) => {
  const id = req.headers["mcp-session-id"]
  if (typeof id !== "string") {
    return refuse(res, 400, "GET opens an MCP session's notification stream: send the session's Mcp-Session-Id")
  }
  const session = state.sessions.get(id)
  if (session === undefined) return refuse(res, 404, "Unknown or expired MCP session; initialize a new one")
  session.lastUsedMs = now()
  return session.transport.handleRequest(req, res)
}

const NOT_FOUND = `Not found: the MCP endpoint is ${MCP_PATH}, the event stream ${EVENTS_PATH}, the dashboard /`

/** Who sends a request: its bearer token; on the event stream without one, the dashboard session of its cookie. */
const callerOf = async (state: ServerState, req: Http.IncomingMessage, url: URL) => {
  const session = req.headers.authorization === undefined && url.pathname === EVENTS_PATH
    ? state.dashboard.of(req)
    : undefined
  return session !== undefined ? session.caller : authenticate(state, req)
}

/** A dashboard request: a bearer token, when sent, must be valid; without one its cookie says who it is. */
const serveDashboard = async (state: ServerState, req: Http.IncomingMessage, res: Http.ServerResponse, url: URL) => {
  const bearer = req.headers.authorization === undefined ? undefined : await authenticate(state, req)
  if (bearer !== undefined && !("_tag" in bearer)) {
    return refuse(res, bearer.status, bearer.message, { "www-authenticate": "Bearer" })
  }
  return handleDashboard(dashboardContext(state), req, res, url, bearer)
}

const handle = async (req: Http.IncomingMessage, res: Http.ServerResponse, state: ServerState) => {
  const { settings } = state
  const url = new URL(req.url ?? "/", "http://localhost")
  const dashboard = isDashboardPath(url.pathname)
  if (url.pathname !== MCP_PATH && url.pathname !== EVENTS_PATH && !dashboard) return refuse(res, 404, NOT_FOUND)
  const foreign = foreignRequest(req, settings)
  if (foreign !== undefined) return refuse(res, 403, foreign)
  if (state.stopping) return refuse(res, 503, "The server is shutting down", { connection: "close" })
  if (dashboard) return serveDashboard(state, req, res, url)
  const caller = await callerOf(state, req, url)
  if (!("_tag" in caller)) return refuse(res, caller.status, caller.message, { "www-authenticate": "Bearer" })
  if (url.pathname === EVENTS_PATH) {
    if (req.method !== "GET") return refuse(res, 405, `${EVENTS_PATH} answers GET only`, { allow: "GET" })
    return serveEvents(
      state.runtime,
      state.inFlight,
      req,
      res,
      url,
      (status, message) => refuse(res, status, message),
      caller
    )
  }
  const sessionHeader = req.headers["mcp-session-id"]
  const named = typeof sessionHeader === "string" ? state.sessions.get(sessionHeader) : undefined
  // Security: a session is its opener's; a request naming it must come from the same principal.
  if (named !== undefined && !sameCaller(named.caller, caller)) {
    return refuse(res, 403, "This MCP session belongs to another caller")
  }
  if (req.method === "DELETE") return endSession(state, req, res)
  if (req.method === "GET") return openNotificationStream(state, req, res)
  if (req.method !== "POST") {
    return refuse(res, 405, "Only POST, GET (a session's notification stream) and DELETE (of a session) are served", {
      allow: "GET, POST, DELETE"
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
    const session = state.sessions.get(sessionId)
    if (session === undefined) return refuse(res, 404, "Unknown or expired MCP session; initialize a new one")
    track(session, res, parsed)
    cancelOnDisconnect(res, session.transport, parsed)
    await session.transport.handleRequest(req, res, parsed)
    // The notification has aborted the call's handler, which therefore sends nothing: its POST is answered here.
    for (const id of cancelledIds(parsed)) {
      if (session.open.has(id)) answerCancelled(session.transport, id, "the client cancelled the request")
    }
    return
  }
  const initializes = (Array.isArray(parsed) ? parsed : [parsed]).some((m) => isInitializeRequest(m))
  if (!initializes) return openSession(state, req, res, parsed, caller)
  // The place is taken before any await, so concurrent initializes never open more sessions than the cap.
  const room = roomFor(state)
  if (room === "full") {
    return refuse(
      res,
      503,
      `Too many open MCP sessions: all ${settings.maxSessions} (SPAWNKIT_HTTP_MAX_SESSIONS) have a call in flight; ` +
        "retry when one ends",
      { "retry-after": "1" }
    )
  }
  state.opening++
  try {
    if (room !== "free") await evict(state, room)
    await openSession(state, req, res, parsed, caller)
  } finally {
    state.opening--
  }
}

/** Ids of the JSON-RPC requests in a POST body (a message or a batch). */
const requestIds = (body: unknown): Array<RequestId> =>
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

// Idle sessions are looked for every quarter of the idle time, at most this long apart, so one is closed at most
// a quarter (or this long) after its idle time.
const MAX_SWEEP_INTERVAL = Duration.seconds(15)

/** Close the sessions idle for the idle time; logged when there were any. */
const closeIdleSessions = (state: ServerState) =>
  Effect.gen(function*() {
    const { sessionIdleSeconds } = state.settings
    const expired = expiredSessions(usesOf(state), now(), sessionIdleSeconds * 1000)
    if (expired.length === 0) return
    yield* Effect.promise(() =>
      Promise.all(expired.flatMap((id) => {
        const session = state.sessions.get(id)
        return session === undefined ? [] : [closeSession(state, session, "the session expired")]
      }))
    )
    yield* Effect.logInfo(
      `closed ${expired.length} MCP session(s) idle for ${sessionIdleSeconds} s (SPAWNKIT_HTTP_SESSION_IDLE_SECONDS)`
    )
  })

/**
 * Serve MCP over HTTP until interrupted; refuses a non-loopback address without a token. `onListening` runs once the
 * port is bound, before the server says where it listens.
 */
export const serveHttp = <E, R>(
  settings: HttpSettings,
  runtime: ToolRuntime,
  inFlight: InFlight,
  logs: LogSink,
  onListening: (port: number) => Effect.Effect<void, E, R> = () => Effect.void as Effect.Effect<void, E, R>
) =>
  Effect.gen(function*() {
    // An empty token (`--token ""`) would match a request without credentials: it counts as none.
    if (!isLoopback(settings.host) && (settings.token === undefined || settings.token.length === 0)) {
      return yield* new InvalidConfiguration({
        variable: "SPAWNKIT_HTTP_TOKEN",
        reason:
          `${settings.host} is not a loopback address; set SPAWNKIT_HTTP_TOKEN (or --token) to a non-empty token to serve on it`
      })
    }
    const runLogged = Effect.runForkWith(yield* Effect.context<never>())
    const state: ServerState = {
      settings,
      runtime,
      inFlight,
      logs,
      sessions: new Map(),
      opening: 0,
      stopping: false,
      dashboard: new DashboardSessions(),
      log: (message) => {
        runLogged(Effect.logInfo(message))
      }
    }
    const server = yield* Effect.acquireRelease(
      Effect.callback<Http.Server, ServerBindFailed>((resume) => {
        const server = Http.createServer((req, res) => {
          handle(req, res, state).catch((error: unknown) => {
            if (!res.headersSent) refuse(res, 500, error instanceof Error ? error.message : String(error))
          })
        })
        server.once("error", (e) => {
          const code = errnoCode(e)
          resume(Effect.fail(
            new ServerBindFailed({
              host: settings.host,
              port: settings.port,
              reason: e.message,
              ...(code === undefined ? {} : { code })
            })
          ))
        })
        server.listen(settings.port, settings.host, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    // Released before the listener: calls in flight are answered while their connections are still open.
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => {
        state.stopping = true
        return Promise.all(
          [...state.sessions.values()].map((s) => closeSession(state, s, "the server is shutting down"))
        )
      }).pipe(Effect.asVoid)
    )
    const sweepEvery = Duration.min(Duration.seconds(settings.sessionIdleSeconds / 4), MAX_SWEEP_INTERVAL)
    yield* closeIdleSessions(state).pipe(Effect.repeat(Schedule.spaced(sweepEvery)), Effect.forkScoped)
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : settings.port
    yield* onListening(port)
    yield* Effect.logInfo(`spawnkit MCP server on http://${settings.host}:${port}${MCP_PATH}`)
    yield* Effect.logInfo(`spawnkit event stream on http://${settings.host}:${port}${EVENTS_PATH} (Server-Sent Events)`)
    // The dashboard is the orchestrator's: a server with no orchestrator token (an agents-only broker) has none.
    if (settings.token !== undefined) {
      yield* Effect.logInfo(
        `spawnkit dashboard on http://${settings.host}:${port}/ (log in with the orchestrator's credential, or open ` +
          `http://${settings.host}:${port}/#token=<it>)`
      )
    }
    return port
  })
