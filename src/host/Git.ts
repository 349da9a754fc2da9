/**
 * The Git service: the only module that runs git. It gives each agent a worktree of its task's repository on a branch
 * of its own (`git worktree add -b spawnkit/<agent id> <path> <base commit>`), tells what such a worktree holds, and
 * removes it with its branch.
 *
 * Security: git runs through execFile (argv, never a shell) with `-c core.hooksPath=/dev/null` (no repository hook runs
 * for spawnkit's operations), `-c core.fsmonitor=false` (no fsmonitor command), `--no-optional-locks` when it only
 * reads, and an environment without any `GIT_*` variable (spawnkit may itself run inside a git hook or an agent's
 * shell, whose GIT_DIR, GIT_INDEX_FILE or GIT_CONFIG_* would redirect every call) plus GIT_TERMINAL_PROMPT=0 and
 * LC_ALL=C (git's messages, which this module matches, in English). Every ref given by a caller passes BaseRef, every
 * branch is `spawnkit/<agent id>`, every commit a full commit id, every path absolute: none can start with `-`.
 * This is no sandbox: agents run as the same user and may configure the repository (filters run on checkout and
 * status as in any git command); it keeps spawnkit's own calls from running what a hook or the caller's environment
 * says.
 *
 * Invariant: every operation that writes repository metadata (worktree add/remove/prune, branch -D) holds the
 * repository's lock: an in-process Semaphore per repository root, then a cross-process fcntl lock on
 * `<home>/.spawnkit-git-locks/<sha256 of the root>.lock`. Never the registry's lock. Lock files of git's own held by
 * processes outside spawnkit (`index.lock`, a ref's `.lock`, `packed-refs.lock`) are waited out with backoff.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Semaphore from "effect/Semaphore"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { GitError, InvalidInput, ioFailure, RegistryIoError, WorktreeHoldsWork } from "../domain/Errors.js"
import { baseRefProblem, type CommitId, isCommitId, isSpawnkitBranch } from "../domain/GitRef.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import * as FileLock from "./FileLock.js"

/** The repository a directory is in. */
export interface Repository {
  /** Its top-level directory (of the working tree the directory is in), with symbolic links resolved. */
  readonly root: string
  /** The commit its HEAD names. */
  readonly head: CommitId
  /** The ref HEAD points at (`refs/heads/main`), or undefined when HEAD is detached. */
  readonly headRef: string | undefined
}

/** What an agent's worktree holds, as git sees it now. A missing directory or branch is a state, not an error. */
export interface WorktreeState {
  /** `git worktree list` knows the path. */
  readonly registered: boolean
  /** The directory exists. */
  readonly exists: boolean
  readonly branchExists: boolean
  /** Uncommitted changes or untracked files (ignored files do not count); false when not a registered directory. */
  readonly dirty: boolean
  /**
   * Commits on the branch (and on the worktree's HEAD when it is detached) not on the base commit; without a base,
   * those no other branch, tag or remote ref holds (what a removal would lose). 0 when neither exists.
   */
  readonly ahead: number
  /** Commits on the base ref not on the branch, when both exist. */
  readonly behind: number | undefined
  /**
   * Of the commits ahead, those no other branch, tag or remote ref holds either: what removing the branch would lose.
   * A branch merged into another (`git merge spawnkit/<id>`) has none left, as `git branch -d` judges it.
   */
  readonly unmerged: number
  /** `dirty || unmerged > 0`: removing the worktree and its branch would lose work. */
  readonly holdsWork: boolean
}

/** One entry of `git worktree list`. */
export interface Worktree {
  readonly path: string
  readonly head?: CommitId
  /** The full ref checked out (`refs/heads/…`), absent when detached or bare. */
  readonly branch?: string
  readonly bare: boolean
  readonly detached: boolean
  /** Present when locked: the reason given ("" when none; "initializing" for an add that was killed midway). */
  readonly locked?: string
  /** Present when git would prune it: why (e.g. its directory is gone). */
  readonly prunable?: string
}

/** How a worktree is removed. */
export interface RemoveOptions {
  /** Remove it even if it holds work (that work is lost). */
  readonly force: boolean
  /**
   * The commit its branch started from: without force, it holds work if it has uncommitted or untracked changes or
   * commits ahead of this base that no other branch, tag or remote ref holds; without a base, commits no other branch,
   * tag or remote ref holds.
   */
  readonly base?: CommitId
}

/** What a removal did; both false when there was nothing left to remove. */
export interface Removal {
  readonly worktreeRemoved: boolean
  readonly branchDeleted: boolean
}

