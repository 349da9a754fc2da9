/**
 * The Git service against real git and real temporary repositories (no mock of git): finding the repository of a
 * directory (and refusing what is not one), adding worktrees concurrently through one and two service instances,
 * waiting out lock files held by other processes, interruption, inspecting what a worktree holds, removing it, and
 * refs, branches and paths that must never reach git.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { GitError, InvalidInput, WorktreeHoldsWork } from "../../src/domain/Errors.js"
import { baseRefProblem, branchOf, type CommitId } from "../../src/domain/GitRef.js"
import { AgentId, TaskId } from "../../src/domain/Ids.js"
import { Git, gitEnvironment, gitLockPath, gitLockRetries } from "../../src/host/Git.js"
import { worktreePath } from "../../src/host/Workspace.js"
import { worktreesRoot } from "../../src/SpawnkitConfig.js"
import { SpawnkitConfig } from "../../src/SpawnkitConfig.js"
import { processesMatching, waitFor } from "../support/Harness.js"

const dirs: Array<string> = []
const fifos: Array<string> = []

afterEach(() => {
  // A filter still blocked on a fifo (if a test failed before its interruption) is let go before its directory goes.
  for (const fifo of fifos.splice(0)) {
    try {
      Fs.closeSync(Fs.openSync(fifo, Fs.constants.O_WRONLY | Fs.constants.O_NONBLOCK))
    } catch {
      // No reader: nothing blocked.
    }
  }
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

/** A temp directory (symbolic links resolved, as git prints paths), removed after the test. */
const tempDir = (prefix = "sk-git-") => {
  const dir = Fs.realpathSync(Fs.mkdtempSync(NodePath.join(Os.tmpdir(), prefix)))
  dirs.push(dir)
  return dir
}

const FIXTURE_ENV = {
  ...gitEnvironment(process.env),
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.com",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.com"
}

/** Run git for a fixture (not through the service); returns trimmed stdout, throws on failure. */
const git = (dir: string, ...args: ReadonlyArray<string>) =>
  execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", env: FIXTURE_ENV, stdio: ["ignore", "pipe", "pipe"] })
    .trim()

/** A repository with one commit on `main` (README.md, src/a.txt). */
const makeRepo = (parent = tempDir(), name = "repo") => {
  const repo = NodePath.join(parent, name)
  Fs.mkdirSync(NodePath.join(repo, "src"), { recursive: true })
  git(repo, "init", "-q", "-b", "main")
  Fs.writeFileSync(NodePath.join(repo, "README.md"), "hello\n")
  Fs.writeFileSync(NodePath.join(repo, "src", "a.txt"), "a\n")
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "first")
  return repo
}

const commitIn = (dir: string, file: string, text: string) => {
  Fs.writeFileSync(NodePath.join(dir, file), text)
  git(dir, "add", "--", file)
  git(dir, "commit", "-q", "-m", `add ${file}`)
}

const head = (repo: string) => git(repo, "rev-parse", "HEAD") as CommitId
const branches = (repo: string) =>
  git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split("\n").filter((b) => b !== "").sort()

/** Every `*.lock` file under a directory. */
const lockFiles = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => p.endsWith(".lock"))

/** Path → sha256 of every file of a working tree, outside `.git`. */
const workingFiles = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const p of Fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()) {
    const full = NodePath.join(dir, p)
    if (p === ".git" || p.startsWith(".git/") || !Fs.statSync(full).isFile()) continue
    out[p] = createHash("sha256").update(Fs.readFileSync(full)).digest("hex")
  }
  return out
}

/** Every path under a directory (to show that a refusal created nothing). */
const tree = (dir: string) => Fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()

const gitLayer = (home: string) => Git.layer.pipe(Layer.provide(SpawnkitConfig.layerWith({ home })))

/** A home and a Git service on it. */
const setup = () => {
  const home = tempDir("sk-git-home-")
  const layer = gitLayer(home)
  const run = <A, E>(effect: Effect.Effect<A, E, Git>) => Effect.runPromise(Effect.provide(effect, layer))
  const fail = <A, E>(effect: Effect.Effect<A, E, Git>) => run(Effect.flip(effect))
  const task = Schema.decodeUnknownSync(TaskId)("TASK-git-1")
  const pathOf = (agent: string) =>
    worktreePath(worktreesRoot({ home, worktreesDir: Option.none() }), task, Schema.decodeUnknownSync(AgentId)(agent))
  const branch = (agent: string) => branchOf(Schema.decodeUnknownSync(AgentId)(agent))
  return { home, layer, run, fail, pathOf, branch }
}

