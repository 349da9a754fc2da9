/**
 * Agents' git worktrees as resources: made by a spawn (inside its scope, released if the spawn fails), owned by the
 * record after its commit, settled when the agent ends (removed with its branch if they hold no work, else kept and
 * listed), found by the reconciler when orphaned, listed, removed and pruned on a person's word.
 *
 * Invariants:
 * - never delete work: removal without force happens only after git reported no commit ahead of the base and no
 *   uncommitted or untracked change (Plan.verdictOf), and git's own `worktree remove` refuses a dirty worktree again;
 * - spawnkit touches only worktrees it made: paths `<worktrees root>/<task id>/<id>` and branches `spawnkit/<id>`,
 *   both derived from validated ids, never from a stored path;
 * - git runs outside every registry transaction (the Git service serializes a repository's metadata changes itself).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { type Agent, isActiveStatus, type WorktreeRecord } from "../domain/Agent.js"
import { AgentNotFound, InvalidInput, WorktreeHoldsWork, WorktreeInUse } from "../domain/Errors.js"
import { branchOf } from "../domain/GitRef.js"
import { AgentId, type TaskId, TaskId as TaskIdSchema } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { Git } from "../host/Git.js"
import { worktreePath } from "../host/Workspace.js"
import { Registry } from "../registry/Registry.js"
import { SpawnkitConfig, worktreesRoot } from "../SpawnkitConfig.js"
import { removeGeminiSettings } from "./GeminiSettings.js"
import { holdsWork, needOf, ownedWorktrees, ownerOf, settledTask, type Verdict, verdictOf } from "./Plan.js"

/** What happened to one worktree when it was settled. */
export interface WorktreeOutcome {
  readonly task_id: TaskId
  /** The worktree's id (the agent it was made for). */
  readonly worktree: AgentId
  /** The record owning it; none for an orphan. */
  readonly agent_id?: AgentId
  readonly branch: string
  readonly path: string
  /** `removed` (with its branch), `kept` (it holds work), `gone` (nothing was left of it), `left` (not judged). */
  readonly action: "removed" | "kept" | "gone" | "left"
  readonly reason: string
}

/** One worktree as `worktree list` shows it, with what git reports now. */
export interface WorktreeRow {
  readonly task_id: TaskId
  readonly agent_id: AgentId
  readonly status: Agent["status"]
  readonly worktree: AgentId
  readonly branch: string
  readonly path: string
  readonly state: WorktreeRecord["state"]
  readonly base_ref?: string
  readonly base_commit?: string
  readonly exists: boolean
  readonly ahead: number
  /** Of the commits ahead, those no other branch holds (0 once merged elsewhere). */
  readonly unmerged: number
  readonly behind?: number
  readonly dirty: boolean
  readonly holds_work: boolean
}

const isAgentId = Schema.is(AgentId)
const isTaskId = Schema.is(TaskIdSchema)

/** The repository root of a task's working directory, or the InvalidInput saying why there is none. */
export const repositoryOf = (task: TaskRegistry) =>
  Effect.gen(function*() {
    if (task.working_directory === undefined) {
      return yield* new InvalidInput({
        field: "working_directory",
        reason: `task ${task.task_id} has no working directory; isolation worktree needs one in a git repository ` +
          "(create the task with --working-directory)"
      })
    }
    return yield* (yield* Git).repository(task.working_directory)
  })