/** The directory of the per-repository lock files (0700). */
export const gitLocksDir = (home: string) => NodePath.join(home, ".spawnkit-git-locks")

/** The lock file of a repository: named by the sha256 of its root, so no repository path reaches a file name. */
export const gitLockPath = (home: string, root: string) =>
  NodePath.join(gitLocksDir(home), `${createHash("sha256").update(root).digest("hex")}.lock`)

/**
 * git calls that met a lock file held by another process: each is made again after a backoff, for up to ~5 s in all
 * (the last one's failure then stands).
 */
export const gitLockRetries = Metric.counter("spawnkit_git_lock_retries", {
  description: "git calls that met a lock file held by another process (made again after a backoff)"
})

/** The environment git runs with: the given one without any `GIT_*` variable, no terminal prompt, the C locale. */
export const gitEnvironment = (env: NodeJS.ProcessEnv): Record<string, string> => {
  const clean: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !key.startsWith("GIT_")) clean[key] = value
  }
  return { ...clean, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" }
}

// ---------------------------------------------------------------------------------------------------------------
// Running git
// ---------------------------------------------------------------------------------------------------------------

/** Most output (stdout and stderr) read from one git call; beyond it git is killed (a status that long is dirty). */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024
/** After SIGTERM to an interrupted git, how long before SIGKILL. */
const KILL_GRACE_MS = 2000

const CONFIG_ARGS = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]

/** How one git call ended. `exitCode` is undefined when its output passed MAX_OUTPUT_BYTES (it was killed). */
interface Run {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number | undefined
}

interface Call {
  /** The directory git runs in (`-C`): the repository, or a worktree. */
  readonly dir: string
  /** What spawnkit is doing, for GitError ("add worktree …"). */
  readonly operation: string
  readonly args: ReadonlyArray<string>
  /** Writes repository metadata: no `--no-optional-locks`. */
  readonly write?: boolean
  /** Keep git from looking for a repository above `dir` (GIT_CEILING_DIRECTORIES = its parent). */
  readonly noDiscovery?: boolean
}

/** Signal a process group, ignoring one that has already ended. */
const signalGroup = (pid: number | undefined, signal: NodeJS.Signals) => {
  if (pid === undefined || pid <= 1) return
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group has ended.
  }
}

/**
 * One git call. git runs as the leader of a process group of its own, so an interrupted call ends git with every
 * process it started (`git reset` under `worktree add`, a checkout filter): SIGTERM to the group, SIGKILL after a
 * grace, and the interruption waits for git to end, so nothing of an interrupted operation still runs (or holds git's
 * lock files) once it returns.
 */
const exec = (env: Record<string, string>, call: Call) =>
  Effect.callback<Run, GitError>((resume) => {
    const args = [...CONFIG_ARGS, ...(call.write === true ? [] : ["--no-optional-locks"]), "-C", call.dir, ...call.args]
    const callEnv = call.noDiscovery === true ? { ...env, GIT_CEILING_DIRECTORIES: NodePath.dirname(call.dir) } : env
    // spawn, not execFile: execFile does not pass `detached` on (git would stay in spawnkit's process group).
    const child = spawn("git", args, { env: callEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    const chunks = { stdout: [] as Array<Buffer>, stderr: [] as Array<Buffer> }
    let size = 0
    let overflow = false
    const collect = (into: Array<Buffer>) => (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_OUTPUT_BYTES) return void into.push(chunk)
      if (!overflow) signalGroup(child.pid, "SIGKILL")
      overflow = true
    }
    child.stdout.on("data", collect(chunks.stdout))
    child.stderr.on("data", collect(chunks.stderr))
    child.once("error", (error) =>
      resume(Effect.fail(
        new GitError({ operation: call.operation, repo: call.dir, stderr: `git could not run: ${error.message}` })
      )))
    child.once("close", (code, signal) => {
      const stdout = Buffer.concat(chunks.stdout).toString("utf8")
      const stderr = Buffer.concat(chunks.stderr).toString("utf8")
      if (overflow) return resume(Effect.succeed({ stdout, stderr, exitCode: undefined }))
      if (code !== null) return resume(Effect.succeed({ stdout, stderr, exitCode: code }))
      const killed = `${stderr}\ngit was killed by ${signal ?? "a signal"}`
      resume(Effect.fail(new GitError({ operation: call.operation, repo: call.dir, stderr: killed })))
    })
    return Effect.callback<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done(Effect.void)
      const escalate = setTimeout(() => signalGroup(child.pid, "SIGKILL"), KILL_GRACE_MS)
      child.once("exit", () => {
        clearTimeout(escalate)
        // Whatever of the group outlived git (a filter that ignores SIGTERM) goes with it.
        signalGroup(child.pid, "SIGKILL")
        done(Effect.void)
      })
      signalGroup(child.pid, "SIGTERM")
    })
  })

