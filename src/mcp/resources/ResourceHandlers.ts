/**
 * The resources capability of one MCP server: resources/list, resources/templates/list, resources/read and
 * resources/subscribe|unsubscribe, each run as an Effect in the tools' runtime. A bad or unknown URI, or a task the
 * caller may not see, is a JSON-RPC error (InvalidParams; -32002 "resource not found" for a missing task) and
 * changes nothing.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  RequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { TaskId } from "../../domain/Ids.js"
import type { Services } from "../../Spawnkit.js"
import type { Caller, CallerIdentity } from "../Caller.js"
import { describeFailure, failureTag, type InFlight, runCall, type ToolRuntime } from "../Calls.js"
import { noProgress, ToolProgress } from "../Progress.js"
import { checkSubscribable, listResources, readResource, resourceTemplates } from "./Resources.js"
import { Subscriptions } from "./Subscriptions.js"

/** JSON-RPC code of a resource that does not exist (MCP specification, resources: error handling). */
const RESOURCE_NOT_FOUND = -32002

const CALLER_MISTAKES = new Set(["InvalidInput", "NotPermitted"])

const codeOf = (tag: string) =>
  tag === "TaskNotFound"
    ? RESOURCE_NOT_FOUND
    : CALLER_MISTAKES.has(tag)
    ? ErrorCode.InvalidParams
    : ErrorCode.InternalError

// The SDK's own schemas of these requests refuse a missing or ill-typed uri with an internal error; with loose params
// the uri is checked here, and refused as invalid params.
const looseParams = { params: RequestSchema.shape.params }
const ReadRequest = ReadResourceRequestSchema.extend(looseParams)
const SubscribeRequest = SubscribeRequestSchema.extend(looseParams)
const UnsubscribeRequest = UnsubscribeRequestSchema.extend(looseParams)

const uriOf = (params: Record<string, unknown> | undefined): string => {
  const uri = params?.["uri"]
  if (typeof uri !== "string") {
    throw new McpError(ErrorCode.InvalidParams, "InvalidInput: params.uri must be a string (a resource URI)")
  }
  return uri
}

/** Run a resource request's Effect; its failure becomes the request's JSON-RPC error. */
const run = async <A, E>(
  runtime: ToolRuntime,
  inFlight: InFlight,
  effect: Effect.Effect<A, E, Services | CallerIdentity | ToolProgress>,
  signal: AbortSignal,
  caller: Caller
): Promise<A> => {
  // A resource read reports no progress (the tools it shares code with may).
  const exit = await runCall(runtime, inFlight, Effect.provideService(effect, ToolProgress, noProgress), signal, caller)
  if (Exit.isSuccess(exit)) return exit.value
  throw new McpError(codeOf(failureTag(exit.cause)), describeFailure(exit.cause))
}

/** Install the resource handlers; returns the server's subscriptions (stopped when the server closes). */
export const installResources = (
  mcp: McpServer,
  runtime: ToolRuntime,
  inFlight: InFlight,
  ownTask: TaskId | undefined,
  caller: Caller
): Subscriptions => {
  const server = mcp.server
  const subscriptions = new Subscriptions(runtime, ownTask, (uri) => server.sendResourceUpdated({ uri }))
  server.setRequestHandler(ListResourcesRequestSchema, async (_request, extra) => ({
    resources: [...await run(runtime, inFlight, listResources, extra.signal, caller)]
  }))
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates }))
  server.setRequestHandler(
    ReadRequest,
    async (request, extra) => run(runtime, inFlight, readResource(uriOf(request.params)), extra.signal, caller)
  )
  server.setRequestHandler(SubscribeRequest, async (request, extra) => {
    const uri = uriOf(request.params)
    await run(runtime, inFlight, checkSubscribable(uri), extra.signal, caller)
    await subscriptions.subscribe(uri)
    return {}
  })
  server.setRequestHandler(UnsubscribeRequest, async (request) => {
    subscriptions.unsubscribe(uriOf(request.params))
    return {}
  })
  return subscriptions
}
