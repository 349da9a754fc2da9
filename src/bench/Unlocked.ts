/**
 * The older orchestrator's spawn, reproduced for the benchmark's baseline: no lock anywhere.
 *
 *   read AGENT_REGISTRY.json and GLOBAL_REGISTRY.json -> check limits and duplicates (by agent type, as it did)
 *   -> write the prompt file -> start the tmux session -> write both registries back in place (truncate + write)
 *
 * Two spawns that overlap both read the same registry, so each writes back a registry without the other's agent
 * (a lost update), and both pass the limit and duplicate checks (overshoot, twins). Its fixed 2 s sleep after the
 * session started is left out: that would only widen the window.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import { execFile } from "node:child_process"
import { agentRunner } from "../host/PackagePaths.js"
import type { Attempt } from "./WorkerProtocol.js"

/** The registries as the older orchestrator kept them (the fields this benchmark needs). */
export interface LegacyTask {
  task_id: string
  max_concurrent: number
  max_agents: number
  total_spawned: number
  active_count: number
  agents: Array<{ id: string; type: string; tmux_session: string; status: string; prompt: string }>
}

/** The older orchestrator's global registry. */
export interface LegacyGlobal {
  total_agents_spawned: number
  active_agents: number
  agents: Record<string, { task_id: string; type: string; tmux_session: string; status: string }>
}

/** A registry read while another process was rewriting it in place: the old design's failure mode. */
export class TornRead extends Schema.TaggedError<TornRead>()("TornRead", { file: Schema.String }) {}

/** `tmux new-session` failed. */
export class SessionStartFailed extends Schema.TaggedError<SessionStartFailed>()("SessionStartFailed", {
  session: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `tmux new-session ${this.session} failed: ${this.reason}`
  }
}

export const legacyTaskFile = (home: string, taskId: string) => `${home}/${taskId}/AGENT_REGISTRY.json`
export const legacyGlobalFile = (home: string) => `${home}/registry/GLOBAL_REGISTRY.json`

const json = (value: unknown) => JSON.stringify(value, null, 2)

/** Create a task in the legacy layout (and the global registry, once). */
export const createLegacyTask = Effect.fn("Unlocked.createLegacyTask")(function*(
  home: string,
  taskId: string,
  limits: { readonly maxConcurrent: number; readonly maxAgents: number }
) {
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory(`${home}/${taskId}/prompts`, { recursive: true })
  yield* fs.makeDirectory(`${home}/registry`, { recursive: true })
  const task: LegacyTask = {
    task_id: taskId,
    max_concurrent: limits.maxConcurrent,
    max_agents: limits.maxAgents,
    total_spawned: 0,
    active_count: 0,
    agents: []
  }
  yield* fs.writeFileString(legacyTaskFile(home, taskId), json(task))
  if (!(yield* fs.exists(legacyGlobalFile(home)))) {
    const global: LegacyGlobal = { total_agents_spawned: 0, active_agents: 0, agents: {} }
    yield* fs.writeFileString(legacyGlobalFile(home), json(global))
  }
})

/**
 * `tmux new-session -d` of the agent runner, as the floor and the old design start an agent: nothing else. Node's
 * execFile, as spawnkit's Tmux service runs tmux, so the floor pays what spawnkit pays per tmux call.
 */
export const startBareSession = (
  socket: string,
  name: string,
  prompt: string,
  log: string,
  command: ReadonlyArray<string>
) =>
  Effect.callback<void, SessionStartFailed>((resume, signal) => {
    const args = ["-S", socket, "new-session", "-d", "-s", name, "--", agentRunner, prompt, log, "--", ...command]
    execFile("tmux", args, { signal }, (error, _stdout, stderr) =>
      resume(
        error === null
          ? Effect.void
          : Effect.fail(new SessionStartFailed({ session: name, reason: stderr.trim() || error.message }))
      ))
  })

/** A legacy registry file, parsed; a half-written one is a TornRead. */
const readJson = <A>(file: string) =>
  Effect.gen(function*() {
    const text = yield* (yield* FileSystem.FileSystem).readFileString(file)
    return yield* Effect.try({ try: () => JSON.parse(text) as A, catch: () => new TornRead({ file }) })
  })

/** One spawn the old way. Returns a rejection tag, or undefined when the agent was started. */
export const spawnUnlocked = Effect.fn("Unlocked.spawn")(function*(options: {
  readonly home: string
  readonly socket: string
  readonly command: ReadonlyArray<string>
  readonly attempt: Attempt
}) {
  const fs = yield* FileSystem.FileSystem
  const { attempt, home } = options
  const task = yield* readJson<LegacyTask>(legacyTaskFile(home, attempt.taskId))
  const global = yield* readJson<LegacyGlobal>(legacyGlobalFile(home))
  if (task.active_count >= task.max_concurrent) return "LimitReached"
  if (task.total_spawned >= task.max_agents) return "LimitReached"
  if (task.agents.some((a) => a.type === attempt.agentType && a.status === "running")) return "DuplicateAgent"
  const id = `${attempt.agentType}-${(yield* Random.nextIntBetween(0, 2 ** 24)).toString(16).padStart(6, "0")}`
  const session = `agent_${id}`
  const prompt = `${home}/${attempt.taskId}/prompts/${id}.txt`
  yield* fs.writeFileString(prompt, attempt.prompt)
  yield* startBareSession(
    options.socket,
    session,
    prompt,
    `${home}/${attempt.taskId}/prompts/${id}.log`,
    options.command
  )
  task.agents.push({ id, type: attempt.agentType, tmux_session: session, status: "running", prompt: attempt.prompt })
  task.total_spawned += 1
  task.active_count += 1
  global.agents[id] = { task_id: attempt.taskId, type: attempt.agentType, tmux_session: session, status: "running" }
  global.total_agents_spawned += 1
  global.active_agents += 1
  yield* fs.writeFileString(legacyTaskFile(home, attempt.taskId), json(task))
  yield* fs.writeFileString(legacyGlobalFile(home), json(global))
  return undefined
})
