/**
 * The Reconciler: one idempotent pass that brings the registry, spawnkit's tmux sessions and the workspace files back
 * into agreement after anything (a SIGKILL at any instruction included). The registry is the desired state; tmux and
 * the process table are observed. It repairs only what this home owns:
 *
 * - a reservation whose owner process (on this host) is gone is rolled back: record, session and files;
 * - a reservation of another host whose lease expired (a shared registry) is rolled back: its record only;
 * - a live record whose pane died is recorded as ended (the exit hook was missed);
 * - a live record whose session is gone, confirmed by repeated tmux queries, becomes `lost`;
 * - a session tagged with this home whose agent has no live record is killed (its process group first);
 * - prompt/MCP-config files with no active record and registry temp files of dead writers are removed;
 * - a live agent past its wall-clock or stall limit is stopped and recorded `timed_out` or `stalled` (Watchdog.ts).
 *
 * Invariant: it never touches a session without spawnkit's tags for this home, never an agent of a live owner or of
 * another host (SPAWNKIT_HOST_ID), and a failed tmux query stops the pass before anything is declared lost. A second
 * pass right after a first is a no-op.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { type Agent, isActiveStatus, isLiveStatus } from "../domain/Agent.js"
import { AgentId, SessionName, TaskId } from "../domain/Ids.js"
import { Registry } from "../registry/Registry.js"
import { logPath, REGISTRY_FILE, taskDir } from "../registry/Workspace.js"
import { Tmux } from "../sessions/Tmux.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { removeAgentFiles } from "./AgentFiles.js"
import { isoOf, removeAgent, replaceAgent } from "./AgentRecords.js"
import { recordExit } from "./ExitHook.js"
import { endAgents, stopSession } from "./Tasks.js"
import { overdue } from "./Watchdog.js"

/** One repair (or, in a dry run, one repair that would be made). */
export interface Repair {
  readonly kind:
    | "rolled_back_reservation"
    | "recorded_exit"
    | "marked_lost"
    | "killed_orphan_session"
    | "removed_orphan_file"
    | "removed_temp_file"
    | "timed_out"
    | "stalled"
  readonly task_id?: string
  readonly agent_id?: string
  readonly target: string
  readonly reason: string
}

/** What a pass did. */
export interface ReconcileReport {
  readonly dry_run: boolean
  readonly repairs: ReadonlyArray<Repair>
}

/** How many confirmed misses (with a pause between) make a session "gone". */
export const CONFIRMATIONS = 3
const CONFIRM_PAUSE = "100 millis"

const isTaskId = Schema.is(TaskId)
const isAgentId = Schema.is(AgentId)

const pidAlive = (pid: number) =>
  Effect.try({ try: () => process.kill(pid, 0), catch: (e) => e as NodeJS.ErrnoException }).pipe(
    Effect.as(true),
    // EPERM: it exists but belongs to someone else — alive.
    Effect.catch((e) => Effect.succeed(e.code === "EPERM"))
  )

