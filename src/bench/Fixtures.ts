/**
 * What a scenario starts from: spawnkit tasks created through the API, the older design's task files, records of
 * finished agents for the growth scenarios, and the attempt lists the spawning processes work through.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Agent } from "../domain/Agent.js"
import { AgentId, AgentType, ORCHESTRATOR, SessionName, TaskId } from "../domain/Ids.js"
import { Registry } from "../registry/Registry.js"
import { createTask } from "../tasks/Tasks.js"
import { type ScenarioEnv, withSpawnkit } from "./Environment.js"
import { benchFailed } from "./Scenario.js"
import type { Attempt } from "./WorkerProtocol.js"

/** Agents a task of the benchmark may have in its lifetime at least (the default max_agents). */
const MIN_MAX_AGENTS = 45
/** Finished agents per task of the growth scenarios' records, like real tasks. */
const RECORDS_PER_TASK = 50
const DAY_MS = 86_400_000

/** `count` new spawnkit tasks admitting `maxConcurrent` agents at once; their ids. */
export const createTasks = (env: ScenarioEnv, count: number, maxConcurrent: number) =>
  withSpawnkit(
    env,
    Effect.forEach(Array.from({ length: count }), () =>
      createTask({
        description: "benchmark",
        max_concurrent: maxConcurrent,
        max_agents: Math.max(maxConcurrent, MIN_MAX_AGENTS),
        max_children_per_parent: maxConcurrent,
        max_spawns_per_minute: 1_000_000
      }).pipe(Effect.map((t): string => t.task_id)))
  ).pipe(Effect.mapError(benchFailed("creating the benchmark's tasks")))

/** Ids of the older design's tasks (it made its own; any well-formed id will do). */
export const legacyTaskIds = (count: number) =>
  Array.from({ length: count }, (_, i) => `TASK-20260101-000000-${i.toString(16).padStart(8, "0")}`)

const hex8 = (n: number) => n.toString(16).padStart(8, "0")

/** One finished agent of the growth scenarios' records and the home-size measurement's finished tasks. */
export const finishedAgent = (n: number, at: string): Agent => ({
  id: `old-000000-${hex8(n)}` as AgentId,
  type: "old" as AgentType,
  tmux_session: `agent_old-000000-${hex8(n)}` as SessionName,
  parent: ORCHESTRATOR,
  depth: 1,
  status: "completed",
  started_at: at,
  completed_at: at,
  last_update: at,
  progress: 100,
  prompt: `an earlier job, number ${n}, with a prompt of realistic length for the registry`,
  prompt_sha256: n.toString(16).padStart(64, "0"),
  engine: "custom",
  exit: { exit_code: 0, last_lines: ["done"], at }
})

/** Records of finished agents, in tasks of 50 like real tasks, written through the registry. */
export const populate = (env: ScenarioEnv, records: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const registry = yield* Registry
      const at = new Date((yield* Clock.currentTimeMillis) - DAY_MS).toISOString()
      for (let t = 0; t * RECORDS_PER_TASK < records; t++) {
        const taskId = `TASK-20250101-000000-${hex8(t)}`
        const count = Math.min(RECORDS_PER_TASK, records - t * RECORDS_PER_TASK)
        yield* registry.createTask({
          task_id: taskId as TaskId,
          task_description: "an earlier task",
          created_at: at,
          workspace: `${env.home}/${taskId}`,
          status: "COMPLETED",
          agents: Array.from({ length: count }, (_, i) => finishedAgent(t * RECORDS_PER_TASK + i, at)),
          agent_hierarchy: {},
          max_agents: RECORDS_PER_TASK,
          max_depth: 5,
          max_concurrent: 20,
          total_spawned: 0,
          active_count: 0
        })
      }
    })
  ).pipe(Effect.mapError(benchFailed("writing the growth scenario's records")))

/** `items` dealt round robin into `parts` lists. */
export const split = <A>(items: ReadonlyArray<A>, parts: number): Array<Array<A>> =>
  Array.from({ length: parts }, (_, w) => items.filter((_, i) => i % parts === w))

/** Attempts with distinct jobs: `count` spawns over `taskIds`, round robin. */
export const distinctAttempts = (taskIds: ReadonlyArray<string>, count: number, prefix: string): Array<Attempt> =>
  Array.from({ length: count }, (_, i) => ({
    taskId: taskIds[i % taskIds.length]!,
    agentType: `${prefix}${i}`,
    prompt: `benchmark job ${i}`
  }))
