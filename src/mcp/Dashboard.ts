/**
 * The dashboard `serve --http` serves at `/`: a page (built from src/dashboard/ into dist/dashboard/, served from
 * there: no CDN), its data (`/api/state`), an agent's output as it grows (`/api/output`, Server-Sent Events) and kills
 * (`POST /api/kill`). Live through the event stream (`/events`); no polling.
 *
 * Security, as `/mcp`: the Origin and Host checks run first (Http.ts); every request needs a credential. A browser
 * cannot send a bearer header on a navigation, so it logs in once: the login page takes the orchestrator's credential
 * (typed, or from the URL's fragment, which a browser never sends to the server; the page removes it from its address
 * and history) and POSTs it (`/login`, a body: never in a URL, so never in a log or the history). The answer is a
 * cookie `HttpOnly; SameSite=Strict` naming a dashboard session held in memory; a POST of the page also carries the
 * session's CSRF token in a header, and must be JSON. Bearer clients need neither.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import type * as Http from "node:http"
import * as NodePath from "node:path"
import { packageRoot } from "../host/PackagePaths.js"
import { kill } from "../lifecycle/Kill.js"
import { agentOutput, followOutput } from "../reports/AgentOutput.js"
import { listTasks } from "../tasks/Tasks.js"
import { workOf } from "../worktree/Work.js"
import { type Caller, sameSecret } from "./Caller.js"
import { describeFailure } from "./Calls.js"
import type { InFlight, ToolRuntime } from "./Server.js"

/** Whether a path is the dashboard's (its page, assets, data and login). */
export const isDashboardPath = (path: string) =>
  path === "/" || path === "/login" || path === "/logout" || path.startsWith("/dashboard/") ||
  path.startsWith("/api/")

const COOKIE = "spawnkit_dashboard"
/** Most dashboard sessions held; the oldest makes room. */
const MAX_SESSIONS = 100
/** A dashboard session unused for this long is gone. */
const SESSION_IDLE_MS = 12 * 60 * 60 * 1000

interface DashboardSession {
  readonly caller: Caller
  readonly csrf: string
  lastUsedMs: number
}

/** The dashboard sessions of one server, in memory (a restart logs everyone out). */
export class DashboardSessions {
  private readonly sessions = new Map<string, DashboardSession>()

  open(caller: Caller): { readonly id: string; readonly session: DashboardSession } {
    const id = randomBytes(32).toString("base64url")
    const session = { caller, csrf: randomBytes(24).toString("base64url"), lastUsedMs: Date.now() }
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = [...this.sessions.entries()].sort((a, b) => a[1].lastUsedMs - b[1].lastUsedMs)[0]
      if (oldest !== undefined) this.sessions.delete(oldest[0])
    }
    this.sessions.set(id, session)
    return { id, session }
  }

  /** The session a request's cookie names, if it is one and alive. */
  of(req: Http.IncomingMessage): DashboardSession | undefined {
    const id = cookieOf(req.headers.cookie, COOKIE)
    const session = id === undefined ? undefined : this.sessions.get(id)
    if (id === undefined || session === undefined) return undefined
    if (Date.now() - session.lastUsedMs > SESSION_IDLE_MS) {
      this.sessions.delete(id)
      return undefined
    }
    session.lastUsedMs = Date.now()
    return session
  }

  close(req: Http.IncomingMessage) {
    const id = cookieOf(req.headers.cookie, COOKIE)
    if (id !== undefined) this.sessions.delete(id)
  }
}

/** A cookie's value from a Cookie header (only a well-formed base64url value counts). */
export const cookieOf = (header: string | undefined, name: string): string | undefined => {
  for (const part of (header ?? "").split(";")) {
    const [key, value] = part.trim().split("=", 2)
    if (key === name && value !== undefined && /^[A-Za-z0-9_-]{16,128}$/.test(value)) return value
  }
  return undefined
}

/** Where the built page's assets are (npm run build). */
const assetsDir = () => NodePath.join(packageRoot, "dist", "dashboard")

const ASSETS: Readonly<Record<string, string>> = {
  "/dashboard/app.js": "text/javascript; charset=utf-8",
  "/dashboard/app.css": "text/css; charset=utf-8"
}

