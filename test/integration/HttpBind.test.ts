/**
 * `serveHttp` refusing to start, in-process: an address taken by another listener is ServerBindFailed carrying the
 * errno code, and a non-loopback address without a token is InvalidConfiguration naming SPAWNKIT_HTTP_TOKEN.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Net from "node:net"
import { type HttpSettings, serveHttp } from "../../src/mcp/Http.js"
import { LogSink } from "../../src/mcp/Logging.js"
import type { ToolRuntime } from "../../src/mcp/Server.js"

const settings = (port: number, host = "127.0.0.1", token?: string): HttpSettings => ({
  host,
  port,
  token,
  allowedOrigins: [],
  maxBodyBytes: 1024 * 1024,
  maxSessions: 10,
  sessionIdleSeconds: 60
})

// Neither refusal reaches a tool call, so the runtime provides nothing.
const runtime = ManagedRuntime.make(Layer.empty) as unknown as ToolRuntime

const failureOf = async (s: HttpSettings) => {
  const exit = await Effect.runPromiseExit(Effect.scoped(serveHttp(s, runtime, { fibers: new Set() }, new LogSink())))
  expect(exit._tag).toBe("Failure")
  return exit._tag === "Failure" ? (exit.cause.reasons[0] as { readonly error?: unknown }).error : undefined
}

describe("serveHttp refuses to start", () => {
  it("on a port another listener holds: ServerBindFailed with EADDRINUSE", async () => {
    const holder = Net.createServer()
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve))
    try {
      const port = (holder.address() as Net.AddressInfo).port
      const error = await failureOf(settings(port))
      expect(error).toMatchObject({ _tag: "ServerBindFailed", host: "127.0.0.1", port, code: "EADDRINUSE" })
      expect((error as Error).message).toContain("Another process listens there")
    } finally {
      await new Promise((resolve) => holder.close(resolve))
    }
  })

  it("on a non-loopback address without a token: InvalidConfiguration naming SPAWNKIT_HTTP_TOKEN", async () => {
    const error = await failureOf(settings(0, "0.0.0.0"))
    expect(error).toMatchObject({ _tag: "InvalidConfiguration", variable: "SPAWNKIT_HTTP_TOKEN" })
    expect((error as Error).message).toContain("not a loopback address")
  })
})
