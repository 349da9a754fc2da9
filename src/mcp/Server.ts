/**
 * The MCP server: the SDK speaks the protocol; one generic ListTools/CallTool pair lists the tool definitions (with
 * input and output JSON Schemas derived from their Effect Schemas) and runs each call as one Effect through a single
 * ManagedRuntime. A result is encoded through its tool's output Schema before it is sent, so structuredContent always
 * conforms to the listed outputSchema. A call's fiber is interrupted when the client cancels the request or its
 * connection closes, so the spawn's scope releases whatever it had acquired. The server also serves spawnkit's
 * resources (mcp/resources) and the logging capability (mcp/Logging): a failed call is logged to its own client.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { invalidInput } from "../domain/Decode.js"
import type { TaskId } from "../domain/Ids.js"
import { type Caller, CallerIdentity } from "./Caller.js"
import { describeFailure, failureTag, type InFlight, runCall, type ToolRuntime } from "./Calls.js"
import { installLogging, type LogRecord, type LogSink, recordOfToolFailure } from "./Logging.js"
import { progressFor, ToolProgress } from "./Progress.js"
import { installResources } from "./resources/ResourceHandlers.js"
import { type ToolDefinition, tools } from "./tools/index.js"

export type { InFlight, ToolRuntime } from "./Calls.js"

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

/** Interrupt every running call and wait until each has released what it held. */
export const drain = (inFlight: InFlight) =>
  Effect.forEach([...inFlight.fibers], (f) => Fiber.interrupt(f), { concurrency: "unbounded", discard: true })

/** Decode a call's arguments; a refusal is the tool's error result. */
const decodeArguments = (tool: ToolDefinition, args: unknown) => {
  const decoded = Schema.decodeUnknownExit(tool.input)(args ?? {}, { errors: "all", onExcessProperty: "error" })
  if (Exit.isSuccess(decoded)) return decoded
  const error = Cause.findErrorOption(decoded.cause)
  return errorResult(
    Option.isSome(error)
      ? describeFailure(Cause.fail(invalidInput(error.value, "arguments")))
      : `InvalidInput: invalid arguments for ${tool.name}: ${Cause.pretty(decoded.cause)}`
  )
}

/** Install the generic tools/list and tools/call handlers; a failed call is also logged to `log`. */
const installTools = (
  mcp: McpServer,
  runtime: ToolRuntime,
  inFlight: InFlight,
  caller: Caller,
  log: (r: LogRecord) => void
) => {
  mcp.server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: listed }))
  mcp.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const tool = byName.get(request.params.name)
    if (tool === undefined) {
      return errorResult(`Unknown tool ${request.params.name}. Available: ${tools.map((t) => t.name).join(", ")}`)
    }
    const decoded = decodeArguments(tool, request.params.arguments)
    if (!Exit.isExit(decoded)) return decoded
    // Invariant: what is sent is the result encoded through the tool's output Schema; one that does not conform fails
    // the call (a defect, reported as such) instead of reaching the client.
    const encodeResult = Schema.encodeUnknownEffect(tool.output)
    // Progress goes out as a message of its own, not in the call's response: over HTTP a call is answered with one
    // JSON body, so its progress travels on the session's stream (GET), which the SDK's client opens.
    const progress = progressFor(request.params._meta?.progressToken, (n) => mcp.server.notification(n))
    const exit = await runCall(
      runtime,
      inFlight,
      tool.run(decoded.value).pipe(
        Effect.flatMap((value) => Effect.orDie(encodeResult(value, { errors: "all" }))),
        Effect.provideService(ToolProgress, progress)
      ),
      extra.signal,
      caller
    )
    if (Exit.isSuccess(exit)) {
      return {
        content: [{ type: "text" as const, text: JSON.stringify(exit.value, null, 2) }],
        structuredContent: exit.value as Record<string, unknown>
      }
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      return errorResult("Cancelled: the request was cancelled; nothing was kept.")
    }
    const text = describeFailure(exit.cause)
    log(recordOfToolFailure(tool.name, failureTag(exit.cause), text))
    return errorResult(text)
  })
}

/**
 * Build one SDK server whose tools and resource reads run in `runtime` as `caller` (by default the runtime's own,
 * read at once), sending the records of `logs` to its client at the level the client sets.
 */
export const makeServer = (
  runtime: ToolRuntime,
  inFlight: InFlight,
  logs: LogSink,
  callerOfSession?: Caller
): McpServer => {
  // Capabilities given to McpServer's constructor make it install its own tools handlers, which advertise
  // `listChanged: true`; the tool list never changes, so they are registered on the protocol server instead.
  const mcp = new McpServer(SERVER_INFO)
  mcp.server.registerCapabilities({
    tools: { listChanged: false },
    resources: { subscribe: true, listChanged: false },
    logging: {}
  })
  const caller = callerOfSession ?? runtime.runSync(Effect.gen(function*() {
    return yield* CallerIdentity
  }))
  const logging = installLogging(mcp, caller, logs)
  installTools(mcp, runtime, inFlight, caller, logging.send)
  const ownTask = caller._tag === "Agent" ? caller.taskId as TaskId : undefined
  const subscriptions = installResources(mcp, runtime, inFlight, ownTask, caller)
  mcp.server.onclose = () => {
    logging.stop()
    subscriptions.stop()
  }
  return mcp
}
