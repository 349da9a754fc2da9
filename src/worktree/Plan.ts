/**
 * Worktree decisions as pure functions of a task's records and what git reports: who owns a worktree, whether it is
 * still in use, whether it holds work, and what to do with it. No I/O; table-tested in milliseconds.
 *
 * Invariant (never delete work): a worktree is removed only when git reports it holds none (no uncommitted or untracked
 * change, no commit ahead of its base that no other branch holds), or when a person forces it.
 */
import { type Agent, isActiveStatus, type WorktreeRecord } from "../domain/Agent.js"
import type { AgentId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"

/** What git reports about one worktree (see Git.inspect). */
export interface WorktreeFacts {
  /** git lists it among the repository's worktrees. */
  readonly registered: boolean
  /** Its directory exists. */
  readonly exists: boolean
  /** Its branch exists. */
  readonly branchExists: boolean
  /** Uncommitted or untracked changes. */
  readonly dirty: boolean
  /** Commits on its branch not on its base. */
  readonly ahead: number
  /** Of those, the ones no other branch, tag or remote holds (0 once the branch was merged elsewhere). */
  readonly unmerged: number
}

/**
 * Whether a worktree holds work: changes not committed, or commits ahead of its base that no other branch holds (a
 * branch merged elsewhere loses nothing when it goes, as `git branch -d` judges it).
 */
export const holdsWork = (facts: Pick<WorktreeFacts, "dirty" | "unmerged">): boolean =>
  facts.dirty || facts.unmerged > 0

/** The record that owns a worktree: the last one naming it (a resumed agent's record comes after the one it resumed). */
export const ownerOf = (task: TaskRegistry, worktreeId: AgentId): Agent | undefined =>
  task.agents.findLast((a) => a.worktree?.id === worktreeId)

/** Every worktree id the task's records name, with its owner. */
export const ownedWorktrees = (task: TaskRegistry): ReadonlyMap<AgentId, Agent & { worktree: WorktreeRecord }> => {
  const owners = new Map<AgentId, Agent & { worktree: WorktreeRecord }>()
  for (const agent of task.agents) {
    if (agent.worktree !== undefined) owners.set(agent.worktree.id, agent as Agent & { worktree: WorktreeRecord })
  }
  return owners
}

/**
 * What a worktree found on disk or on a record needs:
 * - `in_use`: its owner holds a slot (reserved or live): never touched;
 * - `settle`: its owner ended and it was not settled yet (or was recorded removed, yet is still there): look at it,
 *   remove it if it holds no work, else keep it;
 * - `orphan`: no record names it (a spawn that died mid-way, a record gone): remove it if it holds no work, else
 *   report it;
 * - `settled`: kept or removed already; only a person's `remove` or `prune` looks again.
 */
export type WorktreeNeed =
  | { readonly kind: "in_use"; readonly owner: Agent }
  | { readonly kind: "settle"; readonly owner: Agent & { worktree: WorktreeRecord } }
  | { readonly kind: "orphan" }
  | { readonly kind: "settled"; readonly owner: Agent & { worktree: WorktreeRecord } }

/** What one worktree needs, from its task's records and whether its directory exists. */
export const needOf = (task: TaskRegistry, worktreeId: AgentId, exists: boolean): WorktreeNeed => {
  const owner = ownerOf(task, worktreeId) as (Agent & { worktree: WorktreeRecord }) | undefined
  if (owner === undefined) return { kind: "orphan" }
  if (isActiveStatus(owner.status)) return { kind: "in_use", owner }
  if (owner.worktree.state === "active" || (owner.worktree.state === "removed" && exists)) {
    return { kind: "settle", owner }
  }
  return { kind: "settled", owner }
}

/** What settling a worktree does, given what git reports. */
export type Verdict = "remove" | "keep" | "gone"

/**
 * Keep or remove: a worktree holding work is kept; one holding none is removed (with its branch); one whose
 * directory, registration and branch are all gone is only recorded as removed.
 */
export const verdictOf = (facts: WorktreeFacts): Verdict =>
  !facts.exists && !facts.registered && !facts.branchExists ? "gone" : holdsWork(facts) ? "keep" : "remove"

/** The records to rewrite once a worktree was settled: its owner's worktree state, if it changes. */
export const settledTask = (
  task: TaskRegistry,
  worktreeId: AgentId,
  ownerId: AgentId,
  state: WorktreeRecord["state"]
): TaskRegistry | undefined => {
  const owner = ownerOf(task, worktreeId)
  // The owner changed (a resume took the worktree over) or holds a slot again: the settling is void.
  if (owner === undefined || owner.id !== ownerId || isActiveStatus(owner.status)) return undefined
  if (owner.worktree!.state === state) return undefined
  return {
    ...task,
    agents: task.agents.map((a) => (a.id === ownerId ? { ...a, worktree: { ...a.worktree!, state } } : a))
  }
}
