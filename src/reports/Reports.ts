/**
 * What agents report about themselves: progress and findings. Each report is validated and written in one registry
 * transaction (the record's progress, and a JSON line appended to the agent's progress or findings log), so
 * concurrent reports and spawns never lose each other's updates.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import { invalidInput, parseAgentId, parseTaskId } from "../domain/Decode.js"
import { AgentNotFound, AgentNotRunning, ioFailure, RegistryIoError } from "../domain/Errors.js"
import type { EventDraft } from "../domain/Event.js"
import type { AgentId, TaskId } from "../domain/Ids.js"
import { Finding, ProgressReport } from "../domain/Report.js"
import { tailLines } from "../host/Tail.js"
import { findingsPath, progressPath } from "../host/Workspace.js"
import { parseJsonLine } from "../internal/json.js"
import { Registry } from "../registry/Registry.js"
import { isoOf, replaceAgent } from "../spawn/AgentRecords.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"

export { Finding, Percent, ProgressReport, ReportedStatus } from "../domain/Report.js"

const appendLine = (file: string, value: unknown) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    yield* fs.makeDirectory(path.dirname(file), { recursive: true })
    yield* fs.writeFileString(file, JSON.stringify(value) + "\n", { flag: "a" })
  }).pipe(Effect.mapError((e) => new RegistryIoError({ path: file, operation: "append to", ...ioFailure(e) })))

/** Find a live agent in the transaction's snapshot, or explain why reporting is refused. */
const liveAgent = (agents: ReadonlyArray<Agent>, taskId: TaskId, agentId: AgentId) => {
  const agent = agents.find((a) => a.id === agentId)
  if (agent === undefined) return Effect.fail(new AgentNotFound({ taskId, agentId }))
  if (!isLiveStatus(agent.status)) {
    return Effect.fail(
      new AgentNotRunning({ taskId, agentId, status: agent.status })
    )
  }
  return Effect.succeed(agent)
}

/**
 * One report of a live agent, in one registry transaction: decode the report, find the agent, append `line` to the
 * agent's log file and write the updated record.
 */
const report = <A, I, R>(
  taskIdInput: string,
  agentIdInput: string,
  schema: Schema.Codec<A, I>,
  input: unknown,
  apply: (
    agent: Agent,
    report: A,
    now: string
  ) => {
    readonly file: (home: string, taskId: TaskId, agentId: AgentId) => string
    readonly line: unknown
    readonly agent: Agent
    readonly result: R
    /** The event this report makes (its kind and what it tells). */
    readonly event: Pick<EventDraft, "kind" | "progress" | "message" | "finding_type">
  }
) =>
  Effect.gen(function*() {
    const taskId = yield* parseTaskId(taskIdInput)
    const agentId = yield* parseAgentId(agentIdInput)
    const decoded = yield* Schema.decodeUnknownEffect(schema)(input, { errors: "all" }).pipe(
      Effect.mapError(invalidInput)
    )
    const config = yield* SpawnkitConfig
    const registry = yield* Registry
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const now = isoOf(yield* Clock.currentTimeMillis)
    return yield* registry.update(taskId, (tx) =>
      Effect.gen(function*() {
        const agent = yield* liveAgent(tx.task.agents, taskId, agentId)
        const change = apply(agent, decoded, now)
        yield* appendLine(change.file(config.home, taskId, agentId), change.line).pipe(
          Effect.provideService(FileSystem.FileSystem, fs),
          Effect.provideService(Path.Path, path)
        )
        const event: EventDraft = {
          at: now,
          task_id: taskId,
          agent_id: agentId,
          status: change.agent.status,
          parent: change.agent.parent,
          ...change.event
        }
        return {
          result: { task_id: taskId, ...change.result },
          next: replaceAgent(tx.task, change.agent),
          events: [event]
        }
      }))
  })

/**
 * Record an agent's progress. `working`/`blocked`/`running` become the record's status; `completed`, `failed` and
 * `error` are kept as the reported status only, so a report never ends the agent (its exit does).
 */
export const updateProgress = (taskIdInput: string, agentIdInput: string, input: unknown) =>
  report(taskIdInput, agentIdInput, ProgressReport, input, (agent, r, now) => {
    const progress = r.progress ?? (r.status === "completed" ? 100 : agent.progress ?? 0)
    const status = r.status === "working" || r.status === "blocked" || r.status === "running" ? r.status : agent.status
    return {
      file: progressPath,
      line: { timestamp: now, agent_id: agent.id, status: r.status, message: r.message, progress },
      agent: { ...agent, status, reported_status: r.status, progress, last_message: r.message, last_update: now },
      result: { agent_id: agent.id, status, reported_status: r.status, progress },
      event: { kind: "progress", progress, message: r.message }
    }
  }).pipe(Effect.withSpan("Reports.updateProgress"))

/** Record a finding of an agent (appended to its findings log, in the registry transaction). */
export const reportFinding = (taskIdInput: string, agentIdInput: string, input: unknown) =>
  report(taskIdInput, agentIdInput, Finding, input, (agent, finding, now) => ({
    file: findingsPath,
    line: { timestamp: now, agent_id: agent.id, ...finding },
    agent: { ...agent, last_update: now },
    result: { agent_id: agent.id, recorded: true, finding_type: finding.finding_type },
    event: { kind: "finding", finding_type: finding.finding_type, message: finding.message }
  })).pipe(Effect.withSpan("Reports.reportFinding"))

/** Bytes read from the end of a progress or findings log for its latest entries. */
export const REPORT_TAIL_BYTES = 64 * 1024

/**
 * The last `limit` JSON lines of a JSONL file, found in its last `maxBytes` bytes (so an agent's long log costs a
 * reader no more than that); none when `limit` is 0 or the file does not exist.
 */
export const readJsonLines = (file: string, limit: number, maxBytes = REPORT_TAIL_BYTES) =>
  limit <= 0
    ? Effect.succeed([])
    : Effect.map(tailLines(file, limit, maxBytes), (lines) =>
      lines.map((line) => parseJsonLine(line) ?? { unparsed: line }))
