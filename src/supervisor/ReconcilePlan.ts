/**
 * The reconciler's decision, as a pure function: from what one pass observed (tmux's sessions and panes, the tasks
 * that may hold slots, the agent files on disk, which processes live) to the repairs it should make. No I/O, no
 * clock: table-tested in milliseconds. The Reconciler applies the plan, re-checking each repair under the registry
 * lock, where the registry may have moved on since the observation.
 *
 * Invariant: nothing is planned for a task that could not be read (its sessions and files are left untouched), for a
 * session without spawnkit's tags for this home, or for another host's agent (only its expired reservations).
 */
import { type Agent, isActiveStatus, isLiveStatus, type QueueEntry } from "../domain/Agent.js"
import { type AgentId, type SessionName, sessionNameOf, type TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import type { PaneState } from "../host/Tmux.js"
import type { UnreadableTask } from "../registry/Registry.js"
import { agentIdOfFile } from "../spawn/AgentFiles.js"
import { overdue } from "./Watchdog.js"

/** A session on spawnkit's server, with its ownership tags and its (first) pane. */
export interface ObservedSession {
  readonly name: string
  readonly tags: Readonly<Record<string, string>>
  readonly pane: PaneState | undefined
}

/**
 * A file in a task's directory: an agent file in `prompts/`, or a registry temp file beside the registry. Never a
 * directory (an agent can make one with any name there): the reconciler only ever removes files.
 */
export interface ObservedFile {
  readonly taskId: TaskId
  readonly name: string
}

/** What one pass observed. Sessions and files are observed before the registry is read. */
export interface Observation {
  readonly home: string
  readonly hostId: string
  readonly nowMs: number
  /** A reservation older than this belongs to a spawn that is over, whatever its owner (SPAWNKIT_SPAWN_DEADLINE_SECONDS). */
  readonly spawnDeadlineMs: number
  /** This process's id: its own reservations are judged by `inFlight`, not by the process being alive. */
  readonly pid: number
  readonly sessions: ReadonlyArray<ObservedSession>
  readonly tasks: ReadonlyArray<TaskRegistry>
  readonly unreadable: ReadonlyArray<UnreadableTask>
  readonly expiredHosts: ReadonlySet<string>
  readonly agentFiles: ReadonlyArray<ObservedFile>
  readonly tempFiles: ReadonlyArray<ObservedFile>
  /** Whether a process of this host exists. */
  readonly alive: (pid: number) => boolean
  /** Whether this process has the spawn of that reservation in flight. */
  readonly inFlight: (taskId: TaskId, agentId: AgentId) => boolean
  /** When an agent last wrote output (its log's mtime), if it did. */
  readonly lastOutputMs: (taskId: TaskId, agentId: AgentId) => number | undefined
}

/** Why a reservation is abandoned. */
export type Abandoned =
  | { readonly _tag: "OwnerGone"; readonly pid: number; readonly host: string }
  | { readonly _tag: "SpawnOver"; readonly pid: number }
  | { readonly _tag: "PastDeadline"; readonly pid: number; readonly seconds: number }
  | { readonly _tag: "LeaseExpired"; readonly host: string }

/** One repair the pass should make. */
export type Planned =
  | {
    readonly kind: "rolled_back_reservation"
    readonly taskId: TaskId
    readonly agentId: AgentId
    readonly why: Abandoned
  }
  | {
    readonly kind: "timed_out" | "stalled"
    readonly taskId: TaskId
    readonly agentId: AgentId
    readonly reason: string
  }
  | {
    readonly kind: "recorded_exit"
    readonly taskId: TaskId
    readonly agentId: AgentId
    readonly exitCode: number | undefined
  }
  /** The agent's session is missing: confirm with repeated queries, then mark it lost. */
  | { readonly kind: "marked_lost"; readonly taskId: TaskId; readonly agentId: AgentId }
  | {
    readonly kind: "killed_orphan_session"
    readonly session: SessionName
    readonly taskId: string | undefined
    readonly agentId: string | undefined
  }
  | { readonly kind: "removed_orphan_file"; readonly taskId: TaskId; readonly agentId: AgentId; readonly name: string }
  | { readonly kind: "removed_temp_file"; readonly taskId: TaskId; readonly name: string; readonly writer: number }
  /** A queued spawn's entry whose spawner is gone (or gave up): it leaves the line. */
  | {
    readonly kind: "dropped_queue_entry"
    readonly taskId: TaskId
    readonly agentId: AgentId
    readonly reason: string
  }

/** The name of a registry temp file (`AGENT_REGISTRY.json.tmp-<pid>-<random>`), with its writer's pid. */
const TEMP_FILE = /^AGENT_REGISTRY\.json\.tmp-(\d+)-[0-9a-f]+$/
const isSessionName = (name: string): name is SessionName => /^agent_[A-Za-z0-9_-]{1,64}$/.test(name)

/**
 * Whether a reservation is abandoned, and why: its owner on this host is gone; its owner is this process and its
 * spawn is over; it is older than the spawn deadline; or it is another host's whose lease expired.
 */
export const abandoned = (agent: Agent, taskId: TaskId, o: Observation): Abandoned | undefined => {
  const owner = agent.reservation
  if (agent.status !== "reserved" || owner === undefined) return undefined
  if (owner.owner_host !== o.hostId) {
    return o.expiredHosts.has(owner.owner_host) ? { _tag: "LeaseExpired", host: owner.owner_host } : undefined
  }
  if (owner.owner_pid === o.pid) {
    return o.inFlight(taskId, agent.id) ? undefined : { _tag: "SpawnOver", pid: owner.owner_pid }
  }
  if (!o.alive(owner.owner_pid)) return { _tag: "OwnerGone", pid: owner.owner_pid, host: owner.owner_host }
  const age = o.nowMs - Date.parse(owner.reserved_at)
  return age > o.spawnDeadlineMs
    ? { _tag: "PastDeadline", pid: owner.owner_pid, seconds: Math.round(o.spawnDeadlineMs / 1000) }
    : undefined
}

/**
 * Whether an abandoned reservation is of this host, so that its files and session are here to remove; another
 * host's (its lease expired) loses its record only.
 */
export const isOfThisHost = (why: Abandoned): boolean => why._tag !== "LeaseExpired"

/** The reason a report gives for an abandoned reservation. */
export const describeAbandoned = (why: Abandoned, leaseSeconds: number): string => {
  switch (why._tag) {
    case "OwnerGone":
      return `owner process ${why.pid} on ${why.host} is gone`
    case "SpawnOver":
      return `its spawn in this process (${why.pid}) is over but could not roll it back`
    case "PastDeadline":
      return `older than the spawn deadline of ${why.seconds} s (owner process ${why.pid} still runs)`
    case "LeaseExpired":
      return `host ${why.host} sent no heartbeat for ${leaseSeconds} s (its lease expired)`
  }
}

/**
 * Whether a queue entry is abandoned, and why: its deadline passed; its spawner on this host is gone; its host's lease
 * expired. This process's own entries are its waiting spawns', which leave the line themselves.
 */
export const abandonedEntry = (entry: QueueEntry, o: Observation): string | undefined => {
  if (Date.parse(entry.deadline) <= o.nowMs) return `its deadline ${entry.deadline} passed`
  if (entry.owner_host !== o.hostId) {
    return o.expiredHosts.has(entry.owner_host)
      ? `host ${entry.owner_host} sent no heartbeat (its lease expired)`
      : undefined
  }
  if (entry.owner_pid === o.pid) return undefined
  return o.alive(entry.owner_pid) ? undefined : `spawner process ${entry.owner_pid} on ${entry.owner_host} is gone`
}

/** Plan one pass: every repair the observation calls for, in the order to apply them. */
export const plan = (o: Observation): ReadonlyArray<Planned> => {
  const out: Array<Planned> = []
  const panes = new Map<string, PaneState | undefined>(o.sessions.map((s) => [s.name, s.pane]))
  const ownHost = (a: Agent) => (a.host ?? o.hostId) === o.hostId
  const untouchable = new Set<string>(o.unreadable.map((u) => u.task_id))

  for (const task of o.tasks) {
    const taskId = task.task_id
    for (const entry of task.queue ?? []) {
      const reason = abandonedEntry(entry, o)
      if (reason !== undefined) out.push({ kind: "dropped_queue_entry", taskId, agentId: entry.id, reason })
    }
    for (const agent of task.agents) {
      const why = abandoned(agent, taskId, o)
      if (why !== undefined) {
        out.push({ kind: "rolled_back_reservation", taskId, agentId: agent.id, why })
        continue
      }
      if (!ownHost(agent) || !isLiveStatus(agent.status)) continue
      const due = overdue(agent, o.nowMs, o.lastOutputMs(taskId, agent.id))
      if (due !== undefined) {
        out.push({ kind: due.status, taskId, agentId: agent.id, reason: due.reason })
        continue
      }
      const session = sessionNameOf(agent.id)
      if (!panes.has(session)) {
        out.push({ kind: "marked_lost", taskId, agentId: agent.id })
        continue
      }
      const pane = panes.get(session)
      if (pane?.dead === true) out.push({ kind: "recorded_exit", taskId, agentId: agent.id, exitCode: pane.exitCode })
    }
  }

  // What active records of this host own: their sessions and files are not orphans (a reservation rolled back above
  // takes its own session and files with it).
  const owned = new Set<string>(
    o.tasks.flatMap((t) =>
      t.agents.filter((a) => isActiveStatus(a.status) && ownHost(a)).map((a) => `${t.task_id}/${a.id}`)
    )
  )
  for (const s of o.sessions) {
    if (s.tags["spawnkit_home"] !== o.home || !isSessionName(s.name)) continue
    const taskId = s.tags["spawnkit_task"]
    const agentId = s.tags["spawnkit_agent"]
    if (taskId !== undefined && untouchable.has(taskId)) continue
    if (owned.has(`${taskId}/${agentId}`)) continue
    out.push({ kind: "killed_orphan_session", session: s.name, taskId, agentId })
  }
  for (const f of o.agentFiles) {
    if (untouchable.has(f.taskId)) continue
    const agentId = agentIdOfFile(f.name)
    if (agentId === undefined || owned.has(`${f.taskId}/${agentId}`)) continue
    out.push({ kind: "removed_orphan_file", taskId: f.taskId, agentId, name: f.name })
  }
  for (const f of o.tempFiles) {
    if (untouchable.has(f.taskId)) continue
    const writer = Number(TEMP_FILE.exec(f.name)?.[1])
    if (!Number.isInteger(writer) || writer === o.pid || o.alive(writer)) continue
    out.push({ kind: "removed_temp_file", taskId: f.taskId, name: f.name, writer })
  }
  return out
}

/** Whether a name is a registry temp file (for the observation). */
export const isTempFile = (name: string) => TEMP_FILE.test(name)
