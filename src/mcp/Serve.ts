/**
 * `spawnkit serve`: one ManagedRuntime for every tool call, stdio (default) or Streamable HTTP. On SIGINT/SIGTERM or
 * when the client goes away, running calls are interrupted and their scopes release everything before exit.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Spawnkit from "../index.js"
import { CallerIdentity } from "../spawn/Caller.js"
import { type HttpSettings, serveHttp } from "./Http.js"
import { drain, type InFlight, makeServer, type ToolRuntime } from "./Server.js"

/** Build the tools' runtime (the caller's identity verified from the environment) for the scope's life. */
const toolRuntime = Effect.acquireRelease(
  Effect.gen(function*() {
    const base = Spawnkit.layer()
    const layer = Layer.provideMerge(CallerIdentity.fromEnv(process.env), base)
    const runtime: ToolRuntime = ManagedRuntime.make(layer)
    // Build now, so a bad configuration or a forged identity stops the server before it accepts a request.
    yield* Effect.tryPromise({ try: () => runtime.context(), catch: (e) => e })
    return runtime
  }),
  (runtime) => Effect.promise(() => runtime.dispose())
)

const inFlightCalls = Effect.acquireRelease(
  Effect.sync((): InFlight => ({ fibers: new Set() })),
  (inFlight) => drain(inFlight)
)

/** Serve over stdio until the client closes stdin or the process is interrupted. */
export const serveStdio = Effect.scoped(
  Effect.gen(function*() {
    const runtime = yield* toolRuntime
    const inFlight = yield* inFlightCalls
    const transport = new StdioServerTransport()
    const server = makeServer(runtime, inFlight)
    // The SDK's stdio transport does not watch for the end of stdin: a client that goes away closes it here.
    const stdinEnded = new Promise<void>((resolve) => {
      process.stdin.once("end", () => resolve())
      process.stdin.once("close", () => resolve())
    })
    yield* Effect.acquireRelease(
      Effect.promise(() => server.connect(transport)),
      () => Effect.promise(() => server.close())
    )
    yield* Effect.logInfo("spawnkit MCP server on stdio")
    yield* Effect.promise(() => stdinEnded)
  })
)

/** Serve over HTTP until interrupted. */
export const serveHttpForever = (settings: HttpSettings) =>
  Effect.scoped(
    Effect.gen(function*() {
      const runtime = yield* toolRuntime
      const inFlight = yield* inFlightCalls
      yield* serveHttp(settings, runtime, inFlight)
      return yield* Effect.never
    })
  )