/** Headers of every dashboard answer: no caching of data, no framing, no sniffing, nothing from elsewhere. */
const SAFE_HEADERS = {
  "cache-control": "no-store",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
  `<meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<link rel="stylesheet" href="/dashboard/app.css"></head><body>${body}` +
  `<script type="module" src="/dashboard/app.js"></script></body></html>`

const LOGIN_PAGE = page(
  "spawnkit: log in",
  `<main id="login"><h1>spawnkit</h1><p>Paste the orchestrator's credential (<code>&lt;home&gt;/.spawnkit-orchestrator.token</code>, ` +
    `or <code>SPAWNKIT_HTTP_TOKEN</code>), or open <code>/#token=…</code>.</p>` +
    `<form id="login-form"><input id="token" type="password" autocomplete="off" aria-label="credential">` +
    `<button type="submit">Log in</button></form><p id="login-error" role="alert"></p></main>`
)

const DASHBOARD_PAGE = page(
  "spawnkit",
  `<header><h1>spawnkit</h1><span id="connection">connecting…</span></header>` +
    `<main id="dashboard"><section id="tasks" aria-label="tasks"></section>` +
    `<section id="output" aria-label="output"><h2>Output</h2><p class="hint">Select an agent.</p><pre id="output-lines"></pre></section>` +
    `<section id="timeline" aria-label="events"><h2>Events</h2><ol id="events"></ol></section></main>`
)

/** What a dashboard route needs of its server. */
export interface DashboardContext {
  readonly runtime: ToolRuntime
  readonly inFlight: InFlight
  readonly sessions: DashboardSessions
  /** The caller of a bearer token, undefined when it is none (or refused). */
  readonly callerOfToken: (token: string) => Promise<Caller | undefined>
  readonly readBody: (req: Http.IncomingMessage, limit: number) => Promise<Buffer | "too large">
  readonly refuse: (res: Http.ServerResponse, status: number, message: string) => void
}

const json = (res: Http.ServerResponse, status: number, body: unknown, headers: Http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { ...SAFE_HEADERS, "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

const html = (res: Http.ServerResponse, status: number, text: string) => {
  res.writeHead(status, { ...SAFE_HEADERS, "content-type": "text/html; charset=utf-8" })
  res.end(text)
}

/** Run one core Effect for the dashboard: its value, or the failure told as the tools tell it. */
const runCore = async <A>(ctx: DashboardContext, effect: Effect.Effect<A, unknown, unknown>) => {
  const exit = await ctx.runtime.runPromiseExit(effect as Effect.Effect<A, unknown, never>)
  return Exit.isSuccess(exit) ? { ok: true as const, value: exit.value } : {
    ok: false as const,
    error: describeFailure(exit.cause)
  }
}

/** The page's data: every task (newest first, at most 200) with its agents, and how each worktree stands. */
const stateOf = (csrf: string | undefined) =>
  Effect.gen(function*() {
    const listed = yield* listTasks({ scope: "all", limit: 200 })
    const tasks = []
    for (const task of listed.tasks) {
      const work = yield* workOf(task)
      tasks.push({ ...task, work: Object.fromEntries(work) })
    }
    return { tasks, unreadable: listed.unreadable, now: Date.now(), ...(csrf !== undefined ? { csrf } : {}) }
  })

/**
 * Serve a dashboard request (its Origin and Host already checked). `bearer` is the request's bearer token's caller,
 * if it sent one that is valid.
 */
export const handleDashboard = async (
  ctx: DashboardContext,
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  url: URL,
  bearer: Caller | undefined
) => {
  const path = url.pathname
  if (path === "/login") return login(ctx, req, res)
  const session = bearer === undefined ? ctx.sessions.of(req) : undefined
  const caller = bearer ?? session?.caller
  if (caller === undefined || caller._tag !== "Orchestrator") {
    if (path === "/" && req.method === "GET") return html(res, 401, LOGIN_PAGE)
    if (ASSETS[path] !== undefined && req.method === "GET") return asset(res, path)
    return ctx.refuse(res, 401, "Missing or wrong credential: log in at / (the dashboard is the orchestrator's)")
  }
  if (path === "/logout" && req.method === "POST") {
    ctx.sessions.close(req)
    return json(res, 200, { logged_out: true }, {
      "set-cookie": `${COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`
    })
  }
  if (path === "/" && req.method === "GET") return html(res, 200, DASHBOARD_PAGE)
  if (ASSETS[path] !== undefined && req.method === "GET") return asset(res, path)
  if (path === "/api/state" && req.method === "GET") {
    const state = await runCore(ctx, stateOf(session?.csrf))
    return state.ok ? json(res, 200, state.value) : json(res, 500, { error: state.error })
  }
  if (path === "/api/output" && req.method === "GET") return output(ctx, req, res, url)
  if (path === "/api/kill" && req.method === "POST") return killFromPage(ctx, req, res, session)
  return ctx.refuse(res, 404, `Not found: ${path}`)
}

const asset = (res: Http.ServerResponse, path: string) => {
  const file = NodePath.join(assetsDir(), NodePath.basename(path))
  let body: Buffer
  try {
    body = Fs.readFileSync(file)
  } catch {
    res.writeHead(500, { "content-type": "text/plain" })
    return res.end(`the dashboard's ${path} is not built: run npm run build`)
  }
  res.writeHead(200, { ...SAFE_HEADERS, "cache-control": "no-cache", "content-type": ASSETS[path]! })
  res.end(body)
}

/** POST /login: the credential in a JSON body; the orchestrator's opens a dashboard session (a cookie). */
const login = async (ctx: DashboardContext, req: Http.IncomingMessage, res: Http.ServerResponse) => {
  if (req.method !== "POST") return ctx.refuse(res, 405, "POST the credential as JSON: {\"token\": \"…\"}")
  if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
    return ctx.refuse(res, 415, "POST the credential as JSON: {\"token\": \"…\"}")
  }
  const body = await ctx.readBody(req, 4096)
  if (body === "too large") return ctx.refuse(res, 413, "Request body over 4096 bytes")
  let token: unknown
  try {
    token = (JSON.parse(body.toString("utf8")) as { token?: unknown }).token
  } catch {
    return ctx.refuse(res, 400, "Request body is not JSON")
  }
  const caller = typeof token === "string" && token.length <= 512 ? await ctx.callerOfToken(token.trim()) : undefined
  if (caller === undefined || caller._tag !== "Orchestrator") {
    return ctx.refuse(res, 401, "That is not the orchestrator's credential")
  }
  const { id } = ctx.sessions.open(caller)
  return json(res, 200, { logged_in: true }, {
    "set-cookie": `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict`
  })
}

/** GET /api/output?task=…&agent=…: the tail of an agent's output, then each new line as it comes (SSE). */
const output = async (ctx: DashboardContext, req: Http.IncomingMessage, res: Http.ServerResponse, url: URL) => {
  const task = url.searchParams.get("task") ?? ""
  const agent = url.searchParams.get("agent") ?? ""
  // Checked first, so a bad id is a plain refusal rather than a stream that ends at once.
  const known = await runCore(ctx, agentOutput(task, agent, { tail: 1 }))
  if (!known.ok) return ctx.refuse(res, 400, known.error)
  res.writeHead(200, { ...SAFE_HEADERS, "content-type": "text/event-stream", connection: "keep-alive" })
  const send = (line: string) => void res.write(`data: ${JSON.stringify({ line })}\n\n`)
  // The tail, then every new line.
  const fiber = ctx.runtime.runFork(
    followOutput(
      task,
      agent,
      { tail: 200 },
      (entry) => Effect.sync(() => send("line" in entry ? entry.line : JSON.stringify(entry.event)))
    ).pipe(
      Effect.ensuring(Effect.sync(() => res.end()))
    ) as Effect.Effect<void, unknown, never>
  )
  ctx.inFlight.fibers.add(fiber)
  req.once("close", () => {
    ctx.inFlight.fibers.delete(fiber)
    ctx.runtime.runFork(Fiber.interrupt(fiber))
  })
}

/** POST /api/kill {task_id, agent_id, cascade?}: JSON only, with the session's CSRF token when sent by the page. */
const killFromPage = async (
  ctx: DashboardContext,
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  session: DashboardSession | undefined
) => {
  if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
    return ctx.refuse(res, 415, "POST JSON: {\"task_id\", \"agent_id\", \"cascade\"?}")
  }
  const csrf = req.headers["x-spawnkit-csrf"]
  if (session !== undefined && (typeof csrf !== "string" || !sameSecret(csrf, session.csrf))) {
    return ctx.refuse(res, 403, "Missing or wrong X-Spawnkit-CSRF header")
  }
  const body = await ctx.readBody(req, 4096)
  if (body === "too large") return ctx.refuse(res, 413, "Request body over 4096 bytes")
  let input: { task_id?: unknown; agent_id?: unknown; cascade?: unknown }
  try {
    input = JSON.parse(body.toString("utf8"))
  } catch {
    return ctx.refuse(res, 400, "Request body is not JSON")
  }
  const result = await runCore(
    ctx,
    kill(String(input.task_id ?? ""), String(input.agent_id ?? ""), "killed from the dashboard", {
      cascade: input.cascade === true
    })
  )
  return result.ok ? json(res, 200, result.value) : json(res, 400, { error: result.error })
}
