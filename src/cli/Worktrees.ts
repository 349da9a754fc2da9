/**
 * `spawnkit worktree list|remove|prune`: agents' git worktrees as a person sees them, and the two ways a person
 * removes them (one, or every one holding no work). Nothing here decides: src/worktree/Worktrees.ts does.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { parseAgentId, parseTaskId } from "../domain/Decode.js"
import { describeWork } from "../worktree/Work.js"
import { listWorktrees, removeWorktree, settleAll, type WorktreeRow } from "../worktree/Worktrees.js"
import { printJson } from "./Output.js"

const table = (cells: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)))
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
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

export { workOf } from "../worktree/Work.js"
