/**
 * The MCP server: the SDK speaks the protocol; one generic ListTools/CallTool pair lists the tool definitions (with
 * input and output JSON Schemas derived from their Effect Schemas) and runs each call as one Effect through a single
 * ManagedRuntime. A result is encoded through its tool's output Schema before it is sent, so structuredContent always
 * conforms to the listed outputSchema. A call's fiber is interrupted when the client cancels the request or its
 * connection closes, so the spawn's scope releases whatever it had acquired.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { invalidInput } from "../domain/Decode.js"
import type { Services } from "../Spawnkit.js"
import type { CallerIdentity } from "./Caller.js"
import { progressFor, ToolProgress } from "./Progress.js"
import { type ToolDefinition, tools } from "./tools/index.js"

/** The runtime every tool call runs in. */
export type ToolRuntime = ManagedRuntime.ManagedRuntime<Services | CallerIdentity, unknown>

/** Server name and version reported to clients. */
export const SERVER_INFO = { name: "spawnkit", version: "0.1.0" }

/** A JSON Schema of an object, with the definitions its references point at. */
const objectSchemaOf = (schema: Schema.Top, onExcessProperty: "error" | "ignore") => {
  const document = Schema.toJsonSchemaDocument(schema, { onExcessProperty })
  return {
    ...document.schema,
    ...(Object.keys(document.definitions).length > 0 ? { $defs: document.definitions } : {}),
    type: "object" as const
  }
}

/** A tool as tools/list shows it. */
export const listedTool = (tool: ToolDefinition) => ({
  name: tool.name,
  title: tool.title,
  description: tool.description,
  // Extra arguments are refused when a call is decoded, so the listed input schema says so too.
  inputSchema: objectSchemaOf(tool.input, "error"),
  outputSchema: objectSchemaOf(tool.output, "ignore"),
  annotations: { title: tool.title, ...tool.hints }
})

const listed = tools.map(listedTool)

const byName = new Map(tools.map((t) => [t.name, t]))

const errorResult = (text: string) => ({ content: [{ type: "text" as const, text }], isError: true })

/** A tool error as the model reads it: the tag, then what was wrong and what to do. */
const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const e = failure.value as { readonly _tag?: unknown; readonly message?: unknown }
    const tag = typeof e._tag === "string" ? e._tag : "Error"
    const details = JSON.stringify(
      Object.fromEntries(Object.entries(e as object).filter(([k]) => k !== "_tag" && k !== "stack"))
    )
    return `${tag}: ${typeof e.message === "string" ? e.message : String(e)}${details === "{}" ? "" : ` ${details}`}`
  }
  return `Defect: ${Cause.pretty(cause)}`
}

/** Tracks running calls, so a shutdown can interrupt them and wait for their finalizers. */
export interface InFlight {
  readonly fibers: Set<Fiber.Fiber<unknown, unknown>>
}

/** Interrupt every running call and wait until each has released what it held. */
export const drain = (inFlight: InFlight) =>
  Effect.forEach([...inFlight.fibers], (f) => Fiber.interrupt(f), { concurrency: "unbounded", discard: true })

/** Build one SDK server whose tools run in `runtime`. */
export const makeServer = (runtime: ToolRuntime, inFlight: InFlight): McpServer => {
  // Capabilities given to McpServer's constructor make it install its own tools handlers, which advertise
  // `listChanged: true`; the tool list never changes, so they are registered on the protocol server instead.
  const mcp = new McpServer(SERVER_INFO)
  mcp.server.registerCapabilities({ tools: { listChanged: false } })
  mcp.server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: listed }))
  mcp.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const tool = byName.get(request.params.name)
    if (tool === undefined) {
      return errorResult(`Unknown tool ${request.params.name}. Available: ${tools.map((t) => t.name).join(", ")}`)
    }
    const decoded = Schema.decodeUnknownExit(tool.input)(request.params.arguments ?? {}, {
      errors: "all",
      onExcessProperty: "error"
    })
    if (Exit.isFailure(decoded)) {
      const error = Cause.findErrorOption(decoded.cause)
      return errorResult(
        Option.isSome(error)
          ? describeFailure(Cause.fail(invalidInput(error.value, "arguments")))
          : `InvalidInput: invalid arguments for ${tool.name}: ${Cause.pretty(decoded.cause)}`
      )
    }
    // Invariant: what is sent is the result encoded through the tool's output Schema; one that does not conform fails
    // the call (a defect, reported as such) instead of reaching the client.
    const encodeResult = Schema.encodeUnknownEffect(tool.output)
    // Progress goes out as a message of its own, not in the call's response: over HTTP a call is answered with one
    // JSON body, so its progress travels on the session's stream (GET), which the SDK's client opens.
    const progress = progressFor(request.params._meta?.progressToken, (n) => mcp.server.notification(n))
    const fiber = runtime.runFork(
      tool.run(decoded.value).pipe(
        Effect.flatMap((value) => Effect.orDie(encodeResult(value, { errors: "all" }))),
        Effect.provideService(ToolProgress, progress)
      ),
      { signal: extra.signal }
    )
    inFlight.fibers.add(fiber)
    const exit = await runtime.runPromise(Fiber.await(fiber)).finally(() => inFlight.fibers.delete(fiber))
    if (Exit.isSuccess(exit)) {
      return {
        content: [{ type: "text" as const, text: JSON.stringify(exit.value, null, 2) }],
        structuredContent: exit.value as Record<string, unknown>
      }
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      return errorResult("Cancelled: the request was cancelled; nothing was kept.")
    }
    return errorResult(describeFailure(exit.cause))
  })
  return mcp
}
