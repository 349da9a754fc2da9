/**
 * Resume an ended agent's conversation: a new agent record (`resumed_from`: the old id; same type, parent, engine,
 * limits and worktree) that runs its CLI's resume command (`claude --resume <id>`, `codex exec resume <id>`,
 * `gemini --resume <id>`, or SPAWNKIT_AGENT_RESUME_COMMAND) with a new prompt.
 *
 * It is a spawn like any other (Spawner.spawnResumed): admitted against every limit and budget in one transaction,
 * scoped (nothing left on failure), idempotent with a key. The reserving transaction also checks, on the records as
 * they are under the lock, that the old agent ended without completing and that no other agent resuming it, or
 * continuing its conversation further down a chain of resumes, holds a slot (NotResumable).
 *
 * Security: the conversation id reaches the CLI's argv; it comes from the record or the agent's own log (untrusted),
 * so it is used only if it is a ConversationId (never an option).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import type { Agent } from "../domain/Agent.js"
import { invalidInput } from "../domain/Decode.js"
import { AgentNotFound, NotResumable } from "../domain/Errors.js"
import { AgentId, ConversationId, IdempotencyKey, TaskId, Uuid } from "../domain/Ids.js"
import { Prompt, type SpawnRequest } from "../domain/SpawnRequest.js"
import { logPath } from "../host/Workspace.js"
import { parseLine } from "../metering/Formats.js"
import { Registry } from "../registry/Registry.js"
import { spawnResumed } from "../spawn/Spawner.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"

/** The prompt a resumed agent gets when none is given. */
export const DEFAULT_RESUME_PROMPT = "Continue where you stopped: finish the task you were given, then report."

/** What a resume takes. */
export const ResumeRequest = Schema.Struct({
  taskId: TaskId,
  agentId: AgentId.annotate({ description: "The ended agent whose conversation to resume" }),
  prompt: Schema.optionalKey(
    Prompt.annotate({ description: `What to tell it (default: "${DEFAULT_RESUME_PROMPT}")` })
  ),
  idempotencyKey: Schema.optionalKey(
    IdempotencyKey.annotate({
      description: "Optional key: retrying with the same key returns the agent resumed the first time"
    })
  )
})
/** @see ResumeRequest */
export type ResumeRequest = typeof ResumeRequest.Type

const decodeRequest = Schema.decodeUnknownEffect(ResumeRequest)
const isConversationId = Schema.is(ConversationId)

/** Bytes of an agent's log read to find its conversation id when its record has none (it is on the first lines). */
const SESSION_SCAN_BYTES = 256 * 1024

/** The conversation id in the first lines of an agent's log (its CLI prints it first), if any valid one. */
const sessionInLog = (home: string, taskId: TaskId, agent: Agent): string | undefined => {
  const format = agent.output_format ?? "none"
  if (format === "none") return undefined
  let text: string
  try {
    const fd = Fs.openSync(logPath(home, taskId, agent.id), "r")
    try {
      const buffer = Buffer.alloc(SESSION_SCAN_BYTES)
      text = buffer.subarray(0, Fs.readSync(fd, buffer, 0, SESSION_SCAN_BYTES, 0)).toString("utf8")
    } finally {
      Fs.closeSync(fd)
    }
  } catch {
    return undefined
  }
  for (const line of text.split("\n")) {
    for (const o of parseLine(format, line, 0)) {
      if ("sessionId" in o && o.sessionId !== undefined && isConversationId(o.sessionId)) return o.sessionId
    }
  }
  return undefined
}

const isUuid = Schema.is(Uuid)

/**
 * Whether an id is one the agent's CLI resumes: the real CLIs' ids are UUIDs (Codex 0.171 takes any other word as a
 * thread name and silently starts a new thread), the custom engine's any ConversationId.
 */
const usableFor = (agent: Agent) => (id: string | undefined): id is string =>
  id !== undefined && isConversationId(id) && (agent.engine === "custom" || isUuid(id))

/** The conversation an ended agent had: recorded on it, else read from its log; NotResumable when there is none. */
export const conversationOf = (home: string, taskId: TaskId, agent: Agent) => {
  const usable = usableFor(agent)
  const recorded = [agent.session_id, agent.claude_session_id, agent.usage?.session_id].find(usable)
  const fromLog = recorded === undefined ? sessionInLog(home, taskId, agent) : undefined
  const id = recorded ?? (usable(fromLog) ? fromLog : undefined)
  return id !== undefined ? Effect.succeed(id) : Effect.fail(
    new NotResumable({
      taskId,
      agentId: agent.id,
      reason: "its CLI's conversation id is unknown (it never printed one, or printed none spawnkit accepts)"
    })
  )
}

/**
 * Resume an ended agent (failed, killed, lost, timed_out, stalled, over_budget) with a new prompt. Returns the new
 * agent, as a spawn does, with `resumed_from`.
 */
export const resume = Effect.fn("Resume.resume")(function*(input: unknown) {
  const request = yield* decodeRequest(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError(invalidInput)
  )
  const config = yield* SpawnkitConfig
  const registry = yield* Registry
  const task = yield* registry.read(request.taskId)
  const old = task.agents.find((a) => a.id === request.agentId)
  if (old === undefined) return yield* new AgentNotFound({ taskId: request.taskId, agentId: request.agentId })
  const sessionId = yield* conversationOf(config.home, request.taskId, old)
  const spawnRequest: SpawnRequest = {
    taskId: request.taskId,
    agentType: old.type as SpawnRequest["agentType"],
    prompt: request.prompt ?? DEFAULT_RESUME_PROMPT,
    parent: old.parent,
    ...(old.engine !== undefined ? { engine: old.engine } : {}),
    ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
    ...(old.timeout_seconds !== undefined ? { timeoutSeconds: old.timeout_seconds } : {}),
    ...(old.stall_timeout_seconds !== undefined ? { stallTimeoutSeconds: old.stall_timeout_seconds } : {}),
    ...(old.budget?.max_cost_usd !== undefined ? { maxCostUsd: old.budget.max_cost_usd } : {}),
    ...(old.budget?.max_tokens !== undefined ? { maxTokens: old.budget.max_tokens } : {})
  }
  const result = yield* spawnResumed(spawnRequest, { from: old.id, sessionId })
  return { ...result, resumed_from: old.id }
})

/** The request before validation (what the CLI and MCP tool pass). */
export type ResumeInput = typeof ResumeRequest.Encoded
