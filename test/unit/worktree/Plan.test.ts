/**
 * Worktree decisions, table-tested: who owns a worktree, whether it is in use, whether it holds work, keep or remove,
 * and which record a settling rewrites. Tasks are decoded through the stored schema, so every fixture is a registry
 * spawnkit could read, and a stored worktree record with a hostile base ref is refused at the decode.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { TaskRegistry } from "../../../src/domain/Task.js"
import {
  holdsWork,
  needOf,
  ownedWorktrees,
  ownerOf,
  settledTask,
  verdictOf,
  type WorktreeFacts
} from "../../../src/worktree/Plan.js"
import { taskJson } from "../support/Records.js"

const TASK = "TASK-20261203-130000-0000abcd"
const AT = "2026-12-03T13:00:00.000Z"
const SHA = "a".repeat(40)

const agent = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: "worker",
  tmux_session: `agent_${id}`,
  parent: "orchestrator",
  depth: 1,
  status,
  started_at: AT,
  ...extra
})
const wt = (id: string, state: string, extra: Record<string, unknown> = {}) => ({
  worktree: { id, state, base_commit: SHA, base_ref: "main", ...extra }
})

const decode = Schema.decodeUnknownSync(TaskRegistry)
const task = (agents: ReadonlyArray<unknown>) =>
  decode(taskJson({ task_id: TASK, created_at: AT, workspace: `/home/x/${TASK}` }, agents))

/** What git reports; a commit ahead is unmerged unless the case says otherwise. */
const facts = (f: Partial<WorktreeFacts>): WorktreeFacts => ({
  registered: true,
  exists: true,
  branchExists: true,
  dirty: false,
  ahead: 0,
  unmerged: f.ahead ?? 0,
  ...f
})

describe("holds work", () => {
  it.each([
    [{ dirty: false, unmerged: 0 }, false],
    [{ dirty: true, unmerged: 0 }, true],
    [{ dirty: false, unmerged: 1 }, true],
    [{ dirty: true, unmerged: 3 }, true]
  ])("%o -> %s", (f, expected) => {
    expect(holdsWork(f)).toBe(expected)
  })
})

describe("keep or remove", () => {
  it.each(
    [
      ["clean", facts({}), "remove"],
      ["a commit ahead", facts({ ahead: 2 }), "keep"],
      ["commits ahead, merged into another branch", facts({ ahead: 2, unmerged: 0 }), "remove"],
      ["commits ahead, some merged", facts({ ahead: 2, unmerged: 1 }), "keep"],
      ["an uncommitted or untracked change", facts({ dirty: true }), "keep"],
      ["its branch already gone, directory left", facts({ branchExists: false }), "remove"],
      ["registered, directory gone (stale metadata)", facts({ exists: false }), "remove"],
      ["branch left alone, no work on it", facts({ exists: false, registered: false }), "remove"],
      ["branch left alone with commits on it", facts({ exists: false, registered: false, ahead: 1 }), "keep"],
      ["nothing left", facts({ exists: false, registered: false, branchExists: false }), "gone"]
    ] as const
  )("%s -> %s", (_name, f, expected) => {
    expect(verdictOf(f)).toBe(expected)
  })
})

describe("ownership", () => {
  it("the last record naming a worktree owns it (a resumed agent after the one it resumed)", () => {
    const t = task([
      agent("a1", "failed", wt("a1", "kept")),
      agent("a2", "running", { ...wt("a1", "active"), resumed_from: "a1" }),
      agent("b1", "running", wt("b1", "active")),
      agent("c1", "running")
    ])
    expect(ownerOf(t, "a1" as never)?.id).toBe("a2")
    expect([...ownedWorktrees(t).entries()].map(([id, a]) => [id, a.id])).toEqual([["a1", "a2"], ["b1", "b1"]])
    expect(ownerOf(t, "c1" as never)).toBeUndefined()
  })

  it.each(
    [
      ["a reservation holds its worktree", "reserved", "active", true, "in_use"],
      ["a live agent holds its worktree", "running", "active", true, "in_use"],
      ["an ended agent's unsettled worktree is settled", "failed", "active", true, "settle"],
      ["a completed agent's too", "completed", "active", false, "settle"],
      ["a kept one is left to a person", "killed", "kept", true, "settled"],
      ["a removed one is settled", "killed", "removed", false, "settled"],
      ["a removed one still on disk is settled again", "killed", "removed", true, "settle"]
    ] as const
  )("%s", (_name, status, state, exists, kind) => {
    expect(needOf(task([agent("a1", status, wt("a1", state))]), "a1" as never, exists).kind).toBe(kind)
  })

  it("a worktree no record names is an orphan", () => {
    expect(needOf(task([agent("a1", "running")]), "zz" as never, true).kind).toBe("orphan")
  })
})

describe("settling rewrites only its owner, only while it has ended", () => {
  const t = task([agent("a1", "failed", wt("a1", "active")), agent("b1", "running", wt("b1", "active"))])

  it("records the state on the owner", () => {
    const next = settledTask(t, "a1" as never, "a1" as never, "kept")!
    expect(next.agents.map((a) => [a.id, a.worktree?.state])).toEqual([["a1", "kept"], ["b1", "active"]])
  })

  it("writes nothing when nothing changes", () => {
    expect(settledTask(task([agent("a1", "failed", wt("a1", "kept"))]), "a1" as never, "a1" as never, "kept"))
      .toBeUndefined()
  })

  it("is void when a resume took the worktree over in between, or its owner holds a slot", () => {
    const resumed = task([
      agent("a1", "failed", wt("a1", "active")),
      agent("a2", "reserved", { ...wt("a1", "active"), resumed_from: "a1" })
    ])
    expect(settledTask(resumed, "a1" as never, "a1" as never, "removed")).toBeUndefined()
    expect(settledTask(t, "b1" as never, "b1" as never, "removed")).toBeUndefined()
  })
})

describe("stored worktree records are untrusted", () => {
  it.each([
    ["a base ref that is an option", { base_ref: "--upload-pack=touch /tmp/x" }],
    ["a base ref with a range", { base_ref: "main..evil" }],
    ["a base ref with a line break", { base_ref: "main\nx" }],
    ["a base commit that is not a commit id", { base_commit: "HEAD" }],
    ["an id that is not an agent id", { id: "../../etc" }],
    ["an unknown state", { state: "deleted" }]
  ])("%s: the task does not decode", (_name, bad) => {
    expect(() => task([agent("a1", "failed", { worktree: { ...wt("a1", "kept").worktree, ...bad } })])).toThrow(
      /worktree/
    )
  })
})
