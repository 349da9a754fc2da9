/**
 * The Reconciler: one idempotent pass that brings the registry, spawnkit's tmux sessions and the workspace files back
 * into agreement after anything (a SIGKILL at any instruction included). The registry is the desired state; tmux and
 * the process table are observed. A pass is observe -> plan (ReconcilePlan, pure) -> apply, and each repair is
 * re-checked under the registry lock when it is applied. It repairs only what this home owns:
 *
 * - a reservation whose spawn is over is rolled back (record, session and files): its owner on this host is gone, or
 *   is this very process with no such spawn in flight, or the reservation is older than the spawn deadline; a
 *   reservation of another host whose lease expired is rolled back too (its record only);
 * - a live record whose pane died is recorded as ended (the exit hook was missed);
 * - a live record whose session is gone, confirmed by repeated tmux queries, becomes `lost`;
 * - a session tagged with this home whose agent has no active record is killed (its process group first);
 * - prompt/MCP-config files with no active record and registry temp files of dead writers are removed;
 * - a live agent past its wall-clock or stall limit is stopped and recorded `timed_out` or `stalled` (Watchdog.ts);
 * - worktrees of ended agents and orphaned ones (a spawn that died mid-way, a record gone) are removed with their
 *   branches if they hold no work, else kept and reported; git's stale worktree metadata is pruned (Worktrees.ts);
 * - exit files no supervisor handled (ExitFiles.ts) are handled: each exit they announce is confirmed with tmux and
 *   recorded, and the file removed (one still young whose agent looks alive is left to the supervisor retrying it).
 *
 * It reads only the tasks that may hold slots (the registry's active listing) plus the tasks tmux's sessions name, so
 * a pass costs what is alive, not what ever lived. A task that cannot be read is reported (id, where, why: left
 * untouched) and every other task is still supervised: the pass is then partial.
 *
 * Invariant: it never touches a session without spawnkit's tags for this home, nor any session or file of a task it
 * could not read, never an agent of another host (SPAWNKIT_HOST_ID), and a failed tmux query stops the pass before
 * anything is declared lost. A second pass right after a first is a no-op.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import { type AgentId, type SessionName, sessionNameOf, TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { processAlive } from "../host/Processes.js"
import { Tmux } from "../host/Tmux.js"
import { logPath, promptsDir, taskDir } from "../host/Workspace.js"
import { recordExit } from "../lifecycle/ExitHook.js"
import { endAgents, stopSession } from "../lifecycle/Kill.js"
import { Registry, type UnreadableTask } from "../registry/Registry.js"
import { removeAgentFiles } from "../spawn/AgentFiles.js"
import { isoOf, removeAgent, replaceAgent } from "../spawn/AgentRecords.js"
import { isSpawnInFlight } from "../spawn/InFlight.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { settleAll, type WorktreeOutcome } from "../worktree/Worktrees.js"
import { sweepExitFiles } from "./ExitFiles.js"
import {
  abandoned,
  abandonedEntry,
  describeAbandoned,
  isOfThisHost,
  isTempFile,
  type Observation,
  type ObservedFile,
  plan,
  type Planned
} from "./ReconcilePlan.js"

/** One repair (or, in a dry run, one repair that would be made). */
export interface Repair {
  readonly kind: Planned["kind"] | "removed_worktree"
  readonly task_id?: string
  readonly agent_id?: string
  readonly target: string
  readonly reason: string
}

/** A task the pass could not read: reported, and left untouched (its registry, sessions and files). */
export interface UnreadableFinding extends UnreadableTask {
  readonly action: "left untouched"
}

/** A repair that could not be made this pass (its registry could not be written); the next pass tries again. */
export interface FailedRepair extends Repair {
  readonly error: string
}

/** What a pass did. */
export interface ReconcileReport {
  readonly dry_run: boolean
  readonly repairs: ReadonlyArray<Repair>
  /** Tasks that could not be read; their repairs wait until they are repaired or set aside (task quarantine). */
  readonly unreadable: ReadonlyArray<UnreadableFinding>
  /** Repairs that failed (e.g. the registry could not be written); every other repair was still made. */
  readonly failed: ReadonlyArray<FailedRepair>
  /** True when some task could not be read or some repair failed: everything else was reconciled. */
  readonly partial: boolean
  /**
   * Worktrees of ended agents, or orphans, that hold work: kept for a person (`spawnkit worktree list`), never removed
   * by a pass.
   */
  readonly worktrees_kept: ReadonlyArray<WorktreeOutcome>
}

