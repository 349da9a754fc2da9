/**
 * Worktree spawn: what a git worktree per agent (`isolation: worktree`) adds to a spawn, and how soon a killed agent's
 * worktree is gone, on the file registry, measured against spawns without one in the same round (the figures are
 * ratios: a loaded machine moves both alike).
 *
 * One environment (its home, tmux server and a supervisor in this process, so no exit starts a hook process) holds a
 * throwaway git repository with one commit of REPO_FILES small tracked files, each worktree a real checkout of them.
 * Before the rounds, one agent of each isolation is spawned and killed unmeasured (tmux's server, git's caches). Each
 * round is a task in that repository:
 * - spawn: AGENTS agents (`sleep 600`) spawned concurrently with isolation none, then AGENTS with isolation worktree,
 *   each timed from the call to its return; every spawn must succeed;
 * - settle: the worktree agents killed concurrently, one kill each, each timed from the call until its worktree's
 *   directory and its branch `spawnkit/<id>` are gone (they hold no work, so the kill removes both);
 * - audit: once the other agents are killed too, the repository must hold no `spawnkit/*` branch, no worktree but its
 *   main one, and no `*.lock` file under its .git; anything left fails the measurement.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { branchOf } from "../domain/GitRef.js"
import type { AgentId, TaskId } from "../domain/Ids.js"
import { gitEnvironment } from "../host/Git.js"
import { worktreePath } from "../host/Workspace.js"
import { kill } from "../lifecycle/Kill.js"
import { spawn } from "../spawn/Spawner.js"
import { SpawnkitConfig, worktreesRoot } from "../SpawnkitConfig.js"
import { supervise } from "../supervisor/Supervisor.js"
import { createTask } from "../tasks/Tasks.js"
import { type ScenarioEnv, scenarioEnv, supervisorStarted, withSpawnkit } from "./Environment.js"
import { BenchFailed, benchFailed } from "./Scenario.js"
import { summarize, type Summary } from "./Stats.js"

/** Agents spawned per isolation in a round. */
export const WORKTREE_AGENTS = 8
/** Tracked files of the repository's one commit, and their directories. */
export const REPO_FILES = 200
const REPO_DIRS = 10
/** Longest a killed agent's worktree may take to be gone before the measurement fails. */
const SETTLE_TIMEOUT = Duration.seconds(30)
/** How often a worktree not yet gone when its kill returned is looked at again. */
const SETTLE_POLL = Duration.millis(5)

/** What the audits after the rounds found, summed: all zero but the main worktree, or the measurement failed. */
export interface WorktreeAudit {
  /** `spawnkit/*` branches left. */
  readonly branches: number
  /** Worktrees git lists besides the main one. */
  readonly extraWorktrees: number
  /** `*.lock` files under the repository's .git. */
  readonly lockFiles: number
}

/** The measurement's figures. */
export interface WorktreeSpawnResult {
  readonly backend: "file"
  readonly rounds: number
  /** Agents per isolation per round. */
  readonly agents: number
  /** Tracked files of the repository (each worktree checks them all out). */
  readonly files: number
  /** Spawn latency, call to return, isolation none, ms. */
  readonly none: Summary
  /** Spawn latency, call to return, isolation worktree, ms. */
  readonly worktree: Summary
  /** worktree.p50 / none.p50. */
  readonly ratio: number
  /** The same ratio in each round, of that round's p50s. */
  readonly roundRatios: ReadonlyArray<number>
  /** From a kill's call until its agent's worktree directory and branch are gone, ms. */
  readonly settle: Summary
  /** From a kill's call until it returned (its last step, `git worktree prune`, waits for the repository's lock), ms. */
  readonly killReturned: Summary
  readonly audit: WorktreeAudit
}

/** One round's samples. */
interface Round {
  readonly none: ReadonlyArray<number>
  readonly worktree: ReadonlyArray<number>
  readonly settle: ReadonlyArray<number>
  readonly killReturned: ReadonlyArray<number>
}

/** git on the measurement's repository: no hook, no GIT_* variable of the caller's, no user configuration needed. */
const git = (repo: string, ...args: ReadonlyArray<string>) =>
  execFileSync(
    "git",
    [
      ...["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"],
      ...["-c", "user.name=spawnkit bench", "-c", "user.email=bench@example.invalid", "-C", repo, ...args]
    ],
    { encoding: "utf8", env: gitEnvironment(process.env), stdio: ["ignore", "pipe", "pipe"] }
  )