/** What a spawn's scope offers the resources it acquires (implemented by the spawn's Handover, src/spawn/Handover.ts). */
export interface SpawnResources {
  /**
   * Acquire a resource whose release needs what was acquired (Effect's acquireRelease: the acquisition is
   * uninterruptible). The release stands down once the resources are handed over.
   */
  readonly resource: <A, E, R, R2>(
    acquire: Effect.Effect<A, E, R>,
    release: (a: A) => Effect.Effect<void, never, R2>
  ) => Effect.Effect<A, E, R | R2 | Scope.Scope>
  /**
   * Acquire a resource whose release is known beforehand: the release is registered first, so an acquisition that
   * fails or is interrupted half-way (a file half-written, a session tmux made before the call failed) is released
   * too. The acquisition stays interruptible. The release stands down once the resources are handed over.
   */
  readonly guarded: <A, E, R, R2>(
    release: Effect.Effect<void, never, R2>,
    acquire: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R | R2 | Scope.Scope>
}

/** `refs/heads/main` → `main`: the name a person would type. */
const shortRef = (ref: string) => ref.replace(/^refs\/heads\//, "")

/**
 * Make a reserved agent's worktree, as a resource of its spawn's scope (released, worktree and branch removed, unless
 * handed over to the record at the commit): a new branch `spawnkit/<agent id>` from, in order, the spawn's base ref,
 * the parent's branch (a child of an isolated agent), the task's base ref, or the repository's HEAD. For a resumed
 * agent (its worktree id is the agent it resumes), the worktree it took over is used as it is, or made again at the
 * same place if it was removed. Returns its directory and the record of it for the commit.
 */
export const acquireWorktree = Effect.fnUntraced(function*(
  scope: SpawnResources,
  task: TaskRegistry,
  agent: Agent & { worktree: WorktreeRecord },
  requestBaseRef: string | undefined
) {
  const config = yield* SpawnkitConfig
  const git = yield* Git
  const repo = yield* repositoryOf(task)
  const id = agent.worktree.id
  const path = worktreePath(worktreesRoot(config), task.task_id, id)
  const branch = branchOf(id)
  // Without force: an agent that ran before its spawn failed (it died at start-up, a kill cancelled the spawn) may
  // already have committed; its work is kept, and the reconciler reports the orphan.
  const release = git.removeWorktree(repo.root, path, branch, { force: false }).pipe(
    Effect.asVoid,
    Effect.catch((e) =>
      e._tag === "WorktreeHoldsWork"
        ? Effect.logWarning(`worktree ${path} of a failed spawn holds work; kept: ${e.message}`)
        : Effect.logError(`could not remove worktree ${path} of a failed spawn: ${e.message}`)
    )
  )
  if (id !== agent.id) {
    // A resume: the worktree of the agent it resumes, made again from its branch (or base) if it was removed.
    const facts = yield* git.inspect(repo.root, path, branch, agent.worktree.base_commit, undefined)
    if (!facts.registered) {
      const from = facts.branchExists ? undefined : agent.worktree.base_commit
      if (!facts.branchExists && from === undefined) {
        return yield* new InvalidInput({
          field: "agent_id",
          reason: `the worktree of ${id} and its branch ${branch} are gone and its base is unknown; spawn anew`
        })
      }
      // Made again: released if the resume fails, as it held no work (its branch was gone or is kept).
      yield* scope.guarded(
        facts.branchExists ? Effect.void : release,
        facts.branchExists
          ? git.reattachWorktree(repo.root, path, branch)
          : git.addWorktree(repo.root, path, branch, from!)
      )
    }
    return { path, repo: repo.root, record: { ...agent.worktree, state: "active" } as WorktreeRecord }
  }
  const parent = task.agents.find((a) => a.id === agent.parent)
  const baseRef = requestBaseRef ?? (parent?.worktree !== undefined ? branchOf(parent.worktree.id) : task.base_ref)
  const baseCommit = baseRef !== undefined ? yield* git.resolveCommit(repo.root, baseRef) : repo.head
  // Git.addWorktree refuses a path or branch that exists (deleting nothing) and undoes its own failed add, so the
  // release is owed only once it succeeded; the add runs uninterruptibly (an interruption waits for it, then releases).
  yield* scope.resource(git.addWorktree(repo.root, path, branch, baseCommit), () => release)
  const base = baseRef ?? (repo.headRef !== undefined ? shortRef(repo.headRef) : undefined)
  const record: WorktreeRecord = {
    id,
    state: "active",
    base_commit: baseCommit,
    ...(base !== undefined ? { base_ref: base } : {})
  }
  return { path, repo: repo.root, record }
})

/** Look at one worktree and settle it: remove it if it holds no work, else keep it; then record that on its owner. */
const settleOne = (
  task: TaskRegistry,
  root: string,
  id: AgentId,
  owner: (Agent & { worktree: WorktreeRecord }) | undefined,
  options: { readonly dryRun: boolean; readonly force?: boolean }
) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const git = yield* Git
    const registry = yield* Registry
    const path = worktreePath(worktreesRoot(config), task.task_id, id)
    const branch = branchOf(id)
    const base = owner?.worktree.base_commit
    const outcome = (action: WorktreeOutcome["action"], reason: string): WorktreeOutcome => ({
      task_id: task.task_id,
      worktree: id,
      ...(owner !== undefined ? { agent_id: owner.id } : {}),
      branch,
      path,
      action,
      reason
    })
    const describe = (f: { readonly ahead: number; readonly dirty: boolean }) =>
      `${f.ahead} commit(s) on no other branch than its own${f.dirty ? ", uncommitted changes" : ""}`
    if (options.dryRun) {
      const facts = yield* git.inspect(root, path, branch, base, undefined)
      if (facts.exists && !facts.registered) return outcome("left", NOT_A_WORKTREE)
      const verdict = options.force === true && facts.exists ? "remove" : verdictOf(facts)
      return outcome(verdict === "keep" ? "kept" : verdict === "gone" ? "gone" : "removed", describe(facts))
    }
    if (isDirectory(path) && !(yield* isRegistered(root, path))) return outcome("left", NOT_A_WORKTREE)
    yield* removeGeminiSettings(path)
    // Git judges under the repository's lock, against the base: a worktree holding work is refused, so kept.
    const removal = yield* git.removeWorktree(root, path, branch, {
      force: options.force === true,
      ...(base !== undefined ? { base } : {})
    }).pipe(
      Effect.map((r) => ({ _tag: "Removed" as const, gone: !r.worktreeRemoved && !r.branchDeleted })),
      Effect.catchTag("WorktreeHoldsWork", (e) => Effect.succeed({ _tag: "Kept" as const, work: describe(e) }))
    )
    const verdict: Verdict = removal._tag === "Kept" ? "keep" : removal.gone ? "gone" : "remove"
    const work = removal._tag === "Kept" ? removal.work : ""
    if (owner !== undefined) {
      const state = verdict === "keep" ? "kept" : "removed"
      yield* registry.update(task.task_id, (tx) => {
        const next = settledTask(tx.task, id, owner.id, state)
        return Effect.succeed(next === undefined ? { result: undefined } : { result: undefined, next })
      })
    }
    return verdict === "keep"
      ? outcome("kept", `it holds work (${work}); kept for a person to merge or remove`)
      : verdict === "gone"
      ? outcome("gone", "nothing was left of it")
      : outcome("removed", options.force === true ? "removed on request, with its branch" : "it held no work")
  })

