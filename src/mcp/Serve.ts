/**
 * `spawnkit serve`: one ManagedRuntime for every tool call, stdio (default) or Streamable HTTP (its transport loaded
 * only when HTTP is served). On SIGINT/SIGTERM or when the client goes away, running calls are interrupted and their
 * scopes release everything before exit.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import type { TaskId } from "../domain/Ids.js"
import { Events } from "../events/Events.js"
import { announceBroker } from "../host/Brokers.js"
import { orchestratorToken, orchestratorTokenPath } from "../host/OrchestratorToken.js"
import * as Spawnkit from "../Spawnkit.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { loadPrices } from "../supervisor/MeterLoop.js"
import type { ReconcileReport } from "../supervisor/Reconciler.js"
import { reconcileInterval, supervise } from "../supervisor/Supervisor.js"
import { CallerIdentity } from "./Caller.js"
import type { HttpSettings } from "./Http.js"
import { type LogRecord, LogSink, recordOfEvent } from "./Logging.js"
import { followEvents } from "./resources/Subscriptions.js"
import { drain, type InFlight, makeServer, type ToolRuntime } from "./Server.js"
import { stdioMaxMessageBytes, StdioTransport } from "./Stdio.js"

/** Build the tools' runtime (the caller's identity verified from the environment) for the scope's life. */
const toolRuntime = Effect.acquireRelease(
  Effect.gen(function*() {
    // Logs of tool calls (and of the background work they start) go to stderr: stdout is the stdio transport's.
    const base = Layer.merge(Spawnkit.layer(), Layer.succeed(Logger.LogToStderr, true))
    const layer = Layer.provideMerge(CallerIdentity.fromEnv(process.env), base)
    const runtime: ToolRuntime = ManagedRuntime.make(layer)
    // Build now, so a bad configuration or a forged identity stops the server before it accepts a request.
    yield* Effect.tryPromise({ try: () => runtime.context(), catch: (e) => e })
    return runtime
  }),
  (runtime) => Effect.promise(() => runtime.dispose())
)

/** What a reconcile pass did, as log records: repairs are notable, failures and unreadable tasks are problems. */
const recordsOfPass = (exit: Exit.Exit<ReconcileReport, unknown>): ReadonlyArray<LogRecord> =>
  Exit.isFailure(exit)
    ? [{ level: "error", message: `reconcile pass failed: ${Cause.pretty(exit.cause)}` }]
    : [
      ...exit.value.repairs.map((r): LogRecord => ({
        level: "notice",
        message: `reconcile: ${r.kind} ${r.target}: ${r.reason}`,
        ...(r.task_id === undefined ? {} : { taskId: r.task_id }),
        details: { repair: r.kind, target: r.target }
      })),
      ...exit.value.failed.map((r): LogRecord => ({
        level: "error",
        message: `reconcile: ${r.kind} ${r.target} failed: ${r.error}`
      })),
      ...exit.value.unreadable.map((u): LogRecord => ({
        level: "warning",
        message: `reconcile: task ${u.task_id} cannot be read (${u.reason}); left untouched. ` +
          `Repair it, or set it aside: spawnkit task quarantine --task ${u.task_id}`,
        taskId: u.task_id
      }))
    ]

/**
 * The home's supervisor (src/supervisor/Supervisor.ts: exits recorded as they happen, reconcile at start and every
 * SPAWNKIT_RECONCILE_INTERVAL seconds), in the background of the server's scope, on the tools' services; what each
 * pass did also goes to the connected clients (`logs`). Only the orchestrator's server runs it: a server started with
 * an agent's identity owns no agents of the host.
 */
const supervisor = (runtime: ToolRuntime, logs: LogSink) =>
  Effect.gen(function*() {
    if (process.env["SPAWNKIT_AGENT_ID"]) return
    const seconds = yield* reconcileInterval
    const services = yield* Effect.promise(() => runtime.context())
    const prices = yield* loadPrices.pipe(Effect.provideContext(services))
    yield* supervise({
      reconcileEvery: Duration.seconds(seconds),
      prices,
      onPass: (pass) => Effect.sync(() => recordsOfPass(pass).forEach((record) => logs.publish(record)))
    }).pipe(
      Effect.provideContext(services),
      Effect.forkScoped
    )
  })

/**
 * The process's log sink, fed for the scope's life with every agent state change the journal commits from now on
 * (an agent's server: its own task's only), so each client hears of spawns, kills and exits of any process.
 */
const notableEvents = (runtime: ToolRuntime) =>
  Effect.gen(function*() {
    const logs = new LogSink()
    const follow = Effect.gen(function*() {
      const caller = yield* CallerIdentity
      const events = yield* Events
      const head = yield* events.head.pipe(Effect.retry(Schedule.spaced(Duration.seconds(1))))
      yield* followEvents(
        head,
        caller._tag === "Agent" ? caller.taskId as TaskId : undefined,
        (event) => Effect.sync(() => logs.publish(recordOfEvent(event))),
        (e) => Effect.sync(() => logs.publish({ level: "error", message: `event journal: ${e.message}; retrying` }))
      )
    })
    yield* Effect.acquireRelease(
      Effect.sync(() => runtime.runFork(follow)),
      (fiber) => Effect.promise(() => runtime.runPromise(Fiber.interrupt(fiber)))
    )
    return logs
  })