const retries = () => Effect.runSync(Metric.value(gitLockRetries)).count

describe("repository", () => {
  it("finds the root, HEAD and its ref from the root and from a subdirectory; a detached HEAD has no ref", async () => {
    const { run } = setup()
    const repo = makeRepo()
    const expected = { root: repo, head: head(repo), headRef: "refs/heads/main" }
    expect(await run(Git.use((g) => g.repository(repo)))).toEqual(expected)
    expect(await run(Git.use((g) => g.repository(NodePath.join(repo, "src"))))).toEqual(expected)
    git(repo, "checkout", "-q", "--detach")
    expect(await run(Git.use((g) => g.repository(repo)))).toEqual({ ...expected, headRef: undefined })
  })

  const refusals: ReadonlyArray<readonly [string, (parent: string) => string, string]> = [
    ["a directory outside any repository", (parent) => {
      const dir = NodePath.join(parent, "plain")
      Fs.mkdirSync(dir)
      return dir
    }, "is not a git repository; worktree isolation needs one (git init, or isolation none)"],
    ["a bare repository", (parent) => {
      const dir = NodePath.join(parent, "bare.git")
      execFileSync("git", ["init", "-q", "--bare", dir], { env: FIXTURE_ENV })
      return dir
    }, "is a bare repository"],
    ["a repository without a commit", (parent) => {
      const dir = NodePath.join(parent, "empty")
      execFileSync("git", ["init", "-q", dir], { env: FIXTURE_ENV })
      return dir
    }, "has no commit yet"],
    ["a .git directory", (parent) => NodePath.join(makeRepo(parent), ".git"), "inside a repository's .git directory"],
    ["a directory that does not exist", (parent) => NodePath.join(parent, "missing"), "does not exist"]
  ]

  it.each(refusals)("refuses %s with InvalidInput, creating nothing", async (_, make, reason) => {
    const { fail, home } = setup()
    const parent = tempDir()
    const dir = make(parent)
    const before = [tree(parent), tree(home)]
    const error = await fail(Git.use((g) => g.repository(dir)))
    expect(error).toBeInstanceOf(InvalidInput)
    expect(error).toMatchObject({ field: "working_directory" })
    expect((error as InvalidInput).reason).toContain(reason)
    expect(error.message).toContain("nothing was changed")
    expect([tree(parent), tree(home)]).toEqual(before)
  })

  it("refuses a relative path", async () => {
    const { fail } = setup()
    expect(await fail(Git.use((g) => g.repository("repo")))).toMatchObject({
      _tag: "InvalidInput",
      field: "working_directory"
    })
  })

  it.runIf(process.getuid?.() === 0)(
    "says what to do when git refuses a repository owned by another user",
    async () => {
      const { fail } = setup()
      const repo = makeRepo()
      execFileSync("chown", ["-R", "65534:65534", repo])
      const error = await fail(Git.use((g) => g.repository(repo)))
      expect(error).toMatchObject({ _tag: "InvalidInput", field: "working_directory" })
      expect((error as InvalidInput).reason).toContain("dubious ownership")
      expect((error as InvalidInput).reason).toContain(`git config --global --add safe.directory ${repo}`)
    }
  )
})

