/**
 * How an agent's end is noticed and recorded, without polling: spawnkit's tmux server keeps dead panes
 * (`remain-on-exit on`) and runs a global `pane-died` hook that starts `spawnkit agent-exited --pane %N`. That
 * command reads the pane's exit status and ownership tags, the last lines of the agent's log, and records them:
 *
 * - a committed agent becomes `completed` (exit 0) or `failed`, its session is removed and its prompt file deleted
 *   (the log stays);
 * - a reservation (the agent died before its spawn committed) gets the exit noted on it, so the commit fails with
 *   AgentExitedAtStartup and the spawn's scope removes everything.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import { AgentId, sessionNameOf, TaskId } from "../domain/Ids.js"
import { tailLines } from "../host/Tail.js"
import { Tmux } from "../host/Tmux.js"
import { logPath } from "../host/Workspace.js"
import { Registry } from "../registry/Registry.js"
import { removeAgentFiles } from "../spawn/AgentFiles.js"
import { EXIT_TAIL_LINES, isoOf, replaceAgent } from "../spawn/AgentRecords.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { settleEnded } from "../worktree/Worktrees.js"

/** What recording an exit did. */
export type ExitRecord =
  | { readonly _tag: "NotOurs" }
  | { readonly _tag: "StillRunning" }
  | { readonly _tag: "Recorded"; readonly agentId: string; readonly status: string; readonly exitCode: number }

/** Ownership tags of a pane, validated: only a pane spawnkit tagged in this home is handled. */
export const ownerOfPane = Effect.fn("ExitHook.ownerOfPane")(function*(paneId: string) {
  const tmux = yield* Tmux
  const tags = yield* tmux.tagsOfPane(paneId)
  return Option.flatMap(tags, (t) => {
    const taskId = Schema.decodeUnknownOption(TaskId)(t["spawnkit_task"])
    const agentId = Schema.decodeUnknownOption(AgentId)(t["spawnkit_agent"])
    const home = t["spawnkit_home"]
    return Option.isSome(taskId) && Option.isSome(agentId) && home !== undefined
      ? Option.some({ taskId: taskId.value, agentId: agentId.value, home })
      : Option.none()
  })
})

/** Record the end of an agent whose pane died. Idempotent: a second call changes nothing. */
/**
 * What the agent CLIs print when the conversation a resume names does not exist (any more): Claude Code 2.1 "No
 * conversation found with session ID", Codex 0.171 "no rollout found for thread id", Gemini CLI 0.61 "Invalid session
 * identifier" or "No previous sessions found".
 */
const CONVERSATION_GONE =
  /no conversation found|no rollout found|invalid session identifier|no previous sessions found|session (id )?\S* ?(not found|does not exist)/i

/**
 * Why an agent failed, for its record: its exit code, and for a resumed agent whose CLI said the conversation is gone,
 * that line.
 */
export const failureReason = (agent: Agent, exitCode: number, lastLines: ReadonlyArray<string>): string => {
  const gone = agent.resumed_from === undefined ? undefined : lastLines.find((l) => CONVERSATION_GONE.test(l))
  return gone === undefined
    ? `exited with code ${exitCode}`
    : `the conversation to resume is gone (exited with code ${exitCode}): ${gone.trim().slice(0, 300)}`
}

export const recordExit = Effect.fn("ExitHook.recordExit")(function*(taskId: TaskId, agentId: AgentId) {
  const tmux = yield* Tmux
  const registry = yield* Registry
  const config = yield* SpawnkitConfig
  const session = sessionNameOf(agentId)
  const pane = yield* tmux.paneState(session)
  if (Option.isNone(pane)) return { _tag: "NotOurs" } satisfies ExitRecord
  if (!pane.value.dead) return { _tag: "StillRunning" } satisfies ExitRecord
  const exitCode = pane.value.exitCode ?? -1
  const lastLines = yield* tailLines(logPath(config.home, taskId, agentId), EXIT_TAIL_LINES)
  const now = isoOf(yield* Clock.currentTimeMillis)
  const exit = { exit_code: exitCode, last_lines: [...lastLines], at: now }
  const recorded = yield* registry.update(taskId, (tx) =>
    Effect.gen(function*() {
      const current = tx.task.agents.find((a) => a.id === agentId)
      if (current === undefined) return { result: undefined }
      if (current.status === "reserved") {
        const noted: Agent = { ...current, exit }
        return { result: noted, next: replaceAgent(tx.task, noted) }
      }
      if (!isLiveStatus(current.status)) return { result: current }
      // The record is about to own nothing live: its prompt and MCP config files go in this transaction (the log
      // stays), and the dead session after it.
      yield* removeAgentFiles(config.home, taskId, agentId)
      const ended: Agent = {
        ...current,
        status: exitCode === 0 ? "completed" : "failed",
        completed_at: now,
        last_update: now,
        exit,
        ...(exitCode === 0 ? {} : { reason: failureReason(current, exitCode, lastLines) })
      }
      return { result: ended, next: replaceAgent(tx.task, ended) }
    }))
  if (recorded === undefined) return { _tag: "NotOurs" } satisfies ExitRecord
  if (recorded.status !== "reserved") {
    yield* tmux.killSession(session)
    yield* settleEnded(taskId, [recorded])
  }
  return { _tag: "Recorded", agentId, status: recorded.status, exitCode } satisfies ExitRecord
})