/** How many confirmed misses (with a pause between) make a session "gone". */
export const CONFIRMATIONS = 3
const CONFIRM_PAUSE = "100 millis"

const isTaskId = Schema.is(TaskId)

/**
 * The names of the files (anything but a directory) in a directory: none when it does not exist; one that cannot be
 * listed is logged and skipped. Directories are left out: an agent can make one under any name in its task's
 * directory, and the pass only ever removes files.
 */
const fileNamesIn = (dir: string) =>
  Effect.try({
    try: () => Fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => e.name),
    catch: (e) => e as NodeJS.ErrnoException
  }).pipe(
    Effect.catch((e) =>
      e.code === "ENOENT"
        ? Effect.succeed<ReadonlyArray<string>>([])
        : Effect.logWarning(`reconcile: cannot list ${dir} (${e.message}); skipped`).pipe(
          Effect.as<ReadonlyArray<string>>([])
        )
    )
  )

/** When a file was last modified, if it exists. */
const mtimeOf = (file: string) =>
  Effect.try({ try: () => Fs.statSync(file).mtimeMs, catch: (e) => e }).pipe(
    Effect.option,
    Effect.map(Option.getOrUndefined)
  )

/** The agent files and registry temp files in the directories of the given tasks. */
const observeFiles = (home: string, taskIds: Iterable<TaskId>) =>
  Effect.gen(function*() {
    const agentFiles: Array<ObservedFile> = []
    const tempFiles: Array<ObservedFile> = []
    for (const taskId of taskIds) {
      for (const name of yield* fileNamesIn(promptsDir(home, taskId))) agentFiles.push({ taskId, name })
      for (const name of yield* fileNamesIn(taskDir(home, taskId))) {
        if (isTempFile(name)) tempFiles.push({ taskId, name })
      }
    }
    return { agentFiles, tempFiles }
  })

/**
 * The tasks that may hold slots, then every other task a session names. A task a session names may hold no slot (no
 * marker: its last active record ended, e.g. by a kill whose process died before it stopped the session) and still be
 * unreadable (the agent lives on and rewrote its registry): it is read too, since only a task known to decode may
 * have its sessions and files judged orphans.
 */
const readTasks = (named: ReadonlySet<TaskId>) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const listed = yield* registry.list({ scope: "active" })
    const tasks = [...listed.tasks]
    const unreadable = [...listed.unreadable]
    const seen = new Set<string>([...tasks.map((t) => t.task_id), ...unreadable.map((u) => u.task_id)])
    for (const taskId of named) {
      if (seen.has(taskId)) continue
      yield* registry.read(taskId).pipe(
        Effect.flatMap((task) => Effect.sync(() => void tasks.push(task))),
        // Gone: its sessions and files are orphans indeed.
        Effect.catchTag("TaskNotFound", () => Effect.void),
        Effect.catchTags({
          RegistryCorrupt: (e) =>
            Effect.sync(() => void unreadable.push({ task_id: taskId, location: e.path, reason: e.reason })),
          RegistryIoError: (e) =>
            Effect.sync(() =>
              void unreadable.push({ task_id: taskId, location: e.path, reason: `${e.operation}: ${e.reason}` })
            )
        })
      )
    }
    return { tasks, unreadable }
  })

/** When each live agent with a stall limit last wrote output (its log's mtime), keyed `task/agent`. */
const lastOutputTimes = (home: string, tasks: ReadonlyArray<TaskRegistry>) =>
  Effect.gen(function*() {
    const lastOutput = new Map<string, number>()
    for (const task of tasks) {
      for (const agent of task.agents) {
        if (!isLiveStatus(agent.status) || agent.stall_timeout_seconds === undefined) continue
        // No log yet: the agent's start counts as its last output.
        const mtime = yield* mtimeOf(logPath(home, task.task_id, agent.id))
        if (mtime !== undefined) lastOutput.set(`${task.task_id}/${agent.id}`, mtime)
      }
    }
    return lastOutput
  })