describe("resolveCommit", () => {
  it("resolves branches, tags, short and full ids and HEAD to full commit ids", async () => {
    const { run } = setup()
    const repo = makeRepo()
    const first = head(repo)
    git(repo, "tag", "-a", "-m", "v1", "v1.0.0")
    commitIn(repo, "b.txt", "b\n")
    const second = head(repo)
    const resolve = (ref: string) => run(Git.use((g) => g.resolveCommit(repo, ref)))
    expect(await resolve("main")).toBe(second)
    expect(await resolve("HEAD")).toBe(second)
    expect(await resolve("refs/heads/main")).toBe(second)
    expect(await resolve("v1.0.0")).toBe(first) // an annotated tag peels to its commit
    expect(await resolve(first)).toBe(first)
    expect(await resolve(first.slice(0, 8))).toBe(first)
  })

  it("refuses a ref that names no commit with InvalidInput naming base_ref", async () => {
    const { fail } = setup()
    const repo = makeRepo()
    const error = await fail(Git.use((g) => g.resolveCommit(repo, "no-such-branch")))
    expect(error).toMatchObject({ _tag: "InvalidInput", field: "base_ref" })
    expect((error as InvalidInput).reason).toContain("names no commit")
  })

  const hostile = ["-b", "--upload-pack=x", "--output=/tmp/x", "a..b", "main\n", "x\u0007", "@{-1}", "HEAD~1", "main^"]
    .concat(["refs/heads/.hidden", "x.lock", "ok/", "a b", "a".repeat(201), "", "@", "main:README.md"])

  it.each(hostile)("refuses %j before git runs; no branch is created", async (ref) => {
    const { fail } = setup()
    const repo = makeRepo()
    const before = branches(repo)
    const error = await fail(Git.use((g) => g.resolveCommit(repo, ref)))
    expect(error).toMatchObject({ _tag: "InvalidInput", field: "base_ref", reason: baseRefProblem(ref) })
    // In a directory that does not exist, git would have answered about the directory: validation came first.
    const missing = await fail(Git.use((g) => g.resolveCommit(NodePath.join(repo, "missing"), ref)))
    expect(missing).toMatchObject({ _tag: "InvalidInput", field: "base_ref" })
    expect(branches(repo)).toEqual(before)
  })
})

