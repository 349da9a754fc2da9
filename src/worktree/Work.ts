/**
 * What agents' worktrees hold, in a few words, for a person (`status`, `worktree list`, the dashboard). Nothing here
 * decides: src/worktree/Worktrees.ts does.
 */
import * as Effect from "effect/Effect"
import type { TaskRegistry } from "../domain/Task.js"
import { listWorktrees, type WorktreeRow } from "./Worktrees.js"

/** What a worktree holds, in a few words: `clean`, `2 ahead`, `2 ahead (merged)`, `dirty`, `1 behind`. */
export const describeWork = (row: Pick<WorktreeRow, "ahead" | "unmerged" | "behind" | "dirty" | "exists">): string => {
  if (!row.exists) return "missing"
  const parts = [
    ...(row.ahead > 0 ? [`${row.ahead} ahead${row.unmerged === 0 ? " (merged)" : ""}`] : []),
    ...(row.behind !== undefined && row.behind > 0 ? [`${row.behind} behind`] : []),
    ...(row.dirty ? ["dirty"] : [])
  ]
  return parts.length === 0 ? "clean" : parts.join(", ")
}

/**
 * What each agent's worktree holds now ("2 ahead, dirty"), for `status`; none for a task without worktrees. A
 * repository git cannot read is said on each line rather than failing the status.
 */
export const workOf = (task: TaskRegistry) =>
  task.agents.some((a) => a.worktree !== undefined && a.worktree.state !== "removed")
    ? listWorktrees(task.task_id).pipe(
      Effect.map((rows) => new Map(rows.map((r) => [r.agent_id as string, describeWork(r)]))),
      Effect.catch((e) =>
        Effect.succeed(
          new Map(task.agents.map((a) => [a.id as string, `git cannot tell: ${e.message.slice(0, 120)}`]))
        )
      )
    )
    : Effect.succeed(new Map<string, string>())