/** Observe tmux and the files of the tasks that may hold anything, then read those tasks (in that order). */
const observe = Effect.fn("Reconciler.observe")(function*() {
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const tmux = yield* Tmux
  // Sessions and files first, then the registry: anything created after this observation has its record already
  // written (a reservation always precedes its files and session), so it can never look orphaned.
  const sessions = yield* tmux.listPanes
  const active = yield* registry.list({ scope: "active" })
  const taskIds = new Set<TaskId>([
    ...active.tasks.map((t) => t.task_id),
    ...active.unreadable.map((u) => u.task_id)
  ])
  for (const s of sessions) {
    const id = s.tags["spawnkit_task"]
    if (s.tags["spawnkit_home"] === config.home && isTaskId(id)) taskIds.add(id)
  }
  const { agentFiles, tempFiles } = yield* observeFiles(config.home, taskIds)
  // The registry as it is now, after the files were listed: the first listing only chose which directories to look
  // in, and a reservation made since then must be seen before its files can be judged.
  const { tasks, unreadable } = yield* readTasks(taskIds)
  const expiredHosts = yield* registry.expiredHosts
  const lastOutput = yield* lastOutputTimes(config.home, tasks)
  return {
    home: config.home,
    hostId: config.hostId,
    nowMs: yield* Clock.currentTimeMillis,
    spawnDeadlineMs: config.spawnDeadlineSeconds * 1000,
    pid: process.pid,
    sessions,
    tasks,
    unreadable,
    expiredHosts,
    agentFiles,
    tempFiles,
    alive: processAlive,
    inFlight: (taskId, agentId) => isSpawnInFlight(config.home, taskId, agentId),
    lastOutputMs: (taskId, agentId) => lastOutput.get(`${taskId}/${agentId}`)
  } satisfies Observation
})

/** Run one reconcile pass over the tasks of the home that may hold anything. */
export const reconcile = Effect.fn("Reconciler.reconcile")(function*(options: { readonly dryRun?: boolean } = {}) {
  const dryRun = options.dryRun ?? false
  const config = yield* SpawnkitConfig
  const observed = yield* observe()
  const repairs: Array<Repair> = []
  const failed: Array<FailedRepair> = []
  for (const planned of plan(observed)) {
    const repair = describe(planned, config.hostLeaseSeconds, config.home)
    if (dryRun) {
      // A missing session is only reported once it is confirmed gone, as a real pass would.
      if (planned.kind === "marked_lost" && !(yield* confirmedGone(sessionNameOf(planned.agentId)))) continue
      repairs.push(repair)
      continue
    }
    // A repair whose registry write fails is reported and the pass goes on with the others (a failing tmux query, by
    // contrast, stops the pass: nothing may be judged on a server that does not answer).
    const done = yield* apply(planned, observed).pipe(
      Effect.catchTags({
        RegistryCorrupt: (e) => Effect.succeed(e),
        RegistryIoError: (e) => Effect.succeed(e),
        RegistryDatabaseError: (e) => Effect.succeed(e),
        InjectedFault: (e) => Effect.succeed(e),
        TaskNotFound: (e) => Effect.succeed(e)
      })
    )
    if (typeof done === "boolean") {
      if (done) repairs.push(repair)
    } else {
      yield* Effect.logWarning(`reconcile: ${repair.kind} ${repair.target} failed: ${done.message}`)
      failed.push({ ...repair, error: `${done._tag}: ${done.message}` })
    }
  }
  // After the plan's repairs (which record the exits of dead panes): what is left are files nobody handled.
  if (!dryRun) yield* sweepExitFiles(config.home)
  // Then the worktrees: of agents ended (now, or while nobody settled them) and orphans of spawns that died.
  const worktrees = yield* settleAll({ dryRun })
  const kept: Array<WorktreeOutcome> = []
  for (const o of worktrees.outcomes) {
    const repair: Repair = {
      kind: "removed_worktree",
      task_id: o.task_id,
      agent_id: o.agent_id ?? o.worktree,
      target: o.path,
      reason: `${o.branch}: ${o.reason}`
    }
    if (o.action === "removed" || o.action === "gone") repairs.push(repair)
    else kept.push(o)
  }
  for (const f of worktrees.failures) {
    failed.push({ kind: "removed_worktree", task_id: f.task_id, target: f.task_id, reason: "settle", error: f.reason })
  }
  const unreadable = observed.unreadable.map((u): UnreadableFinding => ({ ...u, action: "left untouched" }))
  return {
    dry_run: dryRun,
    repairs,
    unreadable,
    failed,
    partial: unreadable.length > 0 || failed.length > 0,
    worktrees_kept: kept
  } satisfies ReconcileReport
})