describe("addWorktree", () => {
  it("adds 8 worktrees concurrently into one repository; the main checkout is untouched and no lock is left", async () => {
    const { run, pathOf, branch } = setup()
    const repo = makeRepo()
    const base = head(repo)
    const files = workingFiles(repo)
    const agents = Array.from({ length: 8 }, (_, i) => `agent-${i}`)
    await run(
      Git.use((g) =>
        Effect.forEach(agents, (a) => g.addWorktree(repo, pathOf(a), branch(a), base), { concurrency: "unbounded" })
      )
    )
    expect(branches(repo)).toEqual(["main", ...agents.map((a) => `spawnkit/${a}`)].sort())
    for (const a of agents) {
      expect(git(pathOf(a), "rev-parse", "HEAD")).toBe(base)
      expect(git(pathOf(a), "symbolic-ref", "HEAD")).toBe(`refs/heads/spawnkit/${a}`)
      expect(workingFiles(pathOf(a))).toEqual(files)
    }
    const listed = await run(Git.use((g) => g.listWorktrees(repo)))
    expect(listed[0]?.path).toBe(repo)
    expect(listed.slice(1).map((w) => w.path).sort()).toEqual(agents.map(pathOf).sort())
    expect(head(repo)).toBe(base)
    expect(git(repo, "symbolic-ref", "HEAD")).toBe("refs/heads/main")
    expect(git(repo, "status", "--porcelain")).toBe("")
    expect(workingFiles(repo)).toEqual(files)
    expect(lockFiles(NodePath.join(repo, ".git"))).toEqual([])
  })

  it("two service instances on one home (as two processes) add concurrently into one repository", async () => {
    const { home, pathOf, branch } = setup()
    const repo = makeRepo()
    const base = head(repo)
    const add = (layer: ReturnType<typeof gitLayer>, agents: ReadonlyArray<string>) =>
      Effect.provide(
        Git.use((g) =>
          Effect.forEach(agents, (a) => g.addWorktree(repo, pathOf(a), branch(a), base), { concurrency: "unbounded" })
        ),
        layer
      )
    const first = ["one-0", "one-1", "one-2", "one-3"]
    const second = ["two-0", "two-1", "two-2", "two-3"]
    await Effect.runPromise(
      Effect.all([add(gitLayer(home), first), add(gitLayer(home), second)], { concurrency: "unbounded" })
    )
    expect(branches(repo)).toEqual(["main", ...[...first, ...second].map((a) => `spawnkit/${a}`)].sort())
    expect(lockFiles(NodePath.join(repo, ".git"))).toEqual([])
    expect(Fs.existsSync(gitLockPath(home, repo))).toBe(true)
    expect(Fs.statSync(NodePath.dirname(gitLockPath(home, repo))).mode & 0o777).toBe(0o700)
  })

  it("waits out a ref lock held by another process, then succeeds", async () => {
    const { layer, run, pathOf, branch } = setup()
    const repo = makeRepo()
    const foreign = NodePath.join(repo, ".git", "refs", "heads", "spawnkit", "held.lock")
    Fs.mkdirSync(NodePath.dirname(foreign), { recursive: true })
    Fs.writeFileSync(foreign, "")
    const before = retries()
    const fiber = Effect.runFork(
      Effect.provide(Git.use((g) => g.addWorktree(repo, pathOf("held"), branch("held"), head(repo))), layer)
    )
    await waitFor("a retry on the held ref lock", () => retries() > before)
    Fs.rmSync(foreign)
    await Effect.runPromise(Fiber.join(fiber))
    expect(branches(repo)).toContain("spawnkit/held")
    expect(git(pathOf("held"), "rev-parse", "HEAD")).toBe(head(repo))
    expect(await run(Git.use((g) => g.inspect(repo, pathOf("held"), branch("held"), head(repo), "main"))))
      .toMatchObject(
        { registered: true, holdsWork: false }
      )
  })

  it("gives up on a lock that stays held after about 5 s, with git's words and nothing left behind", async () => {
    const { fail, pathOf, branch } = setup()
    const repo = makeRepo()
    const foreign = NodePath.join(repo, ".git", "refs", "heads", "spawnkit", "stuck.lock")
    Fs.mkdirSync(NodePath.dirname(foreign), { recursive: true })
    Fs.writeFileSync(foreign, "")
    const error = await fail(Git.use((g) => g.addWorktree(repo, pathOf("stuck"), branch("stuck"), head(repo))))
    expect(error).toBeInstanceOf(GitError)
    expect(error).toMatchObject({ repo, exitCode: 255 })
    expect(error.message).toContain(`git failed to add worktree ${pathOf("stuck")}`)
    expect(error.message).toContain("File exists")
    expect(error.message).toContain("changed nothing else")
    expect(branches(repo)).toEqual(["main"])
    expect(Fs.existsSync(pathOf("stuck"))).toBe(false)
  })

  it("fails at once, without retrying, on a failure that is not a held lock", async () => {
    const { fail, pathOf, branch } = setup()
    const repo = makeRepo()
    git(repo, "branch", "spawnkit") // a branch `spawnkit` blocks every `spawnkit/…`
    const before = retries()
    const error = await fail(Git.use((g) => g.addWorktree(repo, pathOf("x"), branch("x"), head(repo))))
    expect(error).toBeInstanceOf(GitError)
    expect((error as GitError).stderr).toContain("exists; cannot create")
    expect(retries()).toBe(before)
    expect(branches(repo)).toEqual(["main", "spawnkit"])
  })

  it("refuses a path or a branch that exists, deleting nothing", async () => {
    const { fail, pathOf, branch } = setup()
    const repo = makeRepo()
    const base = head(repo)
    Fs.mkdirSync(pathOf("taken"), { recursive: true })
    Fs.writeFileSync(NodePath.join(pathOf("taken"), "keep.txt"), "mine\n")
    const pathError = await fail(Git.use((g) => g.addWorktree(repo, pathOf("taken"), branch("taken"), base)))
    expect(pathError).toMatchObject({ _tag: "InvalidInput", field: "worktree_path" })
    expect(Fs.readFileSync(NodePath.join(pathOf("taken"), "keep.txt"), "utf8")).toBe("mine\n")
    expect(branches(repo)).toEqual(["main"])

    commitIn(repo, "later.txt", "later\n")
    git(repo, "branch", "spawnkit/old", "HEAD")
    const branchError = await fail(Git.use((g) => g.addWorktree(repo, pathOf("old"), branch("old"), base)))
    expect(branchError).toMatchObject({ _tag: "InvalidInput", field: "branch" })
    expect(git(repo, "rev-parse", "spawnkit/old")).toBe(head(repo))
    expect(Fs.existsSync(pathOf("old"))).toBe(false)
  })

  it("refuses a branch that is not spawnkit's, a base that is not a commit id and a relative path", async () => {
    const { fail, pathOf, branch } = setup()
    const repo = makeRepo()
    const base = head(repo)
    for (const bad of ["main", "spawnkit/../main", "-b", "spawnkit/a/b"]) {
      expect(await fail(Git.use((g) => g.addWorktree(repo, pathOf("x"), bad, base)))).toMatchObject({
        _tag: "InvalidInput",
        field: "branch"
      })
    }
    for (const bad of ["main", base.slice(0, 7), `--${base.slice(2)}`]) {
      expect(await fail(Git.use((g) => g.addWorktree(repo, pathOf("x"), branch("x"), bad as CommitId))))
        .toMatchObject({ _tag: "InvalidInput", field: "base" })
    }
    expect(await fail(Git.use((g) => g.addWorktree(repo, "rel/x", branch("x"), base)))).toMatchObject({
      _tag: "InvalidInput",
      field: "worktree_path"
    })
    expect(branches(repo)).toEqual(["main"])
  })

  it("an interrupted add ends git and its children and leaves no worktree, branch or lock", async () => {
    const { layer, run, pathOf, branch } = setup()
    const parent = tempDir()
    const repo = makeRepo(parent)
    Fs.writeFileSync(NodePath.join(repo, ".gitattributes"), "*.txt filter=slow\n")
    commitIn(repo, ".gitattributes", "*.txt filter=slow\n")
    // A checkout filter that blocks until the fifo is opened for writing: git is stuck mid-add until interrupted.
    const fifo = NodePath.join(parent, "gate.fifo")
    execFileSync("mkfifo", [fifo])
    fifos.push(fifo)
    git(repo, "config", "filter.slow.smudge", `cat ${fifo} >/dev/null; cat`)
    const fiber = Effect.runFork(
      Effect.provide(Git.use((g) => g.addWorktree(repo, pathOf("slow"), branch("slow"), head(repo))), layer)
    )
    await waitFor("the checkout filter blocked on the fifo", () => processesMatching(fifo).length > 0)
    const exit = await Effect.runPromise(Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber))))
    expect(Exit.hasInterrupts(exit)).toBe(true)
    expect(processesMatching(parent)).toEqual([])
    expect(branches(repo)).toEqual(["main"])
    expect(Fs.existsSync(pathOf("slow"))).toBe(false)
    expect((await run(Git.use((g) => g.listWorktrees(repo)))).map((w) => w.path)).toEqual([repo])
    expect(lockFiles(NodePath.join(repo, ".git"))).toEqual([])
  })
})

