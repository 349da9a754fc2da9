/**
 * The last step of a spawn: the commit, one registry transaction in which the reservation becomes a running agent.
 * The spawn runs it through its Handover, so that ownership of the prompt file and the session passes to the record
 * in the same uninterruptible step.
 *
 * Invariant: no agent commits under a parent that is no longer running (a cascade kill may have ended it while the
 * spawn was in flight), nor after a kill cancelled it, nor after its process exited (the exit hook noted it).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { type Agent, isLiveStatus, type WorktreeRecord } from "../domain/Agent.js"
import { AgentExitedAtStartup, AgentNotFound, ParentNotActive, SpawnCancelled } from "../domain/Errors.js"
import { type AgentId, ORCHESTRATOR, type TaskId } from "../domain/Ids.js"
import { FaultInjection } from "../faults/FaultInjection.js"
import { Registry } from "../registry/Registry.js"
import { isoOf, replaceAgent, withoutReservation } from "./AgentRecords.js"

/** Commit a reservation: on the record as it is under the lock, it becomes `running`, or the commit fails. */
export const commitAgent = Effect.fnUntraced(function*(
  taskId: TaskId,
  agentId: AgentId,
  parent: AgentId,
  worktree?: WorktreeRecord
) {
  const registry = yield* Registry
  const faults = yield* FaultInjection
  return yield* registry.update(taskId, (tx) =>
    Effect.gen(function*() {
      const current = tx.task.agents.find((a) => a.id === agentId)
      if (current === undefined) return yield* new AgentNotFound({ taskId, agentId })
      if (parent !== ORCHESTRATOR) {
        const parentRecord = tx.task.agents.find((a) => a.id === parent)
        if (parentRecord === undefined || !isLiveStatus(parentRecord.status)) {
          return yield* new ParentNotActive({ parent, status: parentRecord?.status ?? "gone", taskId })
        }
      }
      if (current.cancelled !== undefined) {
        return yield* new SpawnCancelled({ agentId, reason: current.cancelled.reason })
      }
      if (current.exit !== undefined) {
        return yield* new AgentExitedAtStartup({
          agentId,
          exitCode: current.exit.exit_code,
          lastLines: current.exit.last_lines
        })
      }
      yield* faults.point("commit")
      const now = isoOf(yield* Clock.currentTimeMillis)
      const running: Agent = {
        ...withoutReservation(current),
        status: "running",
        last_update: now,
        ...(worktree !== undefined ? { worktree } : {})
      }
      return { result: running, next: replaceAgent(tx.task, running) }
    }))
})
