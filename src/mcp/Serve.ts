/**
 * `spawnkit serve`: one ManagedRuntime for every tool call, stdio (default) or Streamable HTTP (its transport loaded
 * only when HTTP is served). On SIGINT/SIGTERM or when the client goes away, running calls are interrupted and their
 * scopes release everything before exit.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Spawnkit from "../Spawnkit.js"
import { reconcileInterval, supervise } from "../supervisor/Supervisor.js"
import { CallerIdentity } from "./Caller.js"
import type { HttpSettings } from "./Http.js"
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

/**
 * The home's supervisor (src/supervisor/Supervisor.ts: exits recorded as they happen, reconcile at start and every
 * SPAWNKIT_RECONCILE_INTERVAL seconds), in the background of the server's scope, on the tools' services. Only the
 * orchestrator's server runs it: every agent runs its own stdio server, and those own no agents of the host.
 */
const supervisor = (runtime: ToolRuntime) =>
  Effect.gen(function*() {
    if (process.env["SPAWNKIT_AGENT_ID"]) return
    const seconds = yield* reconcileInterval
    const services = yield* Effect.promise(() => runtime.context())
    yield* supervise({ reconcileEvery: Duration.seconds(seconds) }).pipe(
      Effect.provideContext(services),
      Effect.forkScoped
    )
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
    yield* supervisor(runtime)
    const runLogged = Effect.runForkWith(yield* Effect.context<never>())
    const transport = new StdioTransport(process.stdin, process.stdout, {
      maxMessageBytes,
      onRefused: (reason) => {
        runLogged(Effect.logWarning(reason))
      }
    })
    const server = makeServer(runtime, inFlight)
    yield* Effect.acquireRelease(
      Effect.promise(() => server.connect(transport)),
      () => Effect.promise(() => server.close())
    )
    yield* Effect.logInfo("spawnkit MCP server on stdio")
    const reason = yield* Effect.promise(() => transport.closed)
    yield* Effect.logInfo(`stdio transport closed (${reason}); shutting down`)
  })
)

/** Serve over HTTP until interrupted. The HTTP transport's modules are loaded here, by the HTTP server alone. */
export const serveHttpForever = (settings: HttpSettings) =>
  Effect.scoped(
    Effect.gen(function*() {
      const { serveHttp } = yield* Effect.promise(() => import("./Http.js"))
      const runtime = yield* toolRuntime
      const inFlight = yield* inFlightCalls
      yield* supervisor(runtime)
      yield* serveHttp(settings, runtime, inFlight)
      return yield* Effect.never
    })
  )