describe("inspect", () => {
  const added = async () => {
    const env = setup()
    const repo = makeRepo()
    const base = head(repo)
    const path = env.pathOf("w")
    await env.run(Git.use((g) => g.addWorktree(repo, path, env.branch("w"), base)))
    /** With the base commit and `main` as the base ref, or with the ones given (undefined included). */
    const inspect = (...given: [] | [CommitId | undefined, string | undefined]) => {
      const [b, baseRef] = given.length === 0 ? [base, "main"] : given
      return env.run(Git.use((g) => g.inspect(repo, path, env.branch("w"), b, baseRef)))
    }
    return { ...env, repo, base, path, inspect }
  }

  it("a clean worktree holds no work", async () => {
    const { inspect } = await added()
    expect(await inspect()).toEqual({
      registered: true,
      exists: true,
      branchExists: true,
      dirty: false,
      ahead: 0,
      unmerged: 0,
      behind: 0,
      holdsWork: false
    })
  })

  it("an untracked file makes it dirty", async () => {
    const { inspect, path } = await added()
    Fs.mkdirSync(NodePath.join(path, "new"))
    Fs.writeFileSync(NodePath.join(path, "new", "file.txt"), "x\n")
    expect(await inspect()).toMatchObject({ dirty: true, ahead: 0, holdsWork: true })
  })

  it("a commit in the worktree is ahead, with a base and without one", async () => {
    const { inspect, path } = await added()
    commitIn(path, "work.txt", "work\n")
    expect(await inspect()).toMatchObject({ dirty: false, ahead: 1, behind: 0, unmerged: 1, holdsWork: true })
    expect(await inspect(undefined, undefined)).toMatchObject({ ahead: 1, behind: undefined, holdsWork: true })
  })

  it("commits held by another ref are not work a removal loses; a detached HEAD's commits are", async () => {
    const { inspect, path, repo } = await added()
    commitIn(path, "work.txt", "work\n")
    git(repo, "branch", "kept", "spawnkit/w")
    expect(await inspect(undefined, undefined)).toMatchObject({ ahead: 0, holdsWork: false })
    // With its base: still a commit ahead of it, but merged (held by another branch), so no work a removal loses.
    expect(await inspect()).toMatchObject({ ahead: 1, unmerged: 0, holdsWork: false })
    git(path, "checkout", "-q", "--detach")
    commitIn(path, "detached.txt", "d\n")
    expect(await inspect(undefined, undefined)).toMatchObject({ ahead: 1, holdsWork: true })
  })

  it("a commit on main after the add is behind", async () => {
    const { inspect, repo, base } = await added()
    commitIn(repo, "main.txt", "main\n")
    commitIn(repo, "main2.txt", "main\n")
    expect(await inspect()).toMatchObject({ ahead: 0, behind: 2, holdsWork: false })
    expect(await inspect(base, "no-such-ref")).toMatchObject({ behind: undefined })
  })

  it("a worktree and branch that are gone are a state, not an error", async () => {
    const { inspect, path, repo } = await added()
    git(repo, "worktree", "remove", "--", path)
    git(repo, "branch", "-D", "spawnkit/w")
    expect(await inspect()).toEqual({
      registered: false,
      exists: false,
      branchExists: false,
      dirty: false,
      ahead: 0,
      unmerged: 0,
      behind: undefined,
      holdsWork: false
    })
  })

  it("refuses a hostile base ref", async () => {
    const { fail, repo, path, branch, base } = await added()
    expect(await fail(Git.use((g) => g.inspect(repo, path, branch("w"), base, "--upload-pack=x")))).toMatchObject({
      _tag: "InvalidInput",
      field: "base_ref"
    })
  })
})