const inFlightCalls = Effect.acquireRelease(
  Effect.sync((): InFlight => ({ fibers: new Set() })),
  (inFlight) => drain(inFlight)
)

/**
 * Serve over stdio until the transport closes (stdin ends, fails or closes, or stdout fails or closes: the client is
 * gone) or the process is interrupted.
 */
export const serveStdio = Effect.scoped(
  Effect.gen(function*() {
    const maxMessageBytes = yield* stdioMaxMessageBytes
    const runtime = yield* toolRuntime
    const inFlight = yield* inFlightCalls
    const logs = yield* notableEvents(runtime)
    yield* supervisor(runtime, logs)
    const runLogged = Effect.runForkWith(yield* Effect.context<never>())
    const transport = new StdioTransport(process.stdin, process.stdout, {
      maxMessageBytes,
      onRefused: (reason) => {
        runLogged(Effect.logWarning(reason))
      }
    })
    const server = makeServer(runtime, inFlight, logs)
    yield* Effect.acquireRelease(
      Effect.promise(() => server.connect(transport)),
      () => Effect.promise(() => server.close())
    )
    yield* Effect.logInfo("spawnkit MCP server on stdio")
    // Loaded once the client is served: the HTTP modules do not delay its first answer.
    yield* agentBroker(runtime, inFlight, logs)
    const reason = yield* Effect.promise(() => transport.closed)
    yield* Effect.logInfo(`stdio transport closed (${reason}); shutting down`)
  })
)

/**
 * The host's broker beside a stdio server or a supervisor: Streamable HTTP on a loopback port of the system's choice,
 * for agents alone (it has no orchestrator token: only agent tokens are taken), announced for spawns to find. It runs
 * in the background of the scope; a broker that cannot start is logged (spawns of agents that need one are then
 * refused with BrokerUnavailable, unless another runs), and the server goes on.
 */
const agentBroker = (runtime: ToolRuntime, inFlight: InFlight, logs: LogSink) =>
  Effect.gen(function*() {
    if (process.env["SPAWNKIT_AGENT_ID"]) return
    const broker = Effect.gen(function*() {
      const [{ serveHttp }, { httpSettingsConfig }] = yield* Effect.promise(() =>
        Promise.all([import("./Http.js"), import("./HttpConfig.js")])
      )
      const settings = yield* httpSettingsConfig
      const home = yield* Effect.promise(() => runtime.runPromise(SpawnkitConfig.use((c) => Effect.succeed(c.home))))
      yield* serveHttp(
        { ...settings, host: "127.0.0.1", port: 0, token: undefined, allowedOrigins: [] },
        runtime,
        inFlight,
        logs,
        (port) => announceBroker(home, `http://127.0.0.1:${port}/mcp`)
      )
      return yield* Effect.never
    })
    yield* broker.pipe(
      Effect.scoped,
      Effect.catchCause((cause) => Effect.logError(`the agents' broker could not start: ${Cause.pretty(cause)}`)),
      Effect.forkScoped
    )
  })

/**
 * Supervise the home until interrupted (`spawnkit supervise`), with the host's broker: the long-lived process agents
 * reach spawnkit through when no MCP client's server runs.
 */
export const superviseForever = Effect.scoped(
  Effect.gen(function*() {
    const runtime = yield* toolRuntime
    const inFlight = yield* inFlightCalls
    const logs = yield* notableEvents(runtime)
    yield* supervisor(runtime, logs)
    yield* agentBroker(runtime, inFlight, logs)
    const seconds = yield* reconcileInterval
    yield* Effect.logInfo(`spawnkit supervisor running (reconcile every ${seconds} s); SIGINT or SIGTERM stops it`)
    return yield* Effect.never
  })
)

/** Serve over HTTP until interrupted. The HTTP transport's modules are loaded here, by the HTTP server alone. */
export const serveHttpForever = (settings: HttpSettings) =>
  Effect.scoped(
    Effect.gen(function*() {
      const { isLoopback, serveHttp } = yield* Effect.promise(() => import("./Http.js"))
      const runtime = yield* toolRuntime
      const inFlight = yield* inFlightCalls
      const logs = yield* notableEvents(runtime)
      yield* supervisor(runtime, logs)
      const config = yield* Effect.promise(() =>
        runtime.runPromise(Effect.gen(function*() {
          return yield* SpawnkitConfig
        }))
      )
      const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host
      // Every request needs a credential: the orchestrator's (the one given, else the home's own) or an agent's.
      // Off loopback a token must be given: the home's own is for this host's orchestrators.
      const token = settings.token ?? (isLoopback(settings.host) ? yield* orchestratorToken(config.home) : undefined)
      if (settings.token === undefined && token !== undefined) {
        yield* Effect.logInfo(
          `orchestrator credential: ${orchestratorTokenPath(config.home)} (send it as "Authorization: Bearer <it>")`
        )
      }
      // On loopback it is the host's broker: spawns give agents its address and their own tokens. A server started
      // with an agent's identity is that agent's own, and no broker.
      const broker = isLoopback(settings.host) && !process.env["SPAWNKIT_AGENT_ID"]
      yield* serveHttp({ ...settings, token }, runtime, inFlight, logs, (port) =>
        broker ? announceBroker(config.home, `http://${host}:${port}/mcp`) : Effect.void)
      return yield* Effect.never
    })
  )
