/**
 * Progress of a long tool call, as MCP progress notifications: sent only when the request carries a progress token.
 * Each notification's `progress` is greater than the last (the protocol requires it), so it counts notifications; the
 * message says what changed. Clients that reset their timeout on progress keep waiting on a long call.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/** Progress reporting for the running tool call. */
export class ToolProgress extends Context.Service<ToolProgress, {
  readonly report: (message: string) => Effect.Effect<void>
}>()("spawnkit/ToolProgress") {}

/** Send nothing (no progress token, or not an MCP call). */
export const noProgress = ToolProgress.of({ report: () => Effect.void })

/** Progress sent with `send` for the request's token; a failed send is logged, never fails the call. */
export const progressFor = (
  token: string | number | undefined,
  send: (notification: {
    method: "notifications/progress"
    params: { progressToken: string | number; progress: number; message: string }
  }) => Promise<void>
) => {
  if (token === undefined) return noProgress
  let sent = 0
  return ToolProgress.of({
    report: (message) =>
      Effect.tryPromise(() =>
        send({ method: "notifications/progress", params: { progressToken: token, progress: ++sent, message } })
      )
        .pipe(Effect.catch((e) => Effect.logWarning(`progress notification not sent: ${String(e)}`)))
  })
}