describe("removeWorktree", () => {
  const added = async (agent = "w") => {
    const env = setup()
    const repo = makeRepo()
    const path = env.pathOf(agent)
    await env.run(Git.use((g) => g.addWorktree(repo, path, env.branch(agent), head(repo))))
    const remove = (force: boolean) =>
      env.run(Git.use((g) => g.removeWorktree(repo, path, env.branch(agent), { force })))
    const refuse = (force: boolean) =>
      env.fail(Git.use((g) => g.removeWorktree(repo, path, env.branch(agent), { force })))
    return { ...env, repo, path, remove, refuse }
  }

  it("removes a clean worktree with its branch; a second call finds nothing to do", async () => {
    const { remove, repo, path } = await added()
    expect(await remove(false)).toEqual({ worktreeRemoved: true, branchDeleted: true })
    expect(Fs.existsSync(path)).toBe(false)
    expect(branches(repo)).toEqual(["main"])
    expect(git(repo, "worktree", "list", "--porcelain")).not.toContain(path)
    expect(await remove(false)).toEqual({ worktreeRemoved: false, branchDeleted: false })
    expect(await remove(true)).toEqual({ worktreeRemoved: false, branchDeleted: false })
    expect(lockFiles(NodePath.join(repo, ".git"))).toEqual([])
  })

  it("refuses a dirty worktree without force (nothing removed) and removes it with force", async () => {
    const { remove, refuse, repo, path } = await added()
    Fs.writeFileSync(NodePath.join(path, "draft.txt"), "draft\n")
    const error = await refuse(false)
    expect(error).toBeInstanceOf(WorktreeHoldsWork)
    expect(error).toMatchObject({ path, branch: "spawnkit/w", dirty: true, ahead: 0 })
    expect(error.message).toContain("nothing was removed")
    expect(Fs.readFileSync(NodePath.join(path, "draft.txt"), "utf8")).toBe("draft\n")
    expect(branches(repo)).toContain("spawnkit/w")
    expect(await remove(true)).toEqual({ worktreeRemoved: true, branchDeleted: true })
    expect(Fs.existsSync(path)).toBe(false)
    expect(branches(repo)).toEqual(["main"])
  })

  it("refuses a worktree whose branch has commits nothing else holds, and removes it with force", async () => {
    const { remove, refuse, repo, path } = await added()
    commitIn(path, "work.txt", "work\n")
    const tip = git(path, "rev-parse", "HEAD")
    expect(await refuse(false)).toMatchObject({ _tag: "WorktreeHoldsWork", dirty: false, ahead: 1 })
    expect(git(repo, "rev-parse", "spawnkit/w")).toBe(tip)
    expect(await remove(true)).toEqual({ worktreeRemoved: true, branchDeleted: true })
    expect(branches(repo)).toEqual(["main"])
  })

  it("a locked worktree: git's refusal without force, removed with force", async () => {
    const { remove, refuse, repo, path } = await added()
    git(repo, "worktree", "lock", "--reason", "initializing", "--", path)
    const listed = await Effect.runPromise(
      Effect.provide(Git.use((g) => g.listWorktrees(repo)), gitLayer(tempDir("sk-git-home-")))
    )
    expect(listed.find((w) => w.path === path)).toMatchObject({ locked: "initializing" })
    const error = await refuse(false)
    expect(error).toBeInstanceOf(GitError)
    expect((error as GitError).stderr).toContain("cannot remove a locked working tree")
    expect(Fs.existsSync(path)).toBe(true)
    expect(await remove(true)).toEqual({ worktreeRemoved: true, branchDeleted: true })
    expect(Fs.existsSync(path)).toBe(false)
    expect(branches(repo)).toEqual(["main"])
  })

  it("removes a worktree whose directory is already gone, and waits out a held packed-refs.lock", async () => {
    const { remove, repo, path } = await added()
    Fs.rmSync(path, { recursive: true, force: true })
    const foreign = NodePath.join(repo, ".git", "packed-refs.lock")
    Fs.writeFileSync(foreign, "")
    const before = retries()
    const removal = remove(false)
    await waitFor("a retry on the held packed-refs.lock", () => retries() > before)
    Fs.rmSync(foreign)
    expect(await removal).toEqual({ worktreeRemoved: true, branchDeleted: true })
    expect(branches(repo)).toEqual(["main"])
    expect(git(repo, "worktree", "list", "--porcelain")).not.toContain(path)
  })

  it("never deletes a branch that is not spawnkit's", async () => {
    const { fail, repo, path } = await added()
    for (const bad of ["main", "spawnkit", "refs/heads/main", "-D"]) {
      expect(await fail(Git.use((g) => g.removeWorktree(repo, path, bad, { force: true })))).toMatchObject({
        _tag: "InvalidInput",
        field: "branch"
      })
    }
    expect(branches(repo)).toEqual(["main", "spawnkit/w"])
    expect(Fs.existsSync(path)).toBe(true)
  })
})

