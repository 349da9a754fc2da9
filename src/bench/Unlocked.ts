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
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { promisify } from "node:util"
import { agentRunner } from "../host/PackagePaths.js"
import type { Attempt } from "./Worker.js"

const run = promisify(execFile)

/** The registries as the older orchestrator kept them (the fields this benchmark needs). */
export interface LegacyTask {
  task_id: string
  max_concurrent: number
  max_agents: number
  total_spawned: number
  active_count: number
  agents: Array<{ id: string; type: string; tmux_session: string; status: string; prompt: string }>
}

export interface LegacyGlobal {
  total_agents_spawned: number
  active_agents: number
  agents: Record<string, { task_id: string; type: string; tmux_session: string; status: string }>
}

export const legacyTaskFile = (home: string, taskId: string) => `${home}/${taskId}/AGENT_REGISTRY.json`
export const legacyGlobalFile = (home: string) => `${home}/registry/GLOBAL_REGISTRY.json`

/** Create a task in the legacy layout. */
export const createLegacyTask = (home: string, taskId: string, limits: { maxConcurrent: number; maxAgents: number }) => {
  Fs.mkdirSync(`${home}/${taskId}/prompts`, { recursive: true })
  Fs.mkdirSync(`${home}/registry`, { recursive: true })
  const task: LegacyTask = {
    task_id: taskId,
    max_concurrent: limits.maxConcurrent,
    max_agents: limits.maxAgents,
    total_spawned: 0,
    active_count: 0,
    agents: []
  }
  Fs.writeFileSync(legacyTaskFile(home, taskId), JSON.stringify(task, null, 2))
  if (!Fs.existsSync(legacyGlobalFile(home))) {
    const global: LegacyGlobal = { total_agents_spawned: 0, active_agents: 0, agents: {} }
    Fs.writeFileSync(legacyGlobalFile(home), JSON.stringify(global, null, 2))
  }
}

/** `tmux new-session -d` of the agent runner, as the floor and the old design start an agent: nothing else. */
export const startBareSession = (
  socket: string,
  name: string,
  prompt: string,
  log: string,
  command: ReadonlyArray<string>
) => run("tmux", ["-S", socket, "new-session", "-d", "-s", name, "--", agentRunner, prompt, log, "--", ...command])

const readJson = <A>(file: string): A => JSON.parse(Fs.readFileSync(file, "utf8")) as A

/** One spawn the old way. Returns a rejection tag, or undefined when the agent was started. */
export const spawnUnlocked = async (options: {
  readonly home: string
  readonly socket: string
  readonly command: ReadonlyArray<string>
  readonly attempt: Attempt
}): Promise<string | undefined> => {
  const { attempt, home } = options
  const task = readJson<LegacyTask>(legacyTaskFile(home, attempt.taskId))
  const global = readJson<LegacyGlobal>(legacyGlobalFile(home))
  if (task.active_count >= task.max_concurrent) return "LimitReached"
  if (task.total_spawned >= task.max_agents) return "LimitReached"
  if (task.agents.some((a) => a.type === attempt.agentType && a.status === "running")) return "DuplicateAgent"
  const id = `${attempt.agentType}-${randomBytes(3).toString("hex")}`
  const session = `agent_${id}`
  const prompt = `${home}/${attempt.taskId}/prompts/${id}.txt`
  Fs.writeFileSync(prompt, attempt.prompt)
  await startBareSession(options.socket, session, prompt, `${home}/${attempt.taskId}/prompts/${id}.log`, options.command)
  task.agents.push({ id, type: attempt.agentType, tmux_session: session, status: "running", prompt: attempt.prompt })
  task.total_spawned += 1
  task.active_count += 1
  global.agents[id] = { task_id: attempt.taskId, type: attempt.agentType, tmux_session: session, status: "running" }
  global.total_agents_spawned += 1
  global.active_agents += 1
  Fs.writeFileSync(legacyTaskFile(home, attempt.taskId), JSON.stringify(task, null, 2))
  Fs.writeFileSync(legacyGlobalFile(home), JSON.stringify(global, null, 2))
  return undefined
}
