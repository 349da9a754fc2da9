/**
 * `spawnkit serve` as a process, either transport: the exit status after a signal (143 after SIGTERM, 130 after
 * SIGINT: 128 + the signal's number), SIGTERM with a call in flight (the call settles, nothing is left), and the
 * tools capability as a real SDK client reads it (`listChanged: false`: the server never sends that notification).
 *
 * Needs `npm run build` first.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import { CLI, liveSessions, promptFiles, readRegistryFile } from "../support/Harness.js"
import {
  connectHttp,
  HANG_AFTER_SESSION,
  ok,
  orchestratorCredential,
  ownedPerTest,
  startHangingDeploy,
  startHttp,
  startServerProcess,
  startStdio,
  waitFor,
  within
} from "../support/Mcp.js"

expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)

const { newEnv, own, ownProcess } = ownedPerTest()

const SERVING = /spawnkit MCP server on (http|stdio)/

describe("exit status after a signal", () => {
  it.each(
    [
      ["--http", "SIGTERM", 143],
      ["--http", "SIGINT", 130],
      ["stdio", "SIGTERM", 143],
      ["stdio", "SIGINT", 130]
    ] as const
  )("serve %s exits %s with %i", async (kind, signal, code) => {
    const server = ownProcess(startServerProcess(newEnv(), kind === "stdio" ? [] : ["--http", "--port", "0"]))
    await waitFor("the server serves", () => SERVING.test(server.stderr()), 120_000)
    server.proc.kill(signal)
    expect(await within(`exit after ${signal}`, server.exit, 120_000)).toEqual({ code, signal: null })
  }, 300_000)

  it("serve --http, SIGTERM with a call in flight: the call settles, nothing is left, exit 143", async () => {
    const env = newEnv()
    const server = ownProcess(startServerProcess(env, ["--http", "--port", "0"], HANG_AFTER_SESSION))
    const url = await waitFor(
      "the server announces its URL",
      () => /spawnkit MCP server on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(server.stderr())?.[1],
      30_000
    )
    const client = await connectHttp(url, { token: orchestratorCredential(env) })
    try {
      const { task_id } = await ok(client, "create_real_task", { description: "sigterm" })
      const { settled } = await startHangingDeploy(env, client, task_id)
      server.proc.kill("SIGTERM")
      expect(await within("the server exits", server.exit, 120_000)).toEqual({ code: 143, signal: null })
      expect(await within("the pending call settles", settled)).toHaveProperty("error")
      // Checked once, right after the exit: the server released everything before it exited.
      expect(liveSessions(env.socket)).toEqual([])
      expect(promptFiles(env.home, task_id)).toEqual([])
      expect(readRegistryFile(env.home, task_id).agents).toEqual([])
    } finally {
      await client.close()
    }
  }, 300_000)
})

describe("capabilities", () => {
  it.each(["stdio", "http"] as const)("%s: tools are advertised with listChanged false", async (kind) => {
    const env = newEnv()
    const served = own(kind === "stdio" ? await startStdio(env) : await startHttp(env))
    expect(served.client.getServerCapabilities()?.tools).toEqual({ listChanged: false })
  }, 300_000)
})