/** A repository of REPO_FILES small files in REPO_DIRS directories, all in one commit. */
const makeRepository = (dir: string) =>
  Effect.try({
    try: () => {
      const repo = NodePath.join(dir, "repo")
      Fs.mkdirSync(repo)
      git(repo, "init", "-q")
      for (let i = 0; i < REPO_FILES; i++) {
        const sub = NodePath.join(repo, `src${i % REPO_DIRS}`)
        Fs.mkdirSync(sub, { recursive: true })
        Fs.writeFileSync(NodePath.join(sub, `file${i}.ts`), `export const value${i} = ${i}\n`.repeat(20))
      }
      git(repo, "add", "-A")
      git(repo, "commit", "-qm", "Start")
      return Fs.realpathSync(repo)
    },
    catch: benchFailed("making the worktree measurement's repository")
  })

/** What the repository holds that a clean end must not leave: spawnkit branches, other worktrees, lock files. */
const auditRepository = (repo: string): WorktreeAudit => {
  const branches = git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/spawnkit/").split("\n")
    .filter((l) => l.length > 0).length
  const worktrees = git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree "))
  const lockFiles = (Fs.readdirSync(NodePath.join(repo, ".git"), { recursive: true }) as Array<string>)
    .filter((name) => name.endsWith(".lock")).length
  return { branches, extraWorktrees: worktrees.length - 1, lockFiles }
}

/** The audit, failing the measurement when anything was left. */
const audited = (repo: string, after: string) =>
  Effect.gen(function*() {
    const found = yield* Effect.try({ try: () => auditRepository(repo), catch: benchFailed("auditing the repository") })
    if (found.branches + found.extraWorktrees + found.lockFiles > 0) {
      return yield* new BenchFailed({
        reason: `after ${after} the repository holds ${found.branches} spawnkit/* branch(es), ` +
          `${found.extraWorktrees} worktree(s) besides the main one and ${found.lockFiles} *.lock file(s) under .git`
      })
    }
    return found
  })

/** Whether a local branch exists, read from the ref files (no git process while a settle is timed). */
const branchExists = (repo: string, branch: string) => {
  if (Fs.existsSync(NodePath.join(repo, ".git", "refs", "heads", ...branch.split("/")))) return true
  try {
    return Fs.readFileSync(NodePath.join(repo, ".git", "packed-refs"), "utf8").includes(` refs/heads/${branch}\n`)
  } catch {
    return false
  }
}

const now = Effect.sync(() => performance.now())

/** How long an effect took, ms, with its result. */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = yield* now
    const result = yield* effect
    return { result, ms: (yield* now) - started }
  })

/** Say which spawn or kill failed and why: any failure of one fails the measurement. */
const failedTo = (what: string) => (e: { readonly _tag: string; readonly message: string }) =>
  new BenchFailed({ reason: `${what}: ${e._tag}: ${e.message}` })

/** AGENTS spawns into the task at once with this isolation: each one's latency and agent id. */
const spawnAll = (taskId: TaskId, isolation: "none" | "worktree") =>
  Effect.forEach(
    Array.from({ length: WORKTREE_AGENTS }, (_, i) => i + 1),
    (i) =>
      timed(spawn({ taskId, agentType: `${isolation}${i}`, prompt: `sleep, ${isolation} ${i}`, isolation })).pipe(
        Effect.mapError(failedTo(`spawn ${i} with isolation ${isolation}`)),
        Effect.map(({ ms, result }) => ({ ms, id: result.agent_id as AgentId }))
      ),
    { concurrency: "unbounded" }
  )

/**
 * Kill an agent of the task: how long from the call until its worktree's directory and branch are gone (watched every
 * SETTLE_POLL from the call on, so a removal that lands before the kill's last steps counts when it lands), and until
 * the kill returned.
 */
const killSettled = (repo: string, root: string, taskId: TaskId, id: AgentId) =>
  Effect.gen(function*() {
    const path = worktreePath(root, taskId, id)
    const branch = branchOf(id)
    const started = yield* now
    const gone = Effect.gen(function*() {
      while (Fs.existsSync(path) || branchExists(repo, branch)) yield* Effect.sleep(SETTLE_POLL)
      return (yield* now) - started
    })
    const killed = kill(taskId, id, "worktree measurement").pipe(
      Effect.mapError(failedTo(`kill of ${id}`)),
      Effect.andThen(now),
      Effect.map((at) => at - started)
    )
    const [goneMs, returnedMs] = yield* Effect.all([gone, killed], { concurrency: "unbounded" })
    return { goneMs, returnedMs }
  }).pipe(
    Effect.timeoutOrElse({
      duration: SETTLE_TIMEOUT,
      orElse: () => Effect.fail(new BenchFailed({ reason: `the worktree of killed agent ${id} was not removed` }))
    })
  )

/** Kill agents at once, untimed. */
const killAll = (taskId: TaskId, ids: ReadonlyArray<AgentId>) =>
  Effect.forEach(
    ids,
    (id) => kill(taskId, id, "worktree measurement").pipe(Effect.mapError(failedTo(`kill of ${id}`))),
    { concurrency: "unbounded", discard: true }
  )

