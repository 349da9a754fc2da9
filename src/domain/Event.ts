/**
 * An event: one change of an agent's state, as the event journal keeps it. Every event has a per-home sequence
 * number, strictly increasing with no gaps, given in the same transaction as the registry change it describes, so
 * an event exists exactly when its change committed.
 *
 * Stored events are untrusted input like every stored record: each is decoded against this schema when read.
 */
import * as Schema from "effect/Schema"
import { type Agent, AgentStatus, isLiveStatus, type QueueEntry, Timestamp } from "./Agent.js"
import { AgentId, TaskId } from "./Ids.js"
import type { TaskRegistry } from "./Task.js"

/**
 * What happened: `spawned` (its spawn committed), `progress` and `finding` (it reported), `exited` (its process
 * ended: `completed` or `failed`, with its code), `killed`, `timed_out`, `stalled`, `lost`, `over_budget` (stopped because
 * a budget covering it was spent; the reason gives the figures).
 */
export const EventKind = Schema.Literals([
  "spawned",
  "progress",
  "finding",
  "exited",
  "killed",
  "timed_out",
  "stalled",
  "lost",
  "over_budget",
  "queued",
  "dequeued"
])
/** @see EventKind */
export type EventKind = typeof EventKind.Type

/** A sequence number: 1 for a home's first event. */
export const Seq = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** One event of the journal. */
export const AgentEvent = Schema.Struct({
  seq: Seq,
  at: Timestamp,
  task_id: TaskId,
  agent_id: AgentId,
  kind: EventKind,
  /** The agent's status after the change (none for a queued spawn, which has no record yet). */
  status: Schema.optionalKey(AgentStatus),
  parent: Schema.optionalKey(AgentId),
  exit_code: Schema.optionalKey(Schema.Int),
  reason: Schema.optionalKey(Schema.String),
  progress: Schema.optionalKey(Schema.Number),
  message: Schema.optionalKey(Schema.String),
  finding_type: Schema.optionalKey(Schema.String)
})
/** @see AgentEvent */
export type AgentEvent = typeof AgentEvent.Type

/** An event before the journal numbers it (the registry gives `seq` when the transaction commits). */
export type EventDraft = Omit<AgentEvent, "seq">

/*
 * Which events a registry change makes: a pure function of the records before and after it, so every path that
 * changes an agent's status (spawn, exit, kill, reconcile, watchdog) gets its event without saying so. Reports
 * (progress, findings) change no status the diff can see: they declare their events on the transition.
 */

/** The event of a committed agent entering a terminal status, by status. */
const ENDINGS: Partial<Record<Agent["status"], EventKind>> = {
  completed: "exited",
  failed: "exited",
  error: "exited",
  terminated: "exited",
  killed: "killed",
  timed_out: "timed_out",
  stalled: "stalled",
  lost: "lost",
  over_budget: "over_budget"
}

/** The events of an agent's end (every terminal status's event). */
export const ENDING_KINDS: ReadonlySet<EventKind> = new Set(Object.values(ENDINGS))

/** The events of an agent's life: its spawn and its end. */
export const LIFECYCLE_KINDS: ReadonlySet<EventKind> = new Set(["spawned", ...ENDING_KINDS])

const kindOf = (before: Agent | undefined, after: Agent): EventKind | undefined => {
  const was = before?.status
  if (was === after.status) return undefined
  if (isLiveStatus(after.status)) return was === undefined || was === "reserved" ? "spawned" : undefined
  // A reservation that ends never was an agent: its spawn rolled back, nothing to tell.
  if (was === undefined || was === "reserved") return undefined
  return isLiveStatus(was) ? ENDINGS[after.status] : undefined
}

/** The status events of one transition, in the order of the records after it. */
export const statusEvents = (before: TaskRegistry, after: TaskRegistry, at: string): ReadonlyArray<EventDraft> => {
  const previous = new Map(before.agents.map((a) => [a.id, a]))
  const events: Array<EventDraft> = []
  for (const agent of after.agents) {
    const kind = kindOf(previous.get(agent.id), agent)
    if (kind === undefined) continue
    events.push({
      at,
      task_id: after.task_id,
      agent_id: agent.id,
      kind,
      status: agent.status,
      parent: agent.parent,
      ...(kind === "exited" && agent.exit !== undefined ? { exit_code: agent.exit.exit_code } : {}),
      ...(kind !== "spawned" && agent.reason !== undefined ? { reason: agent.reason } : {})
    })
  }
  return events
}

/**
 * The queue events of one transition: entries added (`queued`), entries gone (`dequeued`: with status `reserved` when
 * the entry became the agent's reservation, without a status when the spawn gave up or its spawner is gone).
 */
export const queueEvents = (before: TaskRegistry, after: TaskRegistry, at: string): ReadonlyArray<EventDraft> => {
  const was = new Set((before.queue ?? []).map((e) => e.id as string))
  const now = new Set((after.queue ?? []).map((e) => e.id as string))
  const agents = new Map(after.agents.map((a) => [a.id as string, a]))
  const event = (e: QueueEntry, kind: EventKind): EventDraft => {
    const agent = kind === "dequeued" ? agents.get(e.id) : undefined
    return {
      at,
      task_id: after.task_id,
      agent_id: e.id,
      kind,
      parent: e.parent,
      ...(agent !== undefined ? { status: agent.status } : {})
    }
  }
  return [
    ...(after.queue ?? []).filter((e) => !was.has(e.id)).map((e) => event(e, "queued")),
    ...(before.queue ?? []).filter((e) => !now.has(e.id)).map((e) => event(e, "dequeued"))
  ]
}

/** Every event of one transition: status changes, then queue changes. */
export const changeEvents = (before: TaskRegistry, after: TaskRegistry, at: string): ReadonlyArray<EventDraft> => [
  ...statusEvents(before, after, at),
  ...queueEvents(before, after, at)
]