/** Why a directory under the worktrees root is left alone. */
const NOT_A_WORKTREE = "its directory is not a worktree git knows; left for a person to look at"

/** The path with its symbolic links resolved, or as given when it cannot be (gone meanwhile). */
const realpathOr = (path: string) => {
  try {
    return Fs.realpathSync(path)
  } catch {
    return path
  }
}

const isDirectory = (path: string) => Fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() === true

/** Whether git lists the path among the repository's worktrees (as given, or with its symbolic links resolved). */
const isRegistered = (root: string, path: string) =>
  Effect.gen(function*() {
    const list = yield* (yield* Git).listWorktrees(root)
    const real = realpathOr(path)
    return list.some((w) => w.path === path || w.path === real)
  })

/** The worktree ids with a directory under the root, per task (only names that are valid ids). */
const worktreeDirs = (root: string): ReadonlyMap<TaskId, ReadonlySet<AgentId>> => {
  const found = new Map<TaskId, Set<AgentId>>()
  const entries = (dir: string) => {
    try {
      return Fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)
    } catch {
      return []
    }
  }
  for (const taskName of entries(root)) {
    if (!isTaskId(taskName)) continue
    const ids = new Set<AgentId>()
    for (const name of entries(`${root}/${taskName}`)) if (isAgentId(name)) ids.add(name)
    found.set(taskName, ids)
  }
  return found
}

/** Remove a task's directory under the worktrees root once its last worktree is gone (a non-empty one stays). */
const removeIfEmpty = (dir: string) => {
  try {
    Fs.rmdirSync(dir)
  } catch {
    // Not empty, or already gone: nothing to do.
  }
}

/** Options of a settling pass. */
export interface SettleOptions {
  /** Only these worktree ids (e.g. of the agents that just ended); all of the task's otherwise. */
  readonly only?: ReadonlySet<AgentId>
  /** Look again at worktrees already kept (prune): a kept one whose work is gone is removed. */
  readonly recheckKept?: boolean
  /** Report what would be done, do nothing. */
  readonly dryRun?: boolean
}

/**
 * Settle a task's worktrees whose agents ended, and its orphans (a directory no record names): each is removed with
 * its branch if it holds no work, else kept (and reported). Worktrees in use are never touched. A task without
 * worktrees costs one registry read.
 */
