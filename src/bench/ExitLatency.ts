/**
 * Exit-to-record latency: how long after an agent's process exits its record says so, and the machine's CPU per
 * recorded exit, with a supervisor running (exit files, src/supervisor/) and with only tmux's pane-died hook (a
 * `spawnkit agent-exited` process per exit). Each mode runs in an environment of its own.
 *
 * Agents wait for a go file, then write their exit time (bash's $EPOCHREALTIME, microseconds, no process started)
 * and exit; they are let go in batches, each batch waited for (recorded, session removed) before the next. The
 * record time is the record's `exit.at` (milliseconds, ISO). Each batch is waited for with `waitFor` (woken by the
 * event journal), whose return after the batch's last exit is measured too. CPU is the whole machine's busy time from
 * /proc/stat over the release-to-last-record phase, divided by the exits: it includes this process's waiting and,
 * with the supervisor, the supervisor itself, which runs in this process.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { Tmux } from "../host/Tmux.js"
import { Registry } from "../registry/Registry.js"
import { spawn } from "../spawn/Spawner.js"
import { supervise } from "../supervisor/Supervisor.js"
import { createTask } from "../tasks/Tasks.js"
import { MAX_WAIT_SECONDS, waitFor } from "../wait/Wait.js"
import { type ScenarioEnv, scenarioEnv, supervisorStarted, withSpawnkit } from "./Environment.js"
import { benchFailed } from "./Scenario.js"
import { summarize, type Summary } from "./Stats.js"

/** Figures of one mode. */
export interface ExitLatencyResult {
  readonly mode: "supervisor" | "pane-died hook"
  readonly exits: number
  readonly batch: number
  /** Record time minus exit time, ms. */
  readonly latency: Summary
  /** When a `waitFor` on each batch returned, after the batch's last agent exited, ms. */
  readonly waitAfterLastExit: Summary
  /** Busy CPU time of the whole machine per recorded exit, ms. */
  readonly cpuMsPerExit: number
}

/** Clock ticks per second of /proc/stat (USER_HZ; 100 on Linux). */
const USER_HZ = 100

/** Busy CPU time of the whole machine so far, ms (all jiffies but idle and iowait). */
const machineBusyMs = () => {
  const fields = Fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((s, x) => s + x, 0)
  return ((total - fields[3]! - (fields[4] ?? 0)) * 1000) / USER_HZ
}

/**
 * The agent: waits for its go FIFO (made right after the spawns), blocks reading it (no polling while the exits are
 * measured, so waiting agents cost no CPU), writes its exit time (µs since the epoch), exits 0.
 */
const agentScript = (dir: string) =>
  `#!/usr/bin/env bash\ngo="${dir}/go-$SPAWNKIT_AGENT_ID"\nuntil [ -p "$go" ]; do sleep 0.05; done\nread -r _ < "$go"\n` +
  `printf '%s' "\${EPOCHREALTIME/./}" > "${dir}/exited-$SPAWNKIT_AGENT_ID"\nexit 0\n`

/**
 * Let an agent go: write to its FIFO, opened without blocking. An agent not reading it yet (it looks for its FIFO
 * every 50 ms, later on a loaded machine) makes the open fail with ENXIO: tried again every 10 ms for up to 30 s,
 * then the measurement fails instead of hanging.
 */
const release = (fifo: string) =>
  Effect.try({
    try: () => {
      const fd = Fs.openSync(fifo, Fs.constants.O_WRONLY | Fs.constants.O_NONBLOCK)
      try {
        Fs.writeSync(fd, "go\n")
      } finally {
        Fs.closeSync(fd)
      }
    },
    catch: (e) => e as NodeJS.ErrnoException
  }).pipe(
    Effect.retry({
      while: (e) => e.code === "ENXIO",
      schedule: Schedule.spaced(Duration.millis(10)),
      times: 3000
    })
  )