/** A planned repair as the report shows it. */
const describe = (p: Planned, leaseSeconds: number, home: string): Repair => {
  switch (p.kind) {
    case "rolled_back_reservation":
      return {
        kind: p.kind,
        task_id: p.taskId,
        agent_id: p.agentId,
        target: sessionNameOf(p.agentId),
        reason: describeAbandoned(p.why, leaseSeconds)
      }
    case "timed_out":
    case "stalled":
      return {
        kind: p.kind,
        task_id: p.taskId,
        agent_id: p.agentId,
        target: sessionNameOf(p.agentId),
        reason: p.reason
      }
    case "recorded_exit":
      return {
        kind: p.kind,
        task_id: p.taskId,
        agent_id: p.agentId,
        target: sessionNameOf(p.agentId),
        reason: `its process ended with status ${p.exitCode ?? "unknown"} unrecorded`
      }
    case "marked_lost":
      return {
        kind: p.kind,
        task_id: p.taskId,
        agent_id: p.agentId,
        target: sessionNameOf(p.agentId),
        reason: `session ${sessionNameOf(p.agentId)} is gone (${CONFIRMATIONS} confirmed misses)`
      }
    case "killed_orphan_session":
      return {
        kind: p.kind,
        ...(p.taskId !== undefined ? { task_id: p.taskId } : {}),
        ...(p.agentId !== undefined ? { agent_id: p.agentId } : {}),
        target: p.session,
        reason: "tagged by spawnkit for this home but no active agent owns it"
      }
    case "removed_orphan_file":
      return {
        kind: p.kind,
        task_id: p.taskId,
        agent_id: p.agentId,
        target: NodePath.join(promptsDir(home, p.taskId), p.name),
        reason: "no active agent owns it"
      }
    case "removed_temp_file":
      return {
        kind: p.kind,
        task_id: p.taskId,
        target: NodePath.join(taskDir(home, p.taskId), p.name),
        reason: `writer ${p.writer} is gone`
      }
    case "dropped_queue_entry":
      return { kind: p.kind, task_id: p.taskId, agent_id: p.agentId, target: "queue", reason: p.reason }
  }
}

/** A session is gone only if tmux answers, every time, that it does not exist. */
const confirmedGone = (session: SessionName) =>
  Effect.gen(function*() {
    const tmux = yield* Tmux
    for (let i = 0; i < CONFIRMATIONS; i++) {
      if (i > 0) yield* Effect.sleep(CONFIRM_PAUSE)
      if (Option.isSome(yield* tmux.paneState(session))) return false
    }
    return true
  })