/** A task in the repository, room for both isolations' agents. */
const newTask = (repo: string, description: string) =>
  createTask({
    description,
    working_directory: repo,
    max_concurrent: 2 * WORKTREE_AGENTS,
    max_agents: 2 * WORKTREE_AGENTS,
    max_children_per_parent: 2 * WORKTREE_AGENTS,
    max_spawns_per_minute: 1000
  }).pipe(Effect.map((t) => t.task_id))

/** Every worktree agent has its directory and branch (else a spawn claimed a worktree it did not make). */
const checkMade = (repo: string, root: string, taskId: TaskId, ids: ReadonlyArray<AgentId>) => {
  const missing = ids.filter((id) =>
    !Fs.existsSync(worktreePath(root, taskId, id)) || !branchExists(repo, branchOf(id))
  )
  return missing.length === 0
    ? Effect.void
    : Effect.fail(new BenchFailed({ reason: `spawned without their worktree or branch: ${missing.join(", ")}` }))
}

/** One round: the spawns of each isolation, the worktree agents killed and timed, the others killed, the audit. */
const round = (env: ScenarioEnv, repo: string, n: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const root = worktreesRoot(yield* SpawnkitConfig)
      const taskId = yield* newTask(repo, `worktree spawn, round ${n}`)
      const none = yield* spawnAll(taskId, "none")
      const worktree = yield* spawnAll(taskId, "worktree")
      yield* checkMade(repo, root, taskId, worktree.map((s) => s.id))
      const kills = yield* Effect.forEach(worktree, (s) => killSettled(repo, root, taskId, s.id), {
        concurrency: "unbounded"
      })
      yield* killAll(taskId, none.map((s) => s.id))
      yield* audited(repo, `round ${n}`)
      return {
        none: none.map((s) => s.ms),
        worktree: worktree.map((s) => s.ms),
        settle: kills.map((k) => k.goneMs),
        killReturned: kills.map((k) => k.returnedMs)
      } satisfies Round
    })
  )

/** One agent of each isolation spawned and killed, unmeasured: tmux's server started, git's files in the cache. */
const warmUp = (env: ScenarioEnv, repo: string) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const taskId = yield* newTask(repo, "worktree spawn, warm-up")
      const ids: Array<AgentId> = []
      for (const isolation of ["none", "worktree"] as const) {
        const spawned = yield* spawn({ taskId, agentType: `warm-${isolation}`, prompt: "warm up", isolation }).pipe(
          Effect.mapError(failedTo(`warm-up spawn with isolation ${isolation}`))
        )
        ids.push(spawned.agent_id as AgentId)
      }
      yield* killAll(taskId, ids)
      yield* audited(repo, "the warm-up")
    })
  )

const ratioOf = (worktree: Summary, none: Summary) => Math.round((worktree.p50 / Math.max(none.p50, 0.001)) * 100) / 100

/** `rounds` rounds on the file registry, in an environment of their own with a supervisor running in it. */
export const measureWorktreeSpawn = (rounds: number, progress: (text: string) => void) =>
  Effect.scoped(Effect.gen(function*() {
    const env = yield* scenarioEnv("worktree-spawn", ["sleep", "600"])
    const repo = yield* makeRepository(env.dir)
    // Exits recorded in this process: a kill starts no `spawnkit agent-exited` process competing for the cores.
    yield* withSpawnkit(env, supervise({ reconcileEvery: Duration.zero })).pipe(
      Effect.provideService(References.MinimumLogLevel, "Error"),
      Effect.forkScoped
    )
    yield* supervisorStarted(env.home)
    // A line per removed worktree is what the measurement expects: only warnings and errors reach the bench's output.
    const quiet = Effect.provideService(References.MinimumLogLevel, "Warn")
    yield* quiet(warmUp(env, repo))
    const figures: Array<Round> = []
    for (let n = 1; n <= rounds; n++) figures.push(yield* quiet(round(env, repo, n)))
    const none = summarize(figures.flatMap((f) => f.none))
    const worktree = summarize(figures.flatMap((f) => f.worktree))
    const settle = summarize(figures.flatMap((f) => f.settle))
    const result = {
      backend: "file",
      rounds,
      agents: WORKTREE_AGENTS,
      files: REPO_FILES,
      none,
      worktree,
      ratio: ratioOf(worktree, none),
      roundRatios: figures.map((f) => ratioOf(summarize(f.worktree), summarize(f.none))),
      settle,
      killReturned: summarize(figures.flatMap((f) => f.killReturned)),
      audit: yield* audited(repo, "the rounds")
    } satisfies WorktreeSpawnResult
    progress(
      `worktree spawn: isolation none p50 ${none.p50} / max ${none.max} ms, worktree p50 ${worktree.p50} / max ` +
        `${worktree.max} ms (${result.ratio}x); kill to worktree gone p50 ${settle.p50} / max ${settle.max} ms`
    )
    return result
  })).pipe(Effect.mapError(benchFailed("measuring worktree spawns")))
