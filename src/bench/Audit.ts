/**
 * What a run left behind, counted by the same rules for every design: sessions whose agent no record shows running
 * (lost), jobs started twice (twins), agents beyond the limit (overshoot) and what a reconciler would repair (orphans).
 * spawnkit's home is read through spawnkit itself (its registry, tmux service and a dry-run reconcile); the unlocked
 * design's through its own files.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type { Agent } from "../domain/Agent.js"
import { Tmux } from "../host/Tmux.js"
import { Registry } from "../registry/Registry.js"
import { reconcile } from "../supervisor/Reconciler.js"
import { type ScenarioEnv, withSpawnkit } from "./Environment.js"
import { benchFailed } from "./Scenario.js"
import { type LegacyTask, legacyTaskFile } from "./Unlocked.js"

/** The audit's figures. */
export interface AuditFigures {
  readonly lost: number
  readonly twins: number
  readonly overshoot: number
  readonly orphans: number
}

/** Surplus of a count over one, summed: how many more than once each key occurs. */
const surplus = (keys: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1)
  return [...counts.values()].reduce((n, c) => n + (c - 1), 0)
}

/** Registry-side figures of a spawnkit home after a run in which `okCount` spawns succeeded. */
export const spawnkitAudit = (env: ScenarioEnv, okCount: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const registry = yield* Registry
      const tmux = yield* Tmux
      const sessions = yield* tmux.listSessions
      const report = yield* reconcile({ dryRun: true })
      const tasks = (yield* registry.list({ scope: "all" })).tasks
      const running = tasks.flatMap((t) => t.agents.filter((a: Agent) => a.status === "running"))
      const known = new Set<string>(running.map((a) => a.tmux_session))
      return {
        lost: Math.max(0, okCount - running.length) + sessions.filter((s) => !known.has(s.name)).length,
        twins: surplus(running.map((a) => `${a.parent}\u0000${a.prompt_sha256}`)),
        overshoot: tasks.reduce(
          (n, t) => n + Math.max(0, t.agents.filter((a: Agent) => a.status === "running").length - t.max_concurrent),
          0
        ),
        orphans: report.repairs.length
      } satisfies AuditFigures
    })
  ).pipe(Effect.mapError(benchFailed("auditing the spawnkit home")))

/** Sessions on the scenario's tmux server (none when it never started). */
const sessionsOn = (env: ScenarioEnv) =>
  withSpawnkit(env, Tmux.use((tmux) => tmux.listSessions)).pipe(
    Effect.map((sessions) => sessions.map((s) => s.name))
  )

/** The sessions a legacy task's registry knows; a registry left torn at the end knows none (the design's failure). */
const recordedSessions = (env: ScenarioEnv, taskId: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(legacyTaskFile(env.home, taskId))
    return yield* Effect.try({
      try: () => (JSON.parse(text) as LegacyTask).agents.map((a) => a.tmux_session),
      catch: (e) => e
    }).pipe(Effect.catchIf((e) => e instanceof SyntaxError, () => Effect.succeed([])))
  })

/** The agent type a legacy session was started for (`agent_<type>-<6 hex>`). */
const typeOf = (session: string) => session.replace(/^agent_/, "").replace(/-[0-9a-f]{6}$/, "")

/** Registry-side figures of the unlocked design's home after a run over `taskIds` with `limit` each. */
export const unlockedAudit = (env: ScenarioEnv, taskIds: ReadonlyArray<string>, limit: number) =>
  Effect.gen(function*() {
    const sessions = yield* sessionsOn(env)
    const recorded = new Set((yield* Effect.forEach(taskIds, (id) => recordedSessions(env, id))).flat())
    const lost = sessions.filter((s) => !recorded.has(s)).length
    return {
      lost,
      twins: surplus(sessions.map(typeOf)),
      overshoot: Math.max(0, sessions.length - limit * taskIds.length),
      orphans: lost
    } satisfies AuditFigures
  }).pipe(Effect.mapError(benchFailed("auditing the unlocked home")))