/** git's messages for a lock file another process holds (index.lock, a ref's lock, packed-refs.lock, config.lock). */
const LOCK_HELD = /Unable to create '[^']*\.lock': File exists|cannot lock ref|could not lock/
/** A ref that cannot exist beside another (`spawnkit` as a branch blocks `spawnkit/x`): no wait ends it. */
const REF_CONFLICT = /exists; cannot create/

/** Whether a failed call met a lock file held by another process. */
export const lockContention = (stderr: string) => LOCK_HELD.test(stderr) && !REF_CONFLICT.test(stderr)

/** Backoff from 20 ms, doubling up to 500 ms between attempts, for about 5 s in all. */
const CONTENTION_SCHEDULE = Schedule.min([Schedule.exponential("20 millis"), Schedule.spaced("500 millis")]).pipe(
  Schedule.upTo({ duration: "5 seconds" })
)

class Contended {
  constructor(readonly run: Run) {}
}

/**
 * Run an attempt again while it fails on a lock file held by another process (the attempt's own partial effects are
 * its to undo before it returns); after ~5 s the last answer stands. Any other answer returns at once.
 */
const retryOnContention = <E>(attempt: Effect.Effect<Run, E>): Effect.Effect<Run, E> =>
  attempt.pipe(
    Effect.flatMap((r) =>
      r.exitCode !== 0 && lockContention(r.stderr)
        ? Effect.andThen(Metric.update(gitLockRetries, 1), Effect.fail(new Contended(r)))
        : Effect.succeed(r)
    ),
    Effect.retry({ while: (e) => e instanceof Contended, schedule: CONTENTION_SCHEDULE }),
    Effect.catch((e) => e instanceof Contended ? Effect.succeed(e.run) : Effect.fail(e as E))
  )

/** What git said about the repository itself, as InvalidInput naming `working_directory`, or undefined. */
const repositoryProblem = (dir: string, stderr: string): InvalidInput | undefined => {
  const reason = /detected dubious ownership/.test(stderr)
    ? `git refuses the repository at ${dir}: it is owned by another user (git's "dubious ownership" check). If you ` +
      `trust it, run git config --global --add safe.directory ${dir}; or use isolation none`
    : /not a git repository/.test(stderr)
    ? `${dir} is not a git repository; worktree isolation needs one (git init, or isolation none)`
    : /cannot change to/.test(stderr)
    ? `${dir} does not exist or is not a directory; give the repository's directory`
    : undefined
  return reason === undefined ? undefined : new InvalidInput({ field: "working_directory", reason })
}

/** A failed call as the error it is: a problem of the repository (InvalidInput), or GitError with git's words. */
const failure = (call: Call, r: Run): InvalidInput | GitError =>
  repositoryProblem(call.dir, r.stderr) ??
    new GitError({
      operation: call.operation,
      repo: call.dir,
      ...(r.exitCode === undefined ? {} : { exitCode: r.exitCode }),
      stderr: r.exitCode === undefined ? `output larger than ${MAX_OUTPUT_BYTES} bytes` : r.stderr.slice(-4000)
    })

