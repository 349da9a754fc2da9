/**
 * Budget stop: how soon after an agent tree's output crosses its task's token cap every agent is recorded
 * `over_budget` and its processes are gone, and how much was spent past the cap, with a supervisor metering the logs
 * in this process, on each registry the run has (file, and PostgreSQL when it has a server).
 *
 * Each round is a task capped at 40,000 tokens in one environment per registry (its home, tmux server, database and
 * supervisor shared by the rounds): a tree of 8 usage agents (bin/usage-agent.mjs, two leads with three children
 * each, metered as Claude Code's stream-json) waits for a go file, then each prints 1,000 output tokens every 200 ms.
 * Every usage line carries the time it was printed (`timestamp`, ms); the crossing line is the 40th of them across
 * the 8 logs. Measured per round:
 * - recorded: the latest `completed_at` of the over_budget records minus the crossing line's time;
 * - gone: from the crossing line until no process of the agents' process groups (their panes', read from tmux before
 *   the go) is running and none of their sessions is on the socket, watched every 5 ms (from /proc: no process is
 *   started) and then tmux's sessions every 10 ms; what a user sees stop;
 * - overshoot: the tokens metered once every log is read to its end (`usage.complete`) minus the cap.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as References from "effect/References"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import type { Agent } from "../domain/Agent.js"
import type { TaskId } from "../domain/Ids.js"
import { totalTokens } from "../domain/Usage.js"
import { usageAgentScript } from "../host/PackagePaths.js"
import { liveMembers } from "../host/Processes.js"
import { Tmux } from "../host/Tmux.js"
import { logPath } from "../host/Workspace.js"
import { Registry } from "../registry/Registry.js"
import { spawn } from "../spawn/Spawner.js"
import { supervise } from "../supervisor/Supervisor.js"
import { createTask } from "../tasks/Tasks.js"
import { waitFor } from "../wait/Wait.js"
import { type ScenarioEnv, scenarioEnv, supervisorStarted, withSpawnkit } from "./Environment.js"
import { scenarioDatabase } from "./Postgres.js"
import { BenchFailed, benchFailed } from "./Scenario.js"
import { summarize, type Summary } from "./Stats.js"

/** The task's cap, in tokens. */
export const BUDGET_CAP_TOKENS = 40_000
/** Output tokens of each usage line, and the time between an agent's lines. */
const TOKENS_PER_LINE = 1000
const LINE_EVERY_MS = 200
/** The tree: leads, and children under each. */
const LEADS = ["a", "b"] as const
const CHILDREN_PER_LEAD = 3
export const BUDGET_AGENTS = LEADS.length * (1 + CHILDREN_PER_LEAD)
/** The goal: every agent stopped and recorded over_budget within this long after the crossing line, ms. */
export const BUDGET_STOP_GOAL_MS = 500
/** Longest a round may wait for the stop, or for the logs to be metered to their end, before the measurement fails. */
const ROUND_TIMEOUT = Duration.seconds(60)

/** Figures of one registry. */
export interface BudgetStopResult {
  readonly backend: "file" | "postgresql"
  readonly rounds: number
  readonly agents: number
  readonly capTokens: number
  /** Latest `completed_at` of the over_budget records minus the crossing line's time, ms. */
  readonly recorded: Summary
  /** From the crossing line until the agents' processes and sessions are gone, ms. */
  readonly gone: Summary
  /** Tokens metered after everything stopped, minus the cap. */
  readonly overshoot: Summary
  /** Every round recorded and stopped everything within `withinMs` of the crossing line. */
  readonly goal: { readonly withinMs: number; readonly met: boolean }
}

/** One round's figures. */
interface Round {
  readonly recordedMs: number
  readonly goneMs: number
  readonly overshoot: number
}

/** The `timestamp` of a usage line of the agent's log, or undefined for any other line (or a torn last one). */
const usageLineTime = (line: string): number | undefined => {
  if (!line.startsWith("{\"type\":\"assistant\"")) return undefined
  try {
    const at = (JSON.parse(line) as { timestamp?: unknown }).timestamp
    return typeof at === "number" ? at : undefined
  } catch {
    return undefined
  }
}