describe("listWorktrees and prune", () => {
  it("lists a worktree whose path holds a space, with its state; prune forgets one whose directory is gone", async () => {
    const { run, home, branch } = setup()
    const repo = makeRepo(tempDir("sk git repo "))
    const base = head(repo)
    const spaced = NodePath.join(home, "with space", "a b")
    const gone = NodePath.join(home, "gone")
    await run(Git.use((g) =>
      Effect.all([
        g.addWorktree(repo, spaced, branch("spaced"), base),
        g.addWorktree(repo, gone, branch("gone"), base)
      ])
    ))
    git(repo, "worktree", "lock", "--", spaced)
    Fs.rmSync(gone, { recursive: true })
    const listed = await run(Git.use((g) => g.listWorktrees(repo)))
    // The main worktree first; the others in the order git reads its worktrees directory.
    expect(listed[0]).toEqual({ path: repo, head: base, branch: "refs/heads/main", bare: false, detached: false })
    expect([...listed.slice(1)].sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      {
        path: gone,
        head: base,
        branch: "refs/heads/spawnkit/gone",
        bare: false,
        detached: false,
        prunable: "gitdir file points to non-existent location"
      },
      { path: spaced, head: base, branch: "refs/heads/spawnkit/spaced", bare: false, detached: false, locked: "" }
    ])
    await run(Git.use((g) => g.prune(repo)))
    expect((await run(Git.use((g) => g.listWorktrees(repo)))).map((w) => w.path)).toEqual([repo, spaced])
    // prune forgets the worktree, not its branch.
    expect(branches(repo)).toContain("spawnkit/gone")
  })
})