export const settleTask = (taskId: TaskId, options: SettleOptions = {}) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const registry = yield* Registry
    const task = yield* registry.read(taskId)
    const onDisk = worktreeDirs(worktreesRoot(config)).get(taskId) ?? new Set<AgentId>()
    const owned = ownedWorktrees(task)
    const ids = new Set<AgentId>([...owned.keys(), ...onDisk])
    const outcomes: Array<WorktreeOutcome> = []
    let root: string | undefined
    for (const id of ids) {
      if (options.only !== undefined && !options.only.has(id)) continue
      const need = needOf(task, id, onDisk.has(id))
      const recheck = options.recheckKept === true && need.kind === "settled" && need.owner.worktree.state === "kept"
      if (need.kind === "in_use" || (need.kind === "settled" && !recheck)) continue
      // Another host's agent (a shared PostgreSQL registry): its worktree is on that host's disk, settled there.
      if (need.kind !== "orphan" && need.owner.host !== undefined && need.owner.host !== config.hostId) continue
      if (need.kind === "orphan" && !onDisk.has(id)) continue
      root ??= (yield* repositoryOf(task)).root
      const owner = need.kind === "orphan" ? undefined : need.owner
      outcomes.push(yield* settleOne(task, root, id, owner, { dryRun: options.dryRun ?? false }))
    }
    // A full pass also drops git's metadata of worktrees whose directories are gone (removals prune on their own).
    if (root !== undefined && options.dryRun !== true && options.only === undefined) yield* (yield* Git).prune(root)
    if (options.dryRun !== true) removeIfEmpty(NodePath.join(worktreesRoot(config), taskId))
    return outcomes
  })

/**
 * Settle the worktrees of the tasks that have any under the worktrees root (the reconciler's pass), and with
 * `everyTask` of every task whose records name one (`prune`). A task that cannot be read, or whose repository is gone,
 * is reported and left alone; the others are still settled.
 */
export const settleAll = (options: Omit<SettleOptions, "only"> & { readonly everyTask?: boolean } = {}) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const outcomes: Array<WorktreeOutcome> = []
    const failures: Array<{ readonly task_id: TaskId; readonly reason: string }> = []
    const root = worktreesRoot(config)
    const dirs = new Map<TaskId, ReadonlySet<AgentId>>(worktreeDirs(root))
    if (options.everyTask === true) {
      // Also the tasks whose records name a worktree whose directory is gone (removed by hand: git's metadata and
      // the branch may be left).
      const registry = yield* Registry
      for (const task of (yield* registry.list({ scope: "all" })).tasks) {
        if (!dirs.has(task.task_id) && ownedWorktrees(task).size > 0) dirs.set(task.task_id, new Set())
      }
    }
    for (const [taskId, ids] of dirs) {
      const result = yield* Effect.result(settleTask(taskId, options))
      if (result._tag === "Success") outcomes.push(...result.success)
      else if (result.failure._tag === "TaskNotFound") {
        // Its registry is gone, and with it which repository the worktrees belong to: left for a person.
        for (const id of ids) {
          outcomes.push({
            task_id: taskId,
            worktree: id,
            branch: branchOf(id),
            path: worktreePath(root, taskId, id),
            action: "left",
            reason: "its task is gone, so spawnkit cannot tell its repository; remove it with git worktree remove"
          })
        }
      } else failures.push({ task_id: taskId, reason: `${result.failure._tag}: ${result.failure.message}` })
    }
    return { outcomes, failures }
  })

/**
 * Settle the worktrees of agents that just ended (a kill, an exit, a watchdog), if any of them had one; failures are
 * logged, never raised: the reconciler settles what is left.
 */
export const settleEnded = (taskId: TaskId, ended: ReadonlyArray<Agent>) =>
  ended.some((a) => a.worktree !== undefined)
    ? settleTask(taskId, { only: new Set(ended.flatMap((a) => (a.worktree !== undefined ? [a.worktree.id] : []))) })
      .pipe(
        Effect.tap((outcomes) =>
          Effect.forEach(outcomes, (o) => Effect.logInfo(`worktree ${o.path}: ${o.action}: ${o.reason}`))
        ),
        Effect.catch((e) => Effect.logWarning(`worktrees of ${taskId} left for the reconciler: ${e.message}`)),
        Effect.asVoid
      )
    : Effect.void

/** The rows of one task's worktrees that are not removed, with what git reports now. */
const taskRows = (task: TaskRegistry) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const git = yield* Git
    const rows: Array<WorktreeRow> = []
    const owned = [...ownedWorktrees(task).values()].filter((a) => a.worktree.state !== "removed")
    if (owned.length === 0) return rows
    const repo = yield* repositoryOf(task)
    for (const owner of owned) {
      const id = owner.worktree.id
      const path = worktreePath(worktreesRoot(config), task.task_id, id)
      const branch = branchOf(id)
      const facts = yield* git.inspect(repo.root, path, branch, owner.worktree.base_commit, owner.worktree.base_ref)
      rows.push({
        task_id: task.task_id,
        agent_id: owner.id,
        status: owner.status,
        worktree: id,
        branch,
        path,
        state: owner.worktree.state,
        ...(owner.worktree.base_ref !== undefined ? { base_ref: owner.worktree.base_ref } : {}),
        ...(owner.worktree.base_commit !== undefined ? { base_commit: owner.worktree.base_commit } : {}),
        exists: facts.exists,
        ahead: facts.ahead,
        unmerged: facts.unmerged,
        ...(facts.behind !== undefined ? { behind: facts.behind } : {}),
        dirty: facts.dirty,
        holds_work: holdsWork(facts)
      })
    }
    return rows
  })

