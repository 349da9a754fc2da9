/**
 * `spawnkit serve`: one ManagedRuntime for every tool call, stdio (default) or Streamable HTTP (its transport loaded
 * only when HTTP is served). On SIGINT/SIGTERM or when the client goes away, running calls are interrupted and their
 * scopes release everything before exit.
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Spawnkit from "../Spawnkit.js"
import { reconcile } from "../supervisor/Reconciler.js"
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

/** Seconds between reconcile passes of an orchestrator's server (SPAWNKIT_RECONCILE_INTERVAL, default 30; 0: off). */
const reconcileInterval = Config.schema(
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  "SPAWNKIT_RECONCILE_INTERVAL"
).pipe(Config.withDefault(30))

/**
 * Reconcile at start and then periodically, in the background of the server's scope. Only the orchestrator's server
 * does: every agent runs its own stdio server, and one supervisor per home is enough.
 */
const periodicReconcile = (runtime: ToolRuntime) =>
  Effect.gen(function*() {
    const seconds = yield* reconcileInterval
    if (seconds === 0 || process.env["SPAWNKIT_AGENT_ID"]) return
    const pass = Effect.promise(() => runtime.runPromiseExit(reconcile())).pipe(
      Effect.flatMap((exit) =>
        Exit.isSuccess(exit)
          ? Effect.all([
            Effect.forEach(exit.value.repairs, (r) => Effect.logInfo(`reconcile: ${r.kind} ${r.target}: ${r.reason}`)),
            Effect.forEach(
              exit.value.failed,
              (r) => Effect.logWarning(`reconcile: ${r.kind} ${r.target} failed: ${r.error}`)
            ),
            Effect.forEach(exit.value.unreadable, (u) =>
              Effect.logWarning(
                `reconcile: task ${u.task_id} cannot be read (${u.reason}); left untouched. ` +
                  `Repair it, or set it aside: spawnkit task quarantine --task ${u.task_id}`
              ))
          ])
          : Effect.logWarning(`reconcile pass failed: ${Cause.pretty(exit.cause)}`)
      )
    )
    yield* pass.pipe(Effect.repeat(Schedule.spaced(Duration.seconds(seconds))), Effect.forkScoped)
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
    yield* periodicReconcile(runtime)
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
      yield* periodicReconcile(runtime)
      yield* serveHttp(settings, runtime, inFlight)
      return yield* Effect.never
    })
  )
