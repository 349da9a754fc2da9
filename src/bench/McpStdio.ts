/**
 * The MCP scenario: P stdio MCP servers (`spawnkit serve`), each with an MCP SDK client calling
 * `deploy_headless_agent` N times, one call at a time. Every client (and the server process its transport started)
 * is acquired in the scenario's scope and closed by it.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { cliScript } from "../host/PackagePaths.js"
import { spawnkitAudit } from "./Audit.js"
import type { ScenarioEnv } from "./Environment.js"
import { busyCpuMs, figures, type ProcessOutcome } from "./Figures.js"
import { createTasks } from "./Fixtures.js"
import { benchFailed, type Progress, type ScenarioFigures } from "./Scenario.js"
import type { Sample } from "./WorkerProtocol.js"

/** A connected client of a new `spawnkit serve` on the scenario's home, closed (its server stopped) with the scope. */
const mcpClient = (env: ScenarioEnv) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new Client({ name: "spawnkit-bench", version: "1" })
        const transport = new StdioClientTransport({
          command: process.execPath,
          args: [cliScript, "serve"],
          env: { ...getDefaultEnvironment(), ...env.env },
          stderr: "ignore"
        })
        // A connect that fails leaves the server process to the transport: stop it before reporting the failure.
        await client.connect(transport).catch(async (e: unknown) => {
          await transport.close()
          throw e
        })
        return client
      },
      catch: benchFailed("starting spawnkit serve")
    }),
    (client) =>
      Effect.tryPromise(() => client.close()).pipe(
        Effect.catch((e) => Effect.logWarning(`closing an MCP client failed: ${String(e)}`))
      )
  )

/** The failure tag of a tool result: its text starts with the error's tag. */
const tagOfResult = (result: Readonly<Record<string, unknown>>) => {
  if (result["isError"] !== true) return undefined
  const content = result["content"] as ReadonlyArray<{ readonly type: string; readonly text?: string }>
  return /^(\w+):/.exec(content[0]?.text ?? "")?.[1] ?? "Error"
}

/** One client's N calls, in order. */
const callsOf = (client: Client, w: number, spawns: number, taskId: string, onCall: () => void) =>
  Effect.gen(function*() {
    const samples: Array<Sample> = []
    const startMs = yield* Clock.currentTimeMillis
    for (let i = 0; i < spawns; i++) {
      const t0 = yield* Clock.currentTimeNanos
      const result = yield* Effect.tryPromise({
        try: (signal) =>
          client.callTool(
            {
              name: "deploy_headless_agent",
              arguments: { task_id: taskId, agent_type: `m${w}-${i}`, prompt: `benchmark job ${w}-${i}` }
            },
            undefined,
            { signal }
          ),
        catch: benchFailed("calling deploy_headless_agent")
      })
      const ms = Number((yield* Clock.currentTimeNanos) - t0) / 1e6
      const tag = tagOfResult(result)
      samples.push({ i, ok: tag === undefined, ms, ...(tag !== undefined ? { tag } : {}) })
      onCall()
    }
    return { samples, startMs, endMs: yield* Clock.currentTimeMillis }
  })

/** The scenario's run: `processes` servers, `spawns` calls each. */
export const mcpStdio = (processes: number, spawns: number) => (env: ScenarioEnv, progress: Progress) =>
  Effect.gen(function*() {
    const [taskId] = yield* createTasks(env, 1, processes * spawns)
    const clients = yield* Effect.forEach(Array.from({ length: processes }), () => mcpClient(env), {
      concurrency: "unbounded"
    })
    let done = 0
    const cpuBefore = yield* busyCpuMs.pipe(Effect.mapError(benchFailed("reading /proc/stat")))
    const runs = yield* Effect.forEach(
      clients,
      (client, w) => callsOf(client, w, spawns, taskId!, () => progress(++done)),
      {
        concurrency: "unbounded"
      }
    )
    const cpuMs = (yield* busyCpuMs.pipe(Effect.mapError(benchFailed("reading /proc/stat")))) - cpuBefore
    const outcomes = runs.map((r): ProcessOutcome => ({ ...r, cpuMs: cpuMs / runs.length, workerCpuMs: 0 }))
    const f = figures(outcomes)
    return { ...f, ...(yield* spawnkitAudit(env, f.ok)) } satisfies ScenarioFigures
  })