/** Worktrees of one task, or of every task, that are not removed: agent, status, branch, path, ahead/behind, dirty. */
export const listWorktrees = (taskId?: TaskId) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    if (taskId !== undefined) return yield* taskRows(yield* registry.read(taskId))
    const page = yield* registry.list({ scope: "all" })
    const rows: Array<WorktreeRow> = []
    for (const task of page.tasks) {
      if (!task.agents.some((a) => a.worktree !== undefined)) continue
      rows.push(...(yield* taskRows(task)))
    }
    return rows
  })

/**
 * Remove an ended agent's worktree with its branch (`worktree remove`). One holding work is refused unless forced
 * (WorktreeHoldsWork names what would be lost); one whose agent still holds a slot is refused (WorktreeInUse).
 */
export const removeWorktree = (taskId: TaskId, agentId: AgentId, force: boolean) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const registry = yield* Registry
    const git = yield* Git
    const task = yield* registry.read(taskId)
    const agent = task.agents.find((a) => a.id === agentId)
    const id = agent?.worktree?.id
    if (agent === undefined || id === undefined) {
      return yield* new InvalidInput({ field: "agent_id", reason: `agent ${agentId} of ${taskId} has no worktree` })
    }
    const owner = ownerOf(task, id)! as Agent & { worktree: WorktreeRecord }
    if (isActiveStatus(owner.status)) {
      return yield* new WorktreeInUse({ taskId, agentId: owner.id, status: owner.status })
    }
    const repo = yield* repositoryOf(task)
    const path = worktreePath(worktreesRoot(config), taskId, id)
    yield* removeGeminiSettings(path)
    const facts = yield* git.inspect(repo.root, path, branchOf(id), owner.worktree.base_commit, undefined)
    if (holdsWork(facts) && !force) {
      return yield* new WorktreeHoldsWork({
        agentId: owner.id,
        branch: branchOf(id),
        path,
        ahead: facts.unmerged,
        dirty: facts.dirty
      })
    }
    return yield* settleOne(task, repo.root, id, owner, { dryRun: false, force: true })
  })

/** Whether an agent's record names a worktree that is still there (state active or kept). */
export const hasLiveWorktree = (agent: Agent): boolean =>
  agent.worktree !== undefined && agent.worktree.state !== "removed"

/** A worktree's branch as an orchestrator merging it sees it: the list row and its commits not on its base. */
export interface BranchReport extends WorktreeRow {
  /** Its newest commits not on its base (at most MAX_LISTED_COMMITS), newest first. */
  readonly commits: ReadonlyArray<{ readonly sha: string; readonly subject: string }>
}

/** Commits listed per branch. */
export const MAX_LISTED_COMMITS = 20

/** The ids of an agent and every agent below it (each once, whatever cycles a hand-edited file holds). */
const subtreeOf = (task: TaskRegistry, root: AgentId): ReadonlySet<AgentId> => {
  const inTree = new Set<AgentId>([root])
  for (let grew = true; grew;) {
    grew = false
    for (const a of task.agents) {
      if (inTree.has(a.parent) && !inTree.has(a.id)) {
        inTree.add(a.id)
        grew = true
      }
    }
  }
  return inTree
}

/**
 * The branches of a task's worktrees that are not removed, or of an agent's subtree: what each holds (commits ahead of
 * its base with their subjects, uncommitted changes), so an orchestrator can merge them.
 */
export const branchesOf = (taskId: TaskId, root?: AgentId) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const git = yield* Git
    const task = yield* registry.read(taskId)
    if (root !== undefined && !task.agents.some((a) => a.id === root)) {
      return yield* new AgentNotFound({ taskId, agentId: root })
    }
    const tree = root === undefined ? undefined : subtreeOf(task, root)
    const rows = (yield* taskRows(task)).filter((r) => tree === undefined || tree.has(r.agent_id))
    if (rows.length === 0) return []
    const repo = yield* repositoryOf(task)
    const reports: Array<BranchReport> = []
    for (const row of rows) {
      const commits = row.base_commit === undefined || row.ahead === 0
        ? []
        : yield* git.commits(repo.root, row.base_commit, row.branch, MAX_LISTED_COMMITS)
      reports.push({ ...row, commits })
    }
    return reports
  })