/** Apply one planned repair; false when, re-checked, there was nothing left to do (not reported). */
const apply = (p: Planned, observed: Observation) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    switch (p.kind) {
      case "rolled_back_reservation":
        return yield* rollBack(p, observed)
      case "dropped_queue_entry":
        return yield* dropEntry(p, observed)
      case "timed_out":
      case "stalled": {
        const kind = p.kind
        const { ended } = yield* endAgents(p.taskId, kind, (task) =>
          task.agents.some((a) =>
              a.id === p.agentId && isLiveStatus(a.status)
            )
            ? [{ agentId: p.agentId, reason: p.reason }]
            : [])
        return ended.length > 0
      }
      case "recorded_exit":
        return (yield* recordExit(p.taskId, p.agentId))._tag === "Recorded"
      case "marked_lost":
        return (yield* confirmedGone(sessionNameOf(p.agentId))) && (yield* markLost(p.taskId, p.agentId))
      case "killed_orphan_session":
        yield* stopSession(p.session)
        return true
      case "removed_orphan_file":
      case "removed_temp_file": {
        const dir = p.kind === "removed_orphan_file"
          ? promptsDir(config.home, p.taskId)
          : taskDir(config.home, p.taskId)
        const file = NodePath.join(dir, p.name)
        // A file that cannot be removed (it became a directory, its directory is read-only) is logged and left for a
        // later pass: it must not end the pass, which supervises every other task.
        return yield* Effect.try({
          try: () =>
            Fs.rmSync(file, { force: true }),
          catch: (e) => e
        }).pipe(
          Effect.as(true),
          Effect.catch((e) =>
            Effect.logWarning(`reconcile: cannot remove ${file} (${e instanceof Error ? e.message : String(e)}); left`)
              .pipe(
                Effect.as(false)
              )
          )
        )
      }
    }
  })

/** Drop an abandoned queue entry, if the entry is still there and still abandoned as the registry is now. */
const dropEntry = (p: Extract<Planned, { kind: "dropped_queue_entry" }>, observed: Observation) =>
  Effect.flatMap(Registry, (registry) =>
    registry.update(p.taskId, (tx) => {
      const queue = tx.task.queue ?? []
      const entry = queue.find((e) => e.id === p.agentId)
      return Effect.succeed(
        entry === undefined || abandonedEntry(entry, observed) === undefined
          ? { result: false }
          : { result: true, next: { ...tx.task, queue: queue.filter((e) => e.id !== p.agentId) } }
      )
    }))

/**
 * Roll back an abandoned reservation, deciding on the record as it is now, not on the observation: the owner may
 * have committed (and then exited) since. Under the lock, a record still reserved by the same owner, still abandoned,
 * loses its files and then its record, so a commit can no longer happen; its session (one of this host, as the plan
 * says) is stopped after. A crash in between leaves a session no record owns, which the next pass of its host removes.
 */
const rollBack = (p: Extract<Planned, { kind: "rolled_back_reservation" }>, observed: Observation) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const config = yield* SpawnkitConfig
    const { agentId, taskId } = p
    const now = yield* Clock.currentTimeMillis
    const seen = observed.tasks.find((t) => t.task_id === taskId)?.agents.find((a) => a.id === agentId)
    const local = isOfThisHost(p.why)
    const removed = yield* registry.update(taskId, (tx) =>
      Effect.gen(function*() {
        const current = tx.task.agents.find((a) => a.id === agentId)
        const sameOwner = current?.reservation !== undefined && seen?.reservation !== undefined &&
          current.reservation.owner_pid === seen.reservation.owner_pid &&
          current.reservation.owner_host === seen.reservation.owner_host
        if (
          current === undefined || !sameOwner || abandoned(current, taskId, { ...observed, nowMs: now }) === undefined
        ) {
          return { result: false }
        }
        if (local) yield* removeAgentFiles(config.home, taskId, agentId)
        return { result: true, next: removeAgent(tx.task, agentId) }
      }))
    if (removed && local) yield* stopSession(sessionNameOf(agentId))
    return removed
  })

/** Mark a live agent `lost` (its session is gone for good), its files removed in the same transaction. */
const markLost = (taskId: TaskId, agentId: AgentId) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const config = yield* SpawnkitConfig
    const now = isoOf(yield* Clock.currentTimeMillis)
    return yield* registry.update(taskId, (tx) =>
      Effect.gen(function*() {
        const current = tx.task.agents.find((a) => a.id === agentId)
        // The agent may have ended (exit hook, kill) since the pass read the registry: nothing to mark then.
        if (current === undefined || !isLiveStatus(current.status)) return { result: false }
        yield* removeAgentFiles(config.home, taskId, agentId)
        const lost: Agent = {
          ...current,
          status: "lost",
          completed_at: now,
          last_update: now,
          reason: "its tmux session disappeared without a recorded exit"
        }
        return { result: true, next: replaceAgent(tx.task, lost) }
      }))
  })
