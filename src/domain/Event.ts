/**
 * An event: one change of an agent's state, as the event journal keeps it. Every event has a per-home sequence
 * number, strictly increasing with no gaps, given in the same transaction as the registry change it describes, so
 * an event exists exactly when its change committed.
 *
 * Stored events are untrusted input like every stored record: each is decoded against this schema when read.
 */
import * as Schema from "effect/Schema"
import { AgentStatus, Timestamp } from "./Agent.js"
import { AgentId, TaskId } from "./Ids.js"

/**
 * What happened: `spawned` (its spawn committed), `progress` and `finding` (it reported), `exited` (its process
 * ended: `completed` or `failed`, with its code), `killed`, `timed_out`, `stalled`, `lost`.
 */
export const EventKind = Schema.Literals([
  "spawned",
  "progress",
  "finding",
  "exited",
  "killed",
  "timed_out",
  "stalled",
  "lost"
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
  /** The agent's status after the change. */
  status: AgentStatus,
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