/** What the operations need: git calls (retried on contention) and the repository lock. */
interface Runner {
  /** The environment of every call (for a call made with `exec` directly, as `worktree add` is). */
  readonly env: Record<string, string>
  readonly run: (call: Call) => Effect.Effect<Run, GitError>
  /** stdout of a call that must succeed. */
  readonly ok: (call: Call) => Effect.Effect<string, GitError | InvalidInput>
  readonly exclusive: <A, E, R>(
    repo: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | RegistryIoError, R>
}

// Invariant: one Semaphore per repository root in this process, whichever Git layer (home) asks.
const semaphores = new Map<string, Semaphore.Semaphore>()
const semaphoreOf = (root: string) => {
  let s = semaphores.get(root)
  if (s === undefined) {
    s = Semaphore.makeUnsafe(1)
    semaphores.set(root, s)
  }
  return s
}

/** A path with symbolic links resolved as far as it exists (git prints worktree paths resolved). */
const canonical = (path: string): string => {
  const resolved = NodePath.resolve(path)
  try {
    return Fs.realpathSync.native(resolved)
  } catch {
    const parent = NodePath.dirname(resolved)
    return parent === resolved ? resolved : NodePath.join(canonical(parent), NodePath.basename(resolved))
  }
}

const makeRunner = (home: string, env: Record<string, string>): Runner => {
  const run = (call: Call) => retryOnContention(exec(env, call))
  const ok = (call: Call) =>
    Effect.flatMap(run(call), (r) => r.exitCode === 0 ? Effect.succeed(r.stdout) : Effect.fail(failure(call, r)))
  const exclusive = <A, E, R>(repo: string, effect: Effect.Effect<A, E, R>) =>
    Effect.scoped(Effect.gen(function*() {
      const root = canonical(repo)
      const dir = gitLocksDir(home)
      yield* Effect.try({
        try: () => Fs.mkdirSync(dir, { recursive: true, mode: 0o700 }),
        catch: (cause) =>
          new RegistryIoError({ path: dir, operation: "create the git lock directory", ...ioFailure(cause) })
      })
      const lock = yield* FileLock.make(gitLockPath(home, root))
      return yield* semaphoreOf(root).withPermits(1)(lock.withLock(effect))
    }))
  return { env, run, ok, exclusive }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation of what reaches git's argv
// ---------------------------------------------------------------------------------------------------------------

/** An absolute path without NUL or line breaks (it is a value of `-C` or after `--`: never an option). */
const absolute = (path: string, field: string) =>
  NodePath.isAbsolute(path) && !/[\0\n\r]/.test(path)
    ? Effect.succeed(NodePath.resolve(path))
    : Effect.fail(new InvalidInput({ field, reason: `expected an absolute path, got ${JSON.stringify(path)}` }))

const spawnkitBranch = (branch: string) =>
  isSpawnkitBranch(branch)
    ? Effect.succeed(branch)
    : Effect.fail(
      new InvalidInput({
        field: "branch",
        reason: `${JSON.stringify(branch)} is not a spawnkit branch (spawnkit/<agent id>); spawnkit touches no other`
      })
    )

const commitId = (base: string, field = "base") =>
  isCommitId(base)
    ? Effect.succeed(base)
    : Effect.fail(new InvalidInput({ field, reason: `expected a full commit id, got ${JSON.stringify(base)}` }))

// ---------------------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------------------

const repositoryOf = (git: Runner) =>
  Effect.fn("Git.repository")(function*(dir: string) {
    const where = yield* absolute(dir, "working_directory")
    const call = {
      dir: where,
      operation: "find the repository",
      args: ["rev-parse", "--is-bare-repository", "--is-inside-work-tree", "--show-toplevel"]
    }
    const found = yield* git.run(call)
    // In a bare repository (or a .git directory) --show-toplevel fails after the first two answers were printed.
    const [bare, inside, top] = found.stdout.split("\n")
    if (bare === "true") {
      return yield* new InvalidInput({
        field: "working_directory",
        reason: `${where} is a bare repository, with no working tree to branch from; give a clone with a working ` +
          "tree, or use isolation none"
      })
    }
    if ((found.exitCode === 0 && inside === "false") || /must be run in a work tree/.test(found.stderr)) {
      return yield* new InvalidInput({
        field: "working_directory",
        reason: `${where} is inside a repository's .git directory, not its working tree; give the working tree`
      })
    }
    if (found.exitCode !== 0 || top === undefined || top === "") return yield* failure(call, found)
    const root = canonical(top)
    const head = yield* git.run({
      dir: root,
      operation: "read HEAD",
      args: ["rev-parse", "--verify", "-q", "HEAD^{commit}"]
    })
    const commit = head.stdout.trim()
    if (head.exitCode !== 0 || !isCommitId(commit)) {
      return yield* new InvalidInput({
        field: "working_directory",
        reason: `${root} has no commit yet; worktree isolation branches from a commit: make a first commit, or use ` +
          "isolation none"
      })
    }
    const refCall = { dir: root, operation: "read HEAD", args: ["symbolic-ref", "--quiet", "HEAD"] }
    const ref = yield* git.run(refCall)
    // Exit 1 with --quiet: HEAD is detached.
    if (ref.exitCode !== 0 && ref.exitCode !== 1) return yield* failure(refCall, ref)
    return { root, head: commit, headRef: ref.exitCode === 0 ? ref.stdout.trim() : undefined } satisfies Repository
  })

const resolveCommitOf = (git: Runner) =>
  Effect.fn("Git.resolveCommit")(function*(repo: string, ref: string) {
    const dir = yield* absolute(repo, "working_directory")
    const problem = baseRefProblem(ref)
    if (problem !== undefined) return yield* new InvalidInput({ field: "base_ref", reason: problem })
    // Security: --end-of-options, and the ref passed BaseRef (no leading '-', no revision syntax): `<ref>^{commit}` is
    // the only revision expression, and it is spawnkit's own.
    const call = {
      dir,
      operation: `resolve ${ref}`,
      args: ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`]
    }
    const r = yield* git.run(call)
    const commit = r.stdout.trim()
    if (r.exitCode === 0 && isCommitId(commit)) return commit
    if (r.exitCode === 1 || /ambiguous|Needed a single revision|unknown revision/.test(r.stderr)) {
      return yield* new InvalidInput({
        field: "base_ref",
        reason: `${JSON.stringify(ref)} names no commit in ${dir}` +
          `${/ambiguous/.test(r.stderr) ? " (it is ambiguous)" : ""}; give a branch, tag or commit id of that ` +
          "repository (fetch it first if it is only on a remote)"
      })
    }
    return yield* failure(call, r)
  })

const branchExistsIn = (git: Runner, dir: string, branch: string) =>
  git.run({ dir, operation: `look up ${branch}`, args: ["show-ref", "--verify", "--quiet", `refs/heads/${branch}`] })
    .pipe(
      Effect.flatMap((r) =>
        r.exitCode === 0 || r.exitCode === 1
          ? Effect.succeed(r.exitCode === 0)
          : Effect.fail(failure({ dir, operation: `look up ${branch}`, args: [] }, r))
      )
    )

const deleteBranch = (git: Runner, dir: string, branch: string) =>
  git.ok({ dir, operation: `delete branch ${branch}`, args: ["branch", "-D", "--", branch], write: true })

/**
 * Undo what a failed or interrupted `worktree add` left: a worktree registered at the target (a git killed midway
 * leaves it locked "initializing"), and the branch (git 2.39 creates the branch first and keeps it when the checkout
 * then fails). Both are the add's own: the target and the branch did not exist before it (checked under the lock).
 * Nothing is undone when git refused because the branch existed.
 */
const rollbackAdd = (git: Runner, dir: string, target: string, branch: string, run: Run | undefined) =>
  run !== undefined && /a branch named '.*' already exists/.test(run.stderr)
    ? Effect.void
    : Effect.gen(function*() {
      const list = yield* git.ok({ dir, operation: "list worktrees", args: ["worktree", "list", "--porcelain", "-z"] })
      if (parseWorktreeList(list).some((w) => w.path === target || w.path === canonical(target))) {
        yield* git.ok({
          dir,
          operation: `remove worktree ${target}`,
          args: ["worktree", "remove", "--force", "--force", "--", target],
          write: true
        })
      }
      if (yield* branchExistsIn(git, dir, branch)) yield* deleteBranch(git, dir, branch)
    }).pipe(
      Effect.catch((e) =>
        Effect.logWarning(`git: could not undo the failed add of worktree ${target} (${branch}): ${e.message}`)
      )
    )

const addWorktreeOf = (git: Runner) =>
  Effect.fn("Git.addWorktree")(function*(repo: string, path: string, branch: string, base: CommitId) {
    const dir = yield* absolute(repo, "working_directory")
    const target = yield* absolute(path, "worktree_path")
    yield* spawnkitBranch(branch)
    yield* commitId(base)
    const operation = `add worktree ${target} on branch ${branch}`
    return yield* git.exclusive(
      dir,
      Effect.gen(function*() {
        if (Fs.existsSync(target)) {
          return yield* new InvalidInput({
            field: "worktree_path",
            reason: `${target} already exists; spawnkit makes a worktree only where nothing is, and removed nothing ` +
              "(remove it yourself if it is stale, or use another agent id)"
          })
        }
        if (yield* branchExistsIn(git, dir, branch)) {
          return yield* new InvalidInput({
            field: "branch",
            reason: `branch ${branch} already exists in ${dir}; remove the old agent's worktree and branch first ` +
              "(its work is on that branch), or use another agent id"
          })
        }
        yield* makeParent(target)
        // Security: `--` ends the options (git 2.39's `worktree add` also takes --end-of-options; `--` works in every
        // version): the path is absolute (starts with '/'), the branch is `spawnkit/<agent id>` (the value of -b) and
        // the base a full commit id, so nothing here can be read as an option even without it.
        const call = { dir, operation, args: ["worktree", "add", "-b", branch, "--", target, base], write: true }
        // Each attempt undoes what it made before it is made again or reported (see rollbackAdd).
        const attempt = exec(git.env, call).pipe(
          Effect.tap((r) => r.exitCode === 0 ? Effect.void : rollbackAdd(git, dir, target, branch, r)),
          Effect.onInterrupt(() => rollbackAdd(git, dir, target, branch, undefined))
        )
        const r = yield* retryOnContention(attempt)
        if (r.exitCode !== 0) return yield* failure(call, r)
      })
    )
  })

