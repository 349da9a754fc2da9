/**
 * `spawnkit worktree list|remove|prune`: agents' git worktrees as a person sees them, and the two ways a person
 * removes them (one, or every one holding no work). Nothing here decides: src/worktree/Worktrees.ts does.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { parseAgentId, parseTaskId } from "../domain/Decode.js"
import type { TaskRegistry } from "../domain/Task.js"
import { listWorktrees, removeWorktree, settleAll, type WorktreeRow } from "../worktree/Worktrees.js"
import { printJson } from "./Output.js"

const table = (cells: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)))
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

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

/** The rows as a table. */
export const renderWorktrees = (rows: ReadonlyArray<WorktreeRow>): string =>
  rows.length === 0 ? "no worktrees" : table([
    ["TASK", "AGENT", "STATUS", "BRANCH", "WORK", "PATH"],
    ...rows.map((r) => [r.task_id, r.agent_id, r.status, r.branch, describeWork(r), r.path])
  ])

/** `worktree list`. */
export const listCommand = (task: string | undefined, json: boolean) =>
  Effect.gen(function*() {
    const rows = yield* listWorktrees(task === undefined ? undefined : yield* parseTaskId(task))
    yield* json ? printJson(rows) : Console.log(renderWorktrees(rows))
  })

/** `worktree remove`. */
export const removeCommand = (task: string, agent: string, force: boolean, json: boolean) =>
  Effect.gen(function*() {
    const outcome = yield* removeWorktree(yield* parseTaskId(task), yield* parseAgentId(agent), force)
    yield* json ? printJson(outcome) : Console.log(`${outcome.path}: ${outcome.action} (${outcome.reason})`)
  })

/** `worktree prune`: exit status 0 even when some are kept (keeping work is the point); failures are listed. */
export const pruneCommand = (json: boolean) =>
  Effect.gen(function*() {
    const result = yield* settleAll({ recheckKept: true, everyTask: true })
    if (json) return yield* printJson(result)
    const lines = [
      ...result.outcomes.map((o) => `${o.action}: ${o.branch} ${o.path} (${o.reason})`),
      ...result.failures.map((f) => `not settled: task ${f.task_id}: ${f.reason}`)
    ]
    yield* Console.log(lines.length === 0 ? "nothing to prune" : lines.join("\n"))
  })

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