/** When the line that took the tree to its cap was printed: the cap/TOKENS_PER_LINE-th usage line of all the logs. */
const crossingTime = (home: string, taskId: TaskId, agents: ReadonlyArray<Agent>) => {
  const times = agents.flatMap((a) =>
    Fs.readFileSync(logPath(home, taskId, a.id), "utf8").split("\n").flatMap((l) => usageLineTime(l) ?? [])
  ).sort((x, y) => x - y)
  return times[Math.ceil(BUDGET_CAP_TOKENS / TOKENS_PER_LINE) - 1]
}

/** The tree of 8, parents first, each under the task (no cap of its own). */
const spawnTree = (taskId: TaskId) =>
  Effect.gen(function*() {
    const ids: Array<string> = []
    for (const lead of LEADS) {
      const parent = (yield* spawn({ taskId, agentType: `lead-${lead}`, prompt: `lead ${lead}` })).agent_id
      ids.push(parent)
      for (let k = 1; k <= CHILDREN_PER_LEAD; k++) {
        ids.push((yield* spawn({ taskId, agentType: `${lead}${k}`, prompt: `${lead}${k} work`, parent })).agent_id)
      }
    }
    return ids
  })

/**
 * When no running process of the groups is left, and then none of the sessions is on the socket. The members known
 * are checked every 5 ms (a /proc read each); once they are gone, the whole process table is read for any other
 * member before the groups count as gone. Zombies count as gone: they have ended, and an init that reaps late (as in
 * some containers) would keep them for seconds.
 */
const goneAt = (groups: ReadonlySet<number>, sessions: ReadonlySet<string>) =>
  Effect.gen(function*() {
    const tmux = yield* Tmux
    let members = liveMembers(groups)
    for (;;) {
      members = liveMembers(groups, members)
      if (members.length === 0) members = liveMembers(groups)
      if (members.length === 0) break
      yield* Effect.sleep(Duration.millis(5))
    }
    while ((yield* tmux.listSessions).some((s) => sessions.has(s.name))) yield* Effect.sleep(Duration.millis(10))
    return yield* Clock.currentTimeMillis
  })

/** Read the task until `done` holds of its records (every 20 ms), for ROUND_TIMEOUT at most. */
const taskWhen = (taskId: TaskId, what: string, done: (agents: ReadonlyArray<Agent>) => boolean) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    for (;;) {
      const task = yield* registry.read(taskId)
      if (done(task.agents)) return task.agents
      yield* Effect.sleep(Duration.millis(20))
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: ROUND_TIMEOUT,
      orElse: () => Effect.fail(new BenchFailed({ reason: `timed out waiting until ${what}` }))
    })
  )