/** The directory a new worktree goes in (0700), made if missing. */
const makeParent = (target: string) =>
  Effect.try({
    try: () => Fs.mkdirSync(NodePath.dirname(target), { recursive: true, mode: 0o700 }),
    catch: (cause) => new RegistryIoError({ path: NodePath.dirname(target), operation: "create", ...ioFailure(cause) })
  })

/**
 * Check out an existing spawnkit branch in a new worktree (`git worktree add -- <path> <branch>`): a resumed agent's
 * worktree made again where it was, its branch (and the work on it) kept. Refused when the path exists.
 */
const reattachWorktreeOf = (git: Runner) =>
  Effect.fn("Git.reattachWorktree")(function*(repo: string, path: string, branch: string) {
    const dir = yield* absolute(repo, "working_directory")
    const target = yield* absolute(path, "worktree_path")
    yield* spawnkitBranch(branch)
    return yield* git.exclusive(
      dir,
      Effect.gen(function*() {
        if (Fs.existsSync(target)) {
          return yield* new InvalidInput({ field: "worktree_path", reason: `${target} already exists` })
        }
        yield* makeParent(target)
        // The branch is `spawnkit/<agent id>` and the path absolute: neither can be read as an option.
        yield* git.ok({
          dir,
          operation: `add worktree ${target} on existing branch ${branch}`,
          args: ["worktree", "add", "--", target, branch],
          write: true
        })
      })
    )
  })

