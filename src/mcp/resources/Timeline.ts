/**
 * A task's progress timeline: its agents' state changes (from the event journal) and their progress reports and
 * findings (from their report logs, which hold each report whole), merged in time order. Building it is pure; the
 * reading is in Resources.
 */
import type { AgentEvent } from "../../domain/Event.js"

/** Entries a timeline holds at most: the latest ones. */
export const MAX_TIMELINE_ENTRIES = 500

/** One entry of a timeline. */
export interface TimelineEntry {
  readonly at: string
  readonly agent_id: string
  readonly kind: string
  readonly [key: string]: unknown
}

/** A task's timeline. */
export interface Timeline {
  readonly task_id: string
  /** Oldest first. */
  readonly entries: ReadonlyArray<TimelineEntry>
  /** Whether older entries were left out. */
  readonly truncated: boolean
}

/** Reports in the journal are left to the report logs, which hold them whole; every other event is a state change. */
const isStateChange = (event: AgentEvent) => event.kind !== "progress" && event.kind !== "finding"

const entryOfEvent = (event: AgentEvent): TimelineEntry => {
  const { at, agent_id, kind, seq: _seq, task_id: _task, ...rest } = event
  return { at, agent_id, kind, ...rest }
}

/** A line of a report log as an entry; a line without its time or agent (not written by spawnkit) is left out. */
const entryOfReport = (kind: "progress" | "finding", line: unknown): ReadonlyArray<TimelineEntry> => {
  if (typeof line !== "object" || line === null) return []
  const { timestamp, agent_id, ...rest } = line as Record<string, unknown>
  return typeof timestamp === "string" && typeof agent_id === "string"
    ? [{ at: timestamp, agent_id, kind, ...rest }]
    : []
}

const timeOf = (entry: TimelineEntry) => {
  const ms = Date.parse(entry.at)
  return Number.isNaN(ms) ? 0 : ms
}

/**
 * Merge a task's events and report lines into its timeline, in time order (entries of the same instant keep the
 * journal's order, then the logs'), keeping the latest `max`.
 */
export const buildTimeline = (
  taskId: string,
  events: ReadonlyArray<AgentEvent>,
  reports: { readonly progress: ReadonlyArray<unknown>; readonly findings: ReadonlyArray<unknown> },
  max = MAX_TIMELINE_ENTRIES
): Timeline => {
  const entries = [
    ...events.filter(isStateChange).map(entryOfEvent),
    ...reports.progress.flatMap((line) => entryOfReport("progress", line)),
    ...reports.findings.flatMap((line) => entryOfReport("finding", line))
  ]
  // Array.prototype.sort is stable, so entries of one instant stay in the order above.
  const sorted = entries.sort((a, b) => timeOf(a) - timeOf(b))
  return {
    task_id: taskId,
    entries: sorted.slice(Math.max(0, sorted.length - max)),
    truncated: sorted.length > max
  }
}