/** Spawn `count` gated agents into one task. */
const spawnGated = (env: ScenarioEnv, count: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const task = yield* createTask({ description: "exit latency", max_concurrent: count, max_agents: count })
      const agents = yield* Effect.forEach(
        Array.from({ length: count }, (_, i) => i),
        (i) => spawn({ taskId: task.task_id, agentType: "exiting", prompt: `agent ${i}` }),
        { concurrency: 4 }
      )
      const agentIds = agents.map((a) => a.agent_id)
      for (const id of agentIds) execFileSync("mkfifo", [NodePath.join(env.dir, `go-${id}`)])
      return { taskId: task.task_id, agentIds }
    })
  )

/**
 * Wait until every agent of the list has ended (`waitFor`, woken by the event journal: no polling of the registry),
 * then until the recorder's work is done (its last step removes the session); returns each `exit.at` and when the
 * wait returned.
 */
const recordedTimes = (env: ScenarioEnv, taskId: string, agentIds: ReadonlyArray<string>) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const tmux = yield* Tmux
      const result = yield* waitFor({ taskId, agentIds, timeoutSeconds: MAX_WAIT_SECONDS })
      const returnedMs = Date.now()
      if (!result.satisfied) {
        return yield* Effect.fail(new Error(`agents did not end: ${JSON.stringify(result.agents)}`))
      }
      const registry = yield* Registry
      const task = yield* registry.read(taskId as never)
      const ended = task.agents.filter((a) => agentIds.includes(a.id))
      for (;;) {
        const sessions = new Set((yield* tmux.listSessions).map((x) => x.name))
        if (ended.every((a) => !sessions.has(a.tmux_session))) break
        yield* Effect.sleep(Duration.millis(10))
      }
      return { at: new Map<string, number>(ended.map((a) => [a.id, Date.parse(a.exit!.at)])), returnedMs }
    })
  )

/** One mode in an environment of its own: spawn, (start the supervisor), release in batches, measure. */
const measureMode = (mode: ExitLatencyResult["mode"], exits: number, batch: number) =>
  Effect.scoped(Effect.gen(function*() {
    const env = yield* scenarioEnv(
      `exits-${mode === "supervisor" ? "supervisor" : "hook"}`,
      (dir) => [NodePath.join(dir, "agent.sh")]
    )
    Fs.writeFileSync(NodePath.join(env.dir, "agent.sh"), agentScript(env.dir), { mode: 0o755 })
    const { taskId, agentIds } = yield* spawnGated(env, exits)
    if (mode === "supervisor") {
      yield* withSpawnkit(env, supervise({ reconcileEvery: Duration.zero })).pipe(Effect.forkScoped)
      yield* supervisorStarted(env.home)
    }
    const latencies: Array<number> = []
    const waits: Array<number> = []
    const before = machineBusyMs()
    for (let i = 0; i < agentIds.length; i += batch) {
      const wave = agentIds.slice(i, i + batch)
      for (const id of wave) yield* release(NodePath.join(env.dir, `go-${id}`))
      const { at, returnedMs } = yield* recordedTimes(env, taskId, wave)
      let lastExitMs = 0
      for (const id of wave) {
        const exitedMs = Number(Fs.readFileSync(NodePath.join(env.dir, `exited-${id}`), "utf8")) / 1000
        latencies.push(at.get(id)! - exitedMs)
        lastExitMs = Math.max(lastExitMs, exitedMs)
      }
      waits.push(returnedMs - lastExitMs)
    }
    const busy = machineBusyMs() - before
    return {
      mode,
      exits: agentIds.length,
      batch,
      latency: summarize(latencies),
      waitAfterLastExit: summarize(waits),
      cpuMsPerExit: Math.round((busy / agentIds.length) * 10) / 10
    } satisfies ExitLatencyResult
  }))

/** Both modes, the hook first; `exits` agents each, let go `batch` at a time. */
export const measureExitLatency = (exits: number, batch: number, progress: (text: string) => void) =>
  Effect.gen(function*() {
    const results: Array<ExitLatencyResult> = []
    for (const mode of ["pane-died hook", "supervisor"] as const) {
      const r = yield* measureMode(mode, exits, batch)
      progress(
        `exit latency (${mode}): p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${r.cpuMsPerExit} ms CPU per exit; ` +
          `wait returned ${r.waitAfterLastExit.p50} ms (p50) after a batch's last exit`
      )
      results.push(r)
    }
    return results
  }).pipe(Effect.mapError(benchFailed("measuring exit latency")))