/** A commit as `list_agent_branches` shows it. */
export interface CommitSummary {
  readonly sha: string
  readonly subject: string
}

/** The newest `max` commits on a spawnkit branch not on `base`, newest first (a read). */
const commitsOf = (git: Runner) =>
  Effect.fn("Git.commits")(function*(repo: string, base: CommitId, branch: string, max: number) {
    const dir = yield* absolute(repo, "working_directory")
    yield* spawnkitBranch(branch)
    yield* commitId(base)
    const out = yield* git.ok({
      dir,
      operation: `list commits of ${branch}`,
      args: ["log", `--max-count=${Math.max(1, Math.floor(max))}`, "--format=%H%x1f%s", `${base}..refs/heads/${branch}`]
    })
    return out.split("\n").flatMap((line): ReadonlyArray<CommitSummary> => {
      const [sha, subject] = line.split("\u001f")
      return sha !== undefined && /^[0-9a-f]{40,64}$/.test(sha) ? [{ sha, subject: (subject ?? "").slice(0, 200) }] : []
    })
  })

/** Parse `git worktree list --porcelain -z`: NUL-terminated lines, an empty line after each worktree. */
export const parseWorktreeList = (out: string): ReadonlyArray<Worktree> => {
  const worktrees: Array<Worktree> = []
  let current: { -readonly [K in keyof Worktree]: Worktree[K] } | undefined
  for (const line of out.split("\0")) {
    if (line === "") {
      if (current !== undefined) worktrees.push(current)
      current = undefined
      continue
    }
    const space = line.indexOf(" ")
    const [key, value] = space === -1 ? [line, undefined] : [line.slice(0, space), line.slice(space + 1)]
    if (key === "worktree" && value !== undefined) {
      if (current !== undefined) worktrees.push(current)
      current = { path: value, bare: false, detached: false }
    } else if (current === undefined) continue
    else if (key === "HEAD" && value !== undefined && isCommitId(value)) current.head = value
    else if (key === "branch" && value !== undefined) current.branch = value
    else if (key === "bare") current.bare = true
    else if (key === "detached") current.detached = true
    else if (key === "locked") current.locked = value ?? ""
    else if (key === "prunable") current.prunable = value ?? ""
  }
  if (current !== undefined) worktrees.push(current)
  return worktrees
}

const listWorktreesOf = (git: Runner) =>
  Effect.fn("Git.listWorktrees")(function*(repo: string) {
    const dir = yield* absolute(repo, "working_directory")
    // -z (git 2.36 and later): a path holding a line break cannot split an entry.
    const out = yield* git.ok({ dir, operation: "list worktrees", args: ["worktree", "list", "--porcelain", "-z"] })
    return parseWorktreeList(out)
  })

const count = (git: Runner, dir: string, operation: string, args: ReadonlyArray<string>) =>
  git.ok({ dir, operation, args: ["rev-list", "--count", ...args] }).pipe(Effect.map((out) => Number(out.trim())))