/** Run one reconcile pass over every task of the home. */
export const reconcile = Effect.fn("Reconciler.reconcile")(function*(options: { readonly dryRun?: boolean } = {}) {
  const dryRun = options.dryRun ?? false
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const tmux = yield* Tmux
  const fs = yield* FileSystem.FileSystem
  const repairs: Array<Repair> = []
  /** Make a repair and report it; a repair whose effect answers `false` found nothing left to do (not reported). */
  const act = <A, E, R>(repair: Repair, effect: Effect.Effect<A, E, R>) =>
    dryRun
      ? Effect.sync(() => void repairs.push(repair))
      : effect.pipe(
        Effect.tap((done) => (done === false ? Effect.void : Effect.sync(() => void repairs.push(repair)))),
        Effect.asVoid
      )

  // Observe first, then read the registry: anything created after this observation has its record already written
  // (a reservation always precedes its files and session), so it can never look orphaned.
  const sessions = (yield* tmux.listSessions).filter((s) => s.tags["spawnkit_home"] === config.home)
  const taskNames = (yield* fs.readDirectory(config.home)).filter((n) => isTaskId(n))
  const filesByTask = new Map<string, ReadonlyArray<string>>()
  for (const taskId of taskNames) {
    const names = yield* fs.readDirectory(`${taskDir(config.home, taskId)}/prompts`).pipe(
      Effect.orElseSucceed((): ReadonlyArray<string> => [])
    )
    filesByTask.set(taskId, names)
  }
  const tasks = yield* registry.list
  const expired = yield* registry.expiredHosts

  /** A session is gone only if tmux answers, every time, that it does not exist. */
  const confirmedGone = (session: SessionName) =>
    Effect.gen(function*() {
      for (let i = 0; i < CONFIRMATIONS; i++) {
        if (i > 0) yield* Effect.sleep(CONFIRM_PAUSE)
        if (Option.isSome(yield* tmux.paneState(session))) return false
      }
      return true
    })

  for (const task of tasks) {
    const taskId = task.task_id as TaskId
    for (const agent of task.agents) {
      const agentId = agent.id as AgentId
      const session = Schema.decodeUnknownOption(SessionName)(agent.tmux_session)
      if (agent.status === "reserved") {
        const owner = agent.reservation
        if (owner === undefined) continue
        // A reservation of this host is abandoned when its owner process is gone; one of another host only when that
        // host's lease ran out, and then only the record is this pass's: the session and files are on that host.
        const local = owner.owner_host === config.hostId
        if (local ? yield* pidAlive(owner.owner_pid) : !expired.has(owner.owner_host)) continue
        // Decide on the record as it is now, not on this pass's snapshot: the owner may have committed (and then
        // exited) since the snapshot was read. Only a record still reserved by that dead owner is rolled back; its
        // removal comes first, under the lock, so a commit can no longer happen and the session and files stopped
        // next are no agent's (a crash in between leaves them orphans, which the next pass of their host removes).
        if (!dryRun) {
          const removed = yield* registry.update(taskId, (tx) => {
            const current = tx.task.agents.find((a) => a.id === agentId)
            return Effect.succeed(
              current?.status === "reserved" && current.reservation?.owner_pid === owner.owner_pid &&
                current.reservation.owner_host === owner.owner_host
                ? { result: true, next: removeAgent(tx.task, agentId) }
                : { result: false }
            )
          })
          if (!removed) continue
        }
        yield* act(
          {
            kind: "rolled_back_reservation",
            task_id: taskId,
            agent_id: agentId,
            target: agent.tmux_session,
            reason: local
              ? `owner process ${owner.owner_pid} on ${owner.owner_host} is gone`
              : `host ${owner.owner_host} sent no heartbeat for ${config.hostLeaseSeconds} s (its lease expired)`
          },
          local
            ? Effect.gen(function*() {
              if (Option.isSome(session)) yield* stopSession(session.value)
              yield* removeAgentFiles(config.home, taskId, agentId)
            })
            : Effect.void
        )
        continue
      }
      // Another host's agent: its session, process and files are that host's to watch.
      if ((agent.host ?? config.hostId) !== config.hostId) continue
      if (!isLiveStatus(agent.status) || Option.isNone(session)) continue
      const lastOutput = yield* fs.stat(logPath(config.home, taskId, agentId)).pipe(
        Effect.map((info) => Option.getOrUndefined(Option.map(info.mtime, (d) => d.getTime()))),
        Effect.orElseSucceed(() => undefined)
      )
      const due = overdue(agent, yield* Clock.currentTimeMillis, lastOutput)
      if (due !== undefined) {
        yield* act(
          { kind: due.status, task_id: taskId, agent_id: agentId, target: session.value, reason: due.reason },
          endAgents(taskId, [agentId], due.status, () => due.reason).pipe(Effect.map((ended) => ended.length > 0))
        )
        continue
      }
      const pane = yield* tmux.paneState(session.value)
      if (Option.isSome(pane) && pane.value.dead) {
        yield* act(
          {
            kind: "recorded_exit",
            task_id: taskId,
            agent_id: agentId,
            target: session.value,
            reason: `its process ended with status ${pane.value.exitCode ?? "unknown"} unrecorded`
          },
          recordExit(taskId, agentId)
        )
        continue
      }
      if (Option.isSome(pane) || !(yield* confirmedGone(session.value))) continue
      yield* act(
        {
          kind: "marked_lost",
          task_id: taskId,
          agent_id: agentId,
          target: session.value,
          reason: `session ${session.value} is gone (${CONFIRMATIONS} confirmed misses)`
        },
        markLost(taskId, agentId)
      )
    }
  }

  // Sessions of this home without a live or reserved record of this host.
  const activeRecords = new Set(
    tasks.flatMap((t) =>
      t.agents.filter((a) => isActiveStatus(a.status) && (a.host ?? config.hostId) === config.hostId)
        .map((a) => `${t.task_id}/${a.id}`)
    )
  )
  for (const s of sessions) {
    const key = `${s.tags["spawnkit_task"]}/${s.tags["spawnkit_agent"]}`
    const name = Schema.decodeUnknownOption(SessionName)(s.name)
    if (activeRecords.has(key) || Option.isNone(name)) continue
    yield* act(
      {
        kind: "killed_orphan_session",
        ...(s.tags["spawnkit_task"] !== undefined ? { task_id: s.tags["spawnkit_task"] } : {}),
        ...(s.tags["spawnkit_agent"] !== undefined ? { agent_id: s.tags["spawnkit_agent"] } : {}),
        target: s.name,
        reason: "tagged by spawnkit for this home but no active agent owns it"
      },
      stopSession(name.value)
    )
  }

  // Files: agent files without an active record, registry temp files of dead writers.
  for (const taskId of taskNames) {
    for (const file of filesByTask.get(taskId) ?? []) {
      const agentId = file.replace(/\.(prompt|mcp\.json)$/, "")
      if (!isAgentId(agentId) || activeRecords.has(`${taskId}/${agentId}`)) continue
      const path = `${taskDir(config.home, taskId)}/prompts/${file}`
      yield* act(
        { kind: "removed_orphan_file", task_id: taskId, agent_id: agentId, target: path, reason: "no active agent owns it" },
        fs.remove(path, { force: true })
      )
    }
    const entries = yield* fs.readDirectory(taskDir(config.home, taskId)).pipe(
      Effect.orElseSucceed((): ReadonlyArray<string> => [])
    )
    for (const entry of entries) {
      const match = new RegExp(`^${REGISTRY_FILE.replace(".", "\\.")}\\.tmp-(\\d+)-`).exec(entry)
      if (match === null || (yield* pidAlive(Number(match[1])))) continue
      const path = `${taskDir(config.home, taskId)}/${entry}`
      yield* act(
        { kind: "removed_temp_file", task_id: taskId, target: path, reason: `writer ${match[1]} is gone` },
        fs.remove(path, { force: true })
      )
    }
  }
  return { dry_run: dryRun, repairs } satisfies ReconcileReport
})

/** Mark a live agent `lost` (its session is gone for good) and remove its files; false when it had already ended. */
const markLost = (taskId: TaskId, agentId: AgentId) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const config = yield* SpawnkitConfig
    const now = isoOf(yield* Clock.currentTimeMillis)
    const marked = yield* registry.update(taskId, (tx) => {
      const current = tx.task.agents.find((a) => a.id === agentId)
      // The agent may have ended (exit hook, kill) since the pass read the registry: nothing to mark then.
      if (current === undefined || !isLiveStatus(current.status)) return Effect.succeed({ result: false })
      const lost: Agent = {
        ...current,
        status: "lost",
        completed_at: now,
        last_update: now,
        reason: "its tmux session disappeared without a recorded exit"
      }
      return Effect.succeed({ result: true, next: replaceAgent(tx.task, lost) })
    })
    if (marked) yield* removeAgentFiles(config.home, taskId, agentId)
    return marked
  })