/** One round in the registry's environment, its supervisor running: spawn, let go, wait for the stop, measure. */
const round = (env: ScenarioEnv, n: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const go = NodePath.join(env.dir, "go")
      Fs.rmSync(go, { force: true })
      const task = yield* createTask({
        description: `budget stop, round ${n}`,
        max_concurrent: BUDGET_AGENTS,
        max_tokens: BUDGET_CAP_TOKENS
      })
      const taskId = task.task_id
      const ids = yield* spawnTree(taskId)
      const sessions = new Set(ids.map((id) => `agent_${id}`))
      const panes = (yield* (yield* Tmux).listPanes).filter((s) => sessions.has(s.name))
      const groups = new Set(panes.flatMap((s) => (s.pane === undefined || s.pane.dead ? [] : [s.pane.panePid])))
      if (groups.size !== ids.length) {
        return yield* new BenchFailed({ reason: `${ids.length} agents spawned, ${groups.size} panes alive` })
      }
      const watcher = yield* Effect.forkChild(goneAt(groups, sessions))
      Fs.writeFileSync(go, "")
      const waited = yield* waitFor({ taskId, agentIds: ids, timeoutSeconds: Duration.toSeconds(ROUND_TIMEOUT) })
      if (!waited.satisfied || waited.agents.some((a) => a.status !== "over_budget")) {
        return yield* new BenchFailed({
          reason: `the tree was not stopped over budget: ${waited.agents.map((a) => a.status).join(", ")}`
        })
      }
      const goneMs = yield* Fiber.join(watcher).pipe(
        Effect.timeoutOrElse({
          duration: ROUND_TIMEOUT,
          orElse: () => Effect.fail(new BenchFailed({ reason: "the stopped agents' processes did not end" }))
        })
      )
      const agents = yield* taskWhen(taskId, "every log is metered to its end", (as) =>
        as.length === ids.length && as.every((a) =>
          a.usage?.complete === true
        ))
      const crossing = crossingTime(env.home, taskId, agents)
      if (crossing === undefined) {
        return yield* new BenchFailed({ reason: "the logs hold fewer usage lines than the cap" })
      }
      const lastRecord = Math.max(...agents.map((a) => Date.parse(a.completed_at ?? "")))
      const spent = agents.reduce((sum, a) => sum + (a.usage === undefined ? 0 : totalTokens(a.usage.tokens)), 0)
      return { recordedMs: lastRecord - crossing, goneMs: goneMs - crossing, overshoot: spent - BUDGET_CAP_TOKENS }
    })
  )

/** The rounds on one registry, in an environment (and database) of its own with a supervisor running in it. */
const onBackend = (backend: BudgetStopResult["backend"], rounds: number, server: string | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const database = backend === "postgresql" && server !== undefined ? yield* scenarioDatabase(server) : undefined
    const env = yield* scenarioEnv(
      `budget-stop-${backend}`,
      (dir) => [
        process.execPath,
        usageAgentScript,
        ...["--go", NodePath.join(dir, "go"), "--every", String(LINE_EVERY_MS), "--output", String(TOKENS_PER_LINE)]
      ],
      database,
      { agentFormat: "claude" }
    )
    // Its warning per stopped agent is what the measurement expects: only errors reach the bench's output.
    yield* withSpawnkit(env, supervise({ reconcileEvery: Duration.zero })).pipe(
      Effect.provideService(References.MinimumLogLevel, "Error"),
      Effect.forkScoped
    )
    yield* supervisorStarted(env.home)
    const figures: Array<Round> = []
    for (let n = 1; n <= rounds; n++) figures.push(yield* round(env, n))
    const recorded = summarize(figures.map((f) => f.recordedMs))
    const gone = summarize(figures.map((f) => f.goneMs))
    return {
      backend,
      rounds,
      agents: BUDGET_AGENTS,
      capTokens: BUDGET_CAP_TOKENS,
      recorded,
      gone,
      overshoot: summarize(figures.map((f) => f.overshoot)),
      goal: {
        withinMs: BUDGET_STOP_GOAL_MS,
        met: recorded.max <= BUDGET_STOP_GOAL_MS && gone.max <= BUDGET_STOP_GOAL_MS
      }
    } satisfies BudgetStopResult
  }))

/** `rounds` rounds on the file registry, then on PostgreSQL when the run has a server (`server`, its URL). */
export const measureBudgetStop = (rounds: number, server: string | undefined, progress: (text: string) => void) =>
  Effect.gen(function*() {
    const results: Array<BudgetStopResult> = []
    for (const backend of server === undefined ? ["file" as const] : ["file" as const, "postgresql" as const]) {
      const r = yield* onBackend(backend, rounds, server)
      progress(
        `budget stop (${backend}): recorded p50 ${r.recorded.p50} / max ${r.recorded.max} ms, ` +
          `gone p50 ${r.gone.p50} / max ${r.gone.max} ms after the crossing line; ` +
          `overshoot p50 ${r.overshoot.p50} / max ${r.overshoot.max} tokens`
      )
      results.push(r)
    }
    return results
  }).pipe(Effect.mapError(benchFailed("measuring the budget stop")))