/** Uncommitted changes or untracked files in a worktree (read with --no-optional-locks: no index refresh written). */
const dirtyAt = (git: Runner, path: string) =>
  git.run({
    dir: path,
    operation: `read the status of ${path}`,
    args: ["status", "--porcelain", "--untracked-files=all"],
    // The worktree's own repository only: a worktree whose .git file is gone must not be read as a parent's.
    noDiscovery: true
  }).pipe(
    Effect.flatMap((r) =>
      r.exitCode === undefined
        ? Effect.succeed(true) // more status than MAX_OUTPUT_BYTES
        : r.exitCode === 0
        ? Effect.succeed(r.stdout.length > 0)
        : Effect.fail(
          new GitError({ operation: `read the status of ${path}`, repo: path, exitCode: r.exitCode, stderr: r.stderr })
        )
    )
  )

const inspectOf = (git: Runner, listWorktrees: ReturnType<typeof listWorktreesOf>) =>
  Effect.fn("Git.inspect")(
    function*(repo: string, path: string, branch: string, base: CommitId | undefined, baseRef: string | undefined) {
      const dir = yield* absolute(repo, "working_directory")
      const target = yield* absolute(path, "worktree_path")
      yield* spawnkitBranch(branch)
      if (base !== undefined) yield* commitId(base)
      const baseRefBad = baseRef === undefined ? undefined : baseRefProblem(baseRef)
      if (baseRefBad !== undefined) return yield* new InvalidInput({ field: "base_ref", reason: baseRefBad })
      const real = canonical(target)
      const entry = (yield* listWorktrees(dir)).find((w) => w.path === target || w.path === real)
      const registered = entry !== undefined
      const exists = Fs.statSync(target, { throwIfNoEntry: false })?.isDirectory() === true
      const branchExists = yield* branchExistsIn(git, dir, branch)
      const dirty = registered && exists ? yield* dirtyAt(git, target) : false
      // Commits made on a detached HEAD in the worktree are lost with it too: they count with the branch's.
      const tips = [
        ...(branchExists ? [`refs/heads/${branch}`] : []),
        ...(entry?.detached === true && entry.head !== undefined ? [entry.head] : [])
      ]
      // Security: no --end-of-options here, as rev-list reads --not after it as a revision: every argument is a full
      // ref under refs/heads/spawnkit/, a full commit id, or spawnkit's own option.
      const elsewhere = [`--exclude=${branch}`, "--branches", "--tags", "--remotes"]
      const others = base !== undefined ? [base] : elsewhere
      const ahead = tips.length === 0
        ? 0
        : yield* count(git, dir, `count the commits of ${branch}`, [...tips, "--not", ...others])
      // Of those, the ones no other ref holds (a branch merged elsewhere loses nothing when it goes).
      const unmerged = ahead === 0 || base === undefined
        ? ahead
        : yield* count(git, dir, `count the unmerged commits of ${branch}`, [...tips, "--not", base, ...elsewhere])
      const baseCommit = branchExists && baseRef !== undefined
        ? yield* resolveCommitOf(git)(dir, baseRef).pipe(
          Effect.catchTag("InvalidInput", () => Effect.succeed(undefined))
        )
        : undefined
      const behind = baseCommit === undefined ? undefined : yield* count(
        git,
        dir,
        `count the commits of ${baseRef} not on ${branch}`,
        [baseCommit, "--not", `refs/heads/${branch}`]
      )
      return {
        registered,
        exists,
        branchExists,
        dirty,
        ahead,
        behind,
        unmerged,
        holdsWork: dirty || unmerged > 0
      } satisfies WorktreeState
    }
  )

const removeWorktreeOf = (git: Runner, inspect: ReturnType<typeof inspectOf>) =>
  Effect.fn("Git.removeWorktree")(
    function*(repo: string, path: string, branch: string, options: RemoveOptions) {
      const dir = yield* absolute(repo, "working_directory")
      const target = yield* absolute(path, "worktree_path")
      // Invariant: spawnkit deletes no branch but its own (`spawnkit/<agent id>`).
      yield* spawnkitBranch(branch)
      return yield* git.exclusive(
        dir,
        Effect.gen(function*() {
          // Judged as the caller judged it: against the worktree's base when it has one (its base may be a commit no
          // branch holds, e.g. a detached HEAD's), else against every other branch, tag and remote ref.
          const state = yield* inspect(dir, target, branch, options.base, undefined)
          if (!options.force && state.holdsWork) {
            return yield* new WorktreeHoldsWork({ path: target, branch, dirty: state.dirty, ahead: state.unmerged })
          }
          // A locked worktree (one whose `worktree add` was killed midway is locked "initializing") needs --force
          // twice; a registered worktree whose directory is gone is removed from git's list all the same.
          if (state.registered) {
            yield* git.ok({
              dir,
              operation: `remove worktree ${target}`,
              args: ["worktree", "remove", ...(options.force ? ["--force", "--force"] : []), "--", target],
              write: true
            })
          }
          if (state.branchExists) yield* deleteBranch(git, dir, branch)
          yield* git.ok({ dir, operation: "prune worktrees", args: ["worktree", "prune"], write: true })
          return { worktreeRemoved: state.registered, branchDeleted: state.branchExists } satisfies Removal
        })
      )
    }
  )

const pruneOf = (git: Runner) =>
  Effect.fn("Git.prune")(function*(repo: string) {
    const dir = yield* absolute(repo, "working_directory")
    yield* git.exclusive(
      dir,
      git.ok({ dir, operation: "prune worktrees", args: ["worktree", "prune"], write: true })
    )
  })

/** The Git service. Every path is absolute; `repo` is a repository's top-level directory (Repository.root). */
export class Git extends Context.Service<Git, {
  /**
   * The repository `dir` is in. Not a repository, a bare one, a `.git` directory, one without a commit, or one git
   * refuses for its owner: InvalidInput naming `working_directory` that says what to do.
   */
  readonly repository: (dir: string) => Effect.Effect<Repository, InvalidInput | GitError>
  /** The commit a base ref names (`<ref>^{commit}`); a refused or unknown ref is InvalidInput naming `base_ref`. */
  readonly resolveCommit: (repo: string, ref: string) => Effect.Effect<CommitId, InvalidInput | GitError>
  /**
   * `git worktree add -b <branch> -- <path> <base>`, under the repository's lock. Refused (InvalidInput, nothing
   * changed) when the path or the branch exists; a failed add leaves no branch behind.
   */
  readonly addWorktree: (
    repo: string,
    path: string,
    branch: string,
    base: CommitId
  ) => Effect.Effect<void, InvalidInput | GitError | RegistryIoError>
  /** What an agent's worktree and branch hold now (see WorktreeState); reads only. */
  readonly inspect: (
    repo: string,
    path: string,
    branch: string,
    base: CommitId | undefined,
    baseRef: string | undefined
  ) => Effect.Effect<WorktreeState, InvalidInput | GitError>
  /**
   * Remove the worktree, delete its branch (only ever a `spawnkit/` one) and prune, under the repository's lock.
   * Idempotent: what is already gone is skipped. Without force, a worktree that holds work (see RemoveOptions) is
   * refused with WorktreeHoldsWork and nothing is removed; with force, its work is discarded (a locked worktree too).
   */
  readonly removeWorktree: (
    repo: string,
    path: string,
    branch: string,
    options: RemoveOptions
  ) => Effect.Effect<Removal, InvalidInput | GitError | WorktreeHoldsWork | RegistryIoError>
  /** Check out an existing spawnkit branch in a new worktree at `path`, under the repository's lock. */
  readonly reattachWorktree: (
    repo: string,
    path: string,
    branch: string
  ) => Effect.Effect<void, InvalidInput | GitError | RegistryIoError>
  /** The newest `max` commits on a spawnkit branch not on `base`, newest first. */
  readonly commits: (
    repo: string,
    base: CommitId,
    branch: string,
    max: number
  ) => Effect.Effect<ReadonlyArray<CommitSummary>, InvalidInput | GitError>
  /** Every worktree of the repository, the main one first (`git worktree list --porcelain -z`). */
  readonly listWorktrees: (repo: string) => Effect.Effect<ReadonlyArray<Worktree>, InvalidInput | GitError>
  /** `git worktree prune`, under the repository's lock: forget worktrees whose directories are gone (not locked ones). */
  readonly prune: (repo: string) => Effect.Effect<void, InvalidInput | GitError | RegistryIoError>
}>()("spawnkit/Git") {
  /** git from PATH; the lock files under the configured home. */
  static readonly layer: Layer.Layer<Git, never, SpawnkitConfig> = Layer.effect(
    Git,
    Effect.gen(function*() {
      const config = yield* SpawnkitConfig
      const git = makeRunner(config.home, gitEnvironment(process.env))
      const listWorktrees = listWorktreesOf(git)
      const inspect = inspectOf(git, listWorktrees)
      return Git.of({
        repository: repositoryOf(git),
        resolveCommit: resolveCommitOf(git),
        addWorktree: addWorktreeOf(git),
        inspect,
        removeWorktree: removeWorktreeOf(git, inspect),
        reattachWorktree: reattachWorktreeOf(git),
        commits: commitsOf(git),
        listWorktrees,
        prune: pruneOf(git)
      })
    })
  )
}
