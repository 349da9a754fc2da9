/**
 * Per-agent git worktrees (isolation worktree) against real git, real tmux and the file registry, no mocks:
 *
 * - 8 agents spawned at once into one repository each work on a worktree and a branch of their own; the main checkout
 *   is left as it was and no git lock file is left behind;
 * - a fault at any step of a spawn, or a SIGKILL mid-spawn followed by one reconcile pass, leaves no worktree, branch,
 *   git metadata or lock file behind;
 * - once agents end, the worktrees holding no work go with their branches and the others are kept, listed, never
 *   pruned, and removed only by force; a running agent's worktree is never removed;
 * - a child of an isolated agent starts from its parent's branch;
 * - hostile base refs, unusable working directories and hand-edited records are refused with typed errors before git
 *   runs, and nothing is created.
 *
 * The home (and so the worktrees root) is beside the repository in the test's directory, never inside it, so the main
 * checkout's status is the repository's alone. Agents that must outlive their spawn's commit wait for a gate file.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  CLI,
  cli,
  fileTree,
  liveSessions,
  runIn,
  stdoutJson,
  type TestEnv,
  testEnvs,
  waitFor
} from "../support/Harness.js"

const newEnv = testEnvs()

// ---------------------------------------------------------------------------------------------------------------
// git and the file system as the tests observe them
// ---------------------------------------------------------------------------------------------------------------

/** The test process's environment without GIT_* variables (a caller's GIT_DIR would redirect every call). */
const gitEnv = () => Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("GIT_")))

/** Run git in `dir` and return its trimmed stdout; throws when git fails. */
const git = (dir: string, ...args: ReadonlyArray<string>): string =>
  execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", env: gitEnv() }).trim()

/** A repository with one commit on `main`, whose config lets agents commit (worktrees share it). */
const makeRepo = (env: TestEnv, name = "repo"): string => {
  const dir = NodePath.join(env.dir, name)
  Fs.mkdirSync(dir)
  git(dir, "init", "-q", "-b", "main")
  git(dir, "config", "user.email", "agent@example.invalid")
  git(dir, "config", "user.name", "agent")
  git(dir, "config", "commit.gpgsign", "false")
  Fs.writeFileSync(NodePath.join(dir, "README.md"), "# project\n")
  git(dir, "add", "README.md")
  git(dir, "commit", "-q", "-m", "initial")
  return Fs.realpathSync(dir)
}

const worktreesRoot = (env: TestEnv) => NodePath.join(env.home, ".spawnkit-worktrees")
const worktreeDir = (env: TestEnv, taskId: string, id: string) => NodePath.join(worktreesRoot(env), taskId, id)

/** The worktree directories of a task under the worktrees root, sorted. */
const worktreeDirsOf = (env: TestEnv, taskId: string): Array<string> => {
  const dir = NodePath.join(worktreesRoot(env), taskId)
  return Fs.existsSync(dir) ? Fs.readdirSync(dir).sort() : []
}

/** Every entry under the worktrees root (none when it does not exist). */
const anythingUnderWorktreesRoot = (env: TestEnv): Array<string> =>
  Fs.existsSync(worktreesRoot(env)) ? Object.keys(fileTree(worktreesRoot(env))) : []

/** The branches under spawnkit/, sorted. */
const spawnkitBranches = (repo: string): Array<string> =>
  git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/spawnkit/").split("\n").filter((l) => l !== "")
    .sort()

/** `git worktree list`: each worktree's path and branch, the main one first. */
const registeredWorktrees = (repo: string): Array<{ path: string; branch: string | undefined }> =>
  git(repo, "worktree", "list", "--porcelain").split("\n\n").filter((b) => b.trim() !== "").map((block) => {
    const lines = block.split("\n")
    return {
      path: lines.find((l) => l.startsWith("worktree "))!.slice("worktree ".length),
      branch: lines.find((l) => l.startsWith("branch "))?.slice("branch ".length)
    }
  })

/** git's metadata of linked worktrees (`.git/worktrees/<name>`). */
const gitWorktreeEntries = (repo: string): Array<string> => {
  const dir = NodePath.join(repo, ".git", "worktrees")
  return Fs.existsSync(dir) ? Fs.readdirSync(dir).sort() : []
}

/** Every `*.lock` file under the repository's .git. */
const lockFiles = (repo: string): Array<string> =>
  Object.keys(fileTree(NodePath.join(repo, ".git"))).filter((p) => p.endsWith(".lock"))

/** The main checkout's files (outside .git) with digests of their contents. */
const checkoutFiles = (repo: string) => {
  const gitDir = NodePath.join(repo, ".git")
  return Object.fromEntries(
    Object.entries(fileTree(repo)).filter(([p]) => p !== gitDir && !p.startsWith(gitDir + NodePath.sep))
  )
}

/** What must not change in the main checkout: HEAD's commit and branch, its files, its status. */
const mainCheckout = (repo: string) => ({
  head: git(repo, "rev-parse", "HEAD"),
  branch: git(repo, "symbolic-ref", "HEAD"),
  files: checkoutFiles(repo),
  status: git(repo, "status", "--porcelain", "--untracked-files=all")
})

/** The task directories in a home. */
const taskDirs = (env: TestEnv) => Fs.readdirSync(env.home).filter((n) => n.startsWith("TASK-"))

/**
 * Nothing of any agent's worktree is left: directory, branch, registration, git metadata, lock file. The main checkout
 * is the only worktree, on `main` (or on a detached HEAD).
 */
const expectNoWorktree = (env: TestEnv, repo: string, taskId: string, detached = false) => {
  expect(worktreeDirsOf(env, taskId)).toEqual([])
  expect(spawnkitBranches(repo)).toEqual([])
  expect(registeredWorktrees(repo)).toEqual([{ path: repo, branch: detached ? undefined : "refs/heads/main" }])
  expect(gitWorktreeEntries(repo)).toEqual([])
  expect(lockFiles(repo)).toEqual([])
}

// ---------------------------------------------------------------------------------------------------------------
// spawnkit as the tests drive it
// ---------------------------------------------------------------------------------------------------------------

type Faults = Layer.Layer<Spawnkit.FaultInjection, never, Spawnkit.SpawnkitConfig>

/** Run an effect with agents started by `command` (an argv template; `sh -c '…'` is one word). */
const runWith = <A, E>(env: TestEnv, command: string, effect: Effect.Effect<A, E, Spawnkit.Services>) =>
  Effect.runPromise(effect.pipe(Effect.provide(env.layer({ agentCommand: Option.some(command) }))))

/** The typed failure of an effect; rejects (failing the test) when it succeeds or dies. */
const errorOf = <A, E>(env: TestEnv, effect: Effect.Effect<A, E, Spawnkit.Services>, faults?: Faults) =>
  Effect.runPromise(Effect.flip(effect).pipe(Effect.provide(env.layer({}, faults))))

/** A task whose agents get worktrees of `repo`. */
const createTask = (env: TestEnv, repo: string, extra: Record<string, unknown> = {}) =>
  runIn(
    env,
    Spawnkit.createTask({
      description: "worktrees",
      working_directory: repo,
      isolation: "worktree",
      max_concurrent: 10,
      ...extra
    })
  ).then((t) => t.task_id as string)

const agentsOf = (env: TestEnv, taskId: string): Array<any> => env.readTask(taskId).agents
const recordOf = (env: TestEnv, taskId: string, id: string) => agentsOf(env, taskId).find((a) => a.id === id)

/** The parts of a registry a refused or failed spawn must leave as they were. */
const snapshot = (env: TestEnv, taskId: string) => {
  const r = env.readTask(taskId)
  return {
    agents: r.agents,
    active_count: r.active_count,
    total_spawned: r.total_spawned,
    agent_hierarchy: r.agent_hierarchy
  }
}

/** Run the CLI without waiting for it (concurrent spawns): its exit status and output once it has exited. */
const cliAsync = (env: TestEnv, args: ReadonlyArray<string>, extraEnv: Record<string, string>) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env.env, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.once("error", reject)
    child.once("close", (status) => resolve({ status, stdout, stderr }))
  })

/** A shell loop that waits until `file` exists (an agent that must outlive its spawn's commit). */
const waitForFile = (file: string) => `while [ ! -e ${file} ]; do sleep 0.05; done`

// ---------------------------------------------------------------------------------------------------------------

describe("isolation worktree", () => {
  it("8 agents spawned at once (4 in one process, 4 CLI processes) each commit on a worktree and branch of their own; the main checkout is untouched", async () => {
    const env = newEnv()
    const repo = makeRepo(env)
    const done = NodePath.join(env.dir, "done")
    Fs.mkdirSync(done)
    const before = mainCheckout(repo)
    expect(before.status).toBe("")
    const taskId = await createTask(env, repo)
    // Each agent commits a file named after itself in its working directory, says so outside the repository, and
    // lives on.
    const command = "sh -c 'echo {agent_id} > {agent_id}.txt && git add {agent_id}.txt && " +
      `git commit -q -m {agent_id} && touch ${done}/{agent_id}; exec sleep 600'`
    // Concurrent spawns in one process (the repository's in-process lock) and in four processes (its file lock).
    const [inProcess, ...processes] = await Promise.all([
      runWith(
        env,
        command,
        Effect.all(
          Array.from({ length: 4 }, (_, i) => Spawnkit.spawn({ taskId, agentType: `api${i}`, prompt: "commit" })),
          { concurrency: 4 }
        )
      ),
      ...Array.from(
        { length: 4 },
        (_, i) =>
          cliAsync(env, ["spawn", "--task", taskId, "--type", `cli${i}`, "--prompt", "commit", "--json"], {
            SPAWNKIT_AGENT_COMMAND: command
          })
      )
    ])
    for (const p of processes) expect(p.status, p.stdout + p.stderr).toBe(0)
    const ids = [...inProcess.map((a) => a.agent_id), ...processes.map((p) => JSON.parse(p.stdout).agent_id)].sort()
    expect(new Set(ids).size).toBe(8)
    await waitFor("every agent committed", () => Fs.readdirSync(done).length === 8)

    expect(spawnkitBranches(repo)).toEqual(ids.map((id) => `spawnkit/${id}`))
    const listed = registeredWorktrees(repo)
    expect(listed[0]).toEqual({ path: repo, branch: "refs/heads/main" })
    expect(listed.slice(1).sort((a, b) => a.path.localeCompare(b.path))).toEqual(
      ids.map((id) => ({
        path: Fs.realpathSync(worktreeDir(env, taskId, id)),
        branch: `refs/heads/spawnkit/${id}`
      }))
    )
    expect(worktreeDirsOf(env, taskId)).toEqual(ids)
    for (const id of ids) {
      expect(recordOf(env, taskId, id)).toMatchObject({
        status: "running",
        worktree: { id, state: "active", base_commit: before.head, base_ref: "main" }
      })
      const tip = git(repo, "rev-parse", `refs/heads/spawnkit/${id}`)
      // One commit on the base, holding the agent's file and nothing of the others'.
      expect(git(repo, "rev-parse", `${tip}^`)).toBe(before.head)
      expect(git(repo, "log", "--format=%s", `${before.head}..${tip}`)).toBe(id)
      expect(git(repo, "ls-tree", "--name-only", tip).split("\n").sort()).toEqual(["README.md", `${id}.txt`].sort())
      // On its own branch only.
      expect(git(repo, "branch", "--contains", tip, "--format=%(refname)")).toBe(`refs/heads/spawnkit/${id}`)
      // The agent ran in its worktree: its file is there, committed, and nothing else changed.
      const dir = worktreeDir(env, taskId, id)
      expect(Fs.readFileSync(NodePath.join(dir, `${id}.txt`), "utf8")).toBe(`${id}\n`)
      expect(git(dir, "status", "--porcelain", "--untracked-files=all")).toBe("")
    }
    expect(mainCheckout(repo)).toEqual(before)
    expect(lockFiles(repo)).toEqual([])
    expect(liveSessions(env.socket)).toHaveLength(8)
  })

  describe("a fault at any spawn step leaves no worktree, branch, git metadata or lock file", () => {
    for (const step of Spawnkit.SPAWN_FAULT_STEPS.filter((s) => s !== "after-commit")) {
      it(`fail at ${step}`, async () => {
        const env = newEnv()
        const repo = makeRepo(env)
        const taskId = await createTask(env, repo)
        const before = snapshot(env, taskId)
        const head = mainCheckout(repo)
        // What the spawn had made when the fault fired: from after-worktree on, its worktree and branch.
        let atFault: { dirs: Array<string>; branches: Array<string> } | undefined
        const faults = Spawnkit.FaultInjection.layer((s) =>
          s === step
            ? Effect.suspend(() => {
              atFault = { dirs: worktreeDirsOf(env, taskId), branches: spawnkitBranches(repo) }
              return Effect.fail(new Spawnkit.InjectedFault({ step: s }))
            })
            : Effect.void
        )
        const error = await errorOf(env, Spawnkit.spawn({ taskId, agentType: "victim", prompt: "p" }), faults)
        expect(error).toMatchObject({ _tag: "InjectedFault", step })
        const made = Spawnkit.SPAWN_FAULT_STEPS.indexOf(step) >= Spawnkit.SPAWN_FAULT_STEPS.indexOf("after-worktree")
        expect(atFault?.dirs).toHaveLength(made ? 1 : 0)
        expect(atFault?.branches).toHaveLength(made ? 1 : 0)

        expectNoWorktree(env, repo, taskId)
        expect(snapshot(env, taskId)).toEqual(before)
        expect(liveSessions(env.socket)).toEqual([])
        expect(mainCheckout(repo)).toEqual(head)

        // The next spawn gets a worktree as usual.
        const next = await runIn(env, Spawnkit.spawn({ taskId, agentType: "next", prompt: "p" }))
        expect(spawnkitBranches(repo)).toEqual([`spawnkit/${next.agent_id}`])
        expect(worktreeDirsOf(env, taskId)).toEqual([next.agent_id])
      })
    }
  })

  describe("a spawn SIGKILLed mid-way: one reconcile pass removes its reservation and its worktree", () => {
    for (const step of ["after-worktree", "before-session", "after-session"] as const) {
      it(`killed at ${step}`, async () => {
        const env = newEnv()
        const repo = makeRepo(env)
        const taskId = await createTask(env, repo)
        const out = cli(env, ["spawn", "--task", taskId, "--type", "doomed", "--prompt", "p", "--json"], {
          SPAWNKIT_FAULT: `${step}:kill`
        })
        expect(out.signal).toBe("SIGKILL")
        // Left behind: a reservation whose owner is dead, its worktree and branch (and, after the session, its agent).
        const [reserved] = agentsOf(env, taskId)
        expect(reserved).toMatchObject({ status: "reserved" })
        expect(worktreeDirsOf(env, taskId)).toEqual([reserved.id])
        expect(spawnkitBranches(repo)).toEqual([`spawnkit/${reserved.id}`])
        expect(gitWorktreeEntries(repo)).toEqual([reserved.id])
        expect(liveSessions(env.socket)).toHaveLength(step === "after-session" ? 1 : 0)

        const first = await runIn(env, Spawnkit.reconcile())
        expect(first.repairs).toMatchObject([
          { kind: "rolled_back_reservation", task_id: taskId, agent_id: reserved.id },
          { kind: "removed_worktree", task_id: taskId, agent_id: reserved.id }
        ])
        expect(first.repairs).toHaveLength(2)
        expect(first.worktrees_kept).toEqual([])
        expect(first.partial).toBe(false)
        expectNoWorktree(env, repo, taskId)
        expect(agentsOf(env, taskId)).toEqual([])
        expect(liveSessions(env.socket)).toEqual([])

        const second = await runIn(env, Spawnkit.reconcile())
        expect(second.repairs).toEqual([])
        expect(second.worktrees_kept).toEqual([])
      })
    }
  })

  it("ended agents: clean worktrees go with their branches; ones holding work are kept, listed, never pruned, removed only by force", async () => {
    const env = newEnv()
    const repo = makeRepo(env)
    const taskId = await createTask(env, repo)
    const gate = NodePath.join(env.dir, "gate")
    let n = 0
    const spawnAs = (type: string, then: string) =>
      runWith(
        env,
        `sh -c '${waitForFile(gate)}${then}'`,
        Spawnkit.spawn({ taskId, agentType: type, prompt: `${type} ${++n}` })
      )
        .then((a) => a.agent_id as string)
    const idle1 = await spawnAs("idle", "")
    const idle2 = await spawnAs("idle", "")
    const committer = await spawnAs("committer", "; echo work > work.txt && git add work.txt && git commit -q -m work")
    const drafter = await spawnAs("drafter", "; echo draft > draft.txt")
    const all = [idle1, idle2, committer, drafter].sort()
    expect(worktreeDirsOf(env, taskId)).toEqual(all)

    // While they run, their worktrees are theirs: removal is refused, forced or not, and prune leaves them.
    for (const force of [[], ["--force"]]) {
      const inUse = cli(env, ["worktree", "remove", "--task", taskId, "--agent", idle1, ...force, "--json"])
      expect(inUse.status).not.toBe(0)
      expect(stdoutJson(inUse).error).toMatchObject({ tag: "WorktreeInUse" })
    }
    const early = cli(env, ["worktree", "prune", "--json"])
    expect(early.status).toBe(0)
    expect(stdoutJson(early)).toEqual({ outcomes: [], failures: [] })
    expect(worktreeDirsOf(env, taskId)).toEqual(all)
    expect(spawnkitBranches(repo)).toEqual(all.map((id) => `spawnkit/${id}`))

    Fs.writeFileSync(gate, "")
    await waitFor("all four ended and their worktrees were settled", () => {
      const agents = agentsOf(env, taskId)
      return agents.length === 4 && agents.every((a) => a.status === "completed" && a.worktree.state !== "active")
    })
    for (const id of [idle1, idle2]) expect(recordOf(env, taskId, id).worktree.state).toBe("removed")
    for (const id of [committer, drafter]) expect(recordOf(env, taskId, id).worktree.state).toBe("kept")
    const kept = [committer, drafter].sort()
    const expectKept = () => {
      expect(worktreeDirsOf(env, taskId)).toEqual(kept)
      expect(spawnkitBranches(repo)).toEqual(kept.map((id) => `spawnkit/${id}`))
      expect(gitWorktreeEntries(repo)).toEqual(kept)
      expect(git(repo, "log", "--format=%s", `main..spawnkit/${committer}`)).toBe("work")
      expect(Fs.readFileSync(NodePath.join(worktreeDir(env, taskId, drafter), "draft.txt"), "utf8")).toBe("draft\n")
    }
    expectKept()
    expect(lockFiles(repo)).toEqual([])

    const listed = cli(env, ["worktree", "list", "--task", taskId, "--json"])
    expect(listed.status).toBe(0)
    const rows = stdoutJson(listed).sort((a: any, b: any) => a.agent_id.localeCompare(b.agent_id))
    expect(rows).toEqual(
      [
        {
          agent_id: committer,
          branch: `spawnkit/${committer}`,
          state: "kept",
          ahead: 1,
          dirty: false,
          holds_work: true
        },
        { agent_id: drafter, branch: `spawnkit/${drafter}`, state: "kept", ahead: 0, dirty: true, holds_work: true }
      ].sort((a, b) => a.agent_id.localeCompare(b.agent_id)).map((row) =>
        expect.objectContaining({
          ...row,
          task_id: taskId,
          status: "completed",
          path: worktreeDir(env, taskId, row.agent_id),
          exists: true
        })
      )
    )
    const status = cli(env, ["status", "--task", taskId])
    expect(status.status).toBe(0)
    expect(status.stdout).toContain(`branch spawnkit/${committer} (1 ahead)`)
    expect(status.stdout).toContain(`branch spawnkit/${drafter} (dirty)`)
    expect(status.stdout).not.toContain(`spawnkit/${idle1}`)
    expect(status.stdout).not.toContain(`spawnkit/${idle2}`)

    for (const round of [1, 2]) {
      const pruned = cli(env, ["worktree", "prune", "--json"])
      expect(pruned.status, `prune round ${round}`).toBe(0)
      const result = stdoutJson(pruned)
      expect(result.failures).toEqual([])
      expect(result.outcomes.map((o: any) => [o.worktree, o.action]).sort()).toEqual(kept.map((id) => [id, "kept"]))
      expectKept()
    }

    for (const id of kept) {
      const refused = cli(env, ["worktree", "remove", "--task", taskId, "--agent", id, "--json"])
      expect(refused.status).not.toBe(0)
      expect(stdoutJson(refused).error).toMatchObject({ tag: "WorktreeHoldsWork" })
      expect(recordOf(env, taskId, id).worktree.state).toBe("kept")
    }
    expectKept()

    for (const id of kept) {
      const forced = cli(env, ["worktree", "remove", "--task", taskId, "--agent", id, "--force", "--json"])
      expect(forced.status).toBe(0)
      expect(stdoutJson(forced)).toMatchObject({ worktree: id, agent_id: id, action: "removed" })
      expect(recordOf(env, taskId, id).worktree.state).toBe("removed")
      expect(Fs.existsSync(worktreeDir(env, taskId, id))).toBe(false)
      expect(spawnkitBranches(repo)).not.toContain(`spawnkit/${id}`)
    }
    expectNoWorktree(env, repo, taskId)
    expect(stdoutJson(cli(env, ["worktree", "list", "--task", taskId, "--json"]))).toEqual([])
  })

  it("an agent that did nothing from a base no branch holds (a detached HEAD's own commit): its worktree goes when it ends", async () => {
    const env = newEnv()
    const repo = makeRepo(env)
    git(repo, "checkout", "-q", "--detach")
    Fs.writeFileSync(NodePath.join(repo, "README.md"), "# project, detached\n")
    git(repo, "commit", "-q", "-a", "-m", "on a detached HEAD")
    const head = git(repo, "rev-parse", "HEAD")
    expect(git(repo, "for-each-ref", "--contains", head)).toBe("")
    const taskId = await createTask(env, repo)
    const agent = await runIn(env, Spawnkit.spawn({ taskId, agentType: "idle", prompt: "p" }))
    expect(recordOf(env, taskId, agent.agent_id).worktree).toEqual({
      id: agent.agent_id,
      state: "active",
      base_commit: head
    })

    // Its base is the main checkout's HEAD, which holds it still: removing the agent's branch loses nothing.
    await runIn(env, Spawnkit.kill(taskId, agent.agent_id))
    expect(recordOf(env, taskId, agent.agent_id)).toMatchObject({ status: "killed", worktree: { state: "removed" } })
    expectNoWorktree(env, repo, taskId, true)
    expect(git(repo, "rev-parse", "HEAD")).toBe(head)
    const report = await runIn(env, Spawnkit.reconcile())
    expect(report).toMatchObject({ repairs: [], failed: [], partial: false, worktrees_kept: [] })
  })

  it("a child of an isolated agent starts from its parent's branch; a spawn's own base ref comes first", async () => {
    const env = newEnv()
    const repo = makeRepo(env)
    const head = git(repo, "rev-parse", "HEAD")
    const taskId = await createTask(env, repo)
    const committed = NodePath.join(env.dir, "parent-committed")
    const parent = await runWith(
      env,
      "sh -c 'echo from parent > parent.txt && git add parent.txt && git commit -q -m parent && " +
        `touch ${committed}; exec sleep 600'`,
      Spawnkit.spawn({ taskId, agentType: "parent", prompt: "p" })
    )
    await waitFor("the parent committed", () => Fs.existsSync(committed))
    const tip = git(repo, "rev-parse", `refs/heads/spawnkit/${parent.agent_id}`)
    expect(tip).not.toBe(head)

    const child = await runIn(env, Spawnkit.spawn({ taskId, agentType: "child", prompt: "p", parent: parent.agent_id }))
    expect(recordOf(env, taskId, child.agent_id)).toMatchObject({
      parent: parent.agent_id,
      worktree: { id: child.agent_id, state: "active", base_commit: tip, base_ref: `spawnkit/${parent.agent_id}` }
    })
    expect(git(repo, "rev-parse", `refs/heads/spawnkit/${child.agent_id}`)).toBe(tip)
    const childDir = worktreeDir(env, taskId, child.agent_id)
    expect(Fs.readFileSync(NodePath.join(childDir, "parent.txt"), "utf8")).toBe("from parent\n")
    expect(Fs.existsSync(NodePath.join(repo, "parent.txt"))).toBe(false)

    const sibling = await runIn(
      env,
      Spawnkit.spawn({ taskId, agentType: "child", prompt: "from main", parent: parent.agent_id, baseRef: "main" })
    )
    expect(recordOf(env, taskId, sibling.agent_id).worktree).toMatchObject({ base_commit: head, base_ref: "main" })
    expect(Fs.existsSync(NodePath.join(worktreeDir(env, taskId, sibling.agent_id), "parent.txt"))).toBe(false)
  })

  describe("hostile and bad input is refused with a typed error, and nothing is created", () => {
    /** Base refs git would read as an option, a range, a reflog or revision expression, or that carry a control. */
    const hostileRefs = (pwned: string) => [
      "-b",
      `--upload-pack=touch ${pwned}`,
      "main..HEAD",
      "main\n",
      "x\u0007",
      "@{-1}",
      "HEAD~1",
      "refs/heads/.x",
      "a.lock"
    ]

    it("hostile or unknown base refs, for a task and for a spawn", async () => {
      const env = newEnv()
      const repo = makeRepo(env)
      const head = mainCheckout(repo)
      const pwned = NodePath.join(env.dir, "pwned")
      for (const ref of hostileRefs(pwned)) {
        const error = await errorOf(
          env,
          Spawnkit.createTask({ description: "t", working_directory: repo, isolation: "worktree", base_ref: ref })
        )
        expect(error, JSON.stringify(ref)).toMatchObject({ _tag: "InvalidInput", field: "base_ref" })
        expect(taskDirs(env)).toEqual([])
      }
      const unknownTask = await errorOf(
        env,
        Spawnkit.createTask({ description: "t", working_directory: repo, isolation: "worktree", base_ref: "no-such" })
      )
      expect(unknownTask).toMatchObject({
        _tag: "InvalidInput",
        field: "base_ref",
        reason: expect.stringContaining("names no commit")
      })
      expect(taskDirs(env)).toEqual([])

      // The CLI says the same, as a typed error.
      const viaCli = cli(env, [
        "task",
        "create",
        "--description",
        "t",
        "--working-directory",
        repo,
        "--isolation",
        "worktree",
        `--base-ref=--upload-pack=touch ${pwned}`,
        "--json"
      ])
      expect(viaCli.status).toBe(1)
      expect(stdoutJson(viaCli).error).toMatchObject({
        tag: "InvalidInput",
        message: expect.stringContaining("base_ref")
      })
      expect(taskDirs(env)).toEqual([])

      const taskId = await createTask(env, repo)
      const before = snapshot(env, taskId)
      const spawnViaCli = cli(env, [
        "spawn",
        "--task",
        taskId,
        "--type",
        "x",
        "--prompt",
        "p",
        "--base-ref=-b",
        "--json"
      ])
      expect(spawnViaCli.status).toBe(1)
      expect(stdoutJson(spawnViaCli).error).toMatchObject({ tag: "InvalidInput" })
      for (const ref of hostileRefs(pwned)) {
        const error = await errorOf(env, Spawnkit.spawn({ taskId, agentType: "x", prompt: "p", baseRef: ref }))
        // The spawn request's own field: refused when decoded, before a slot is reserved.
        expect(error, JSON.stringify(ref)).toMatchObject({ _tag: "InvalidInput", field: "baseRef" })
      }
      const unknown = await errorOf(env, Spawnkit.spawn({ taskId, agentType: "x", prompt: "p", baseRef: "no-such" }))
      expect(unknown).toMatchObject({
        _tag: "InvalidInput",
        field: "base_ref",
        reason: expect.stringContaining("names no commit")
      })
      expect(snapshot(env, taskId)).toEqual(before)
      expectNoWorktree(env, repo, taskId)
      expect(liveSessions(env.socket)).toEqual([])
      expect(mainCheckout(repo)).toEqual(head)
      expect(Fs.existsSync(pwned)).toBe(false)
    })

    it("a working directory that is not a repository, a bare one or one without a commit", async () => {
      const env = newEnv()
      const plain = NodePath.join(env.dir, "plain")
      Fs.mkdirSync(plain)
      const bare = NodePath.join(env.dir, "bare.git")
      Fs.mkdirSync(bare)
      git(bare, "init", "-q", "--bare")
      const empty = NodePath.join(env.dir, "empty")
      Fs.mkdirSync(empty)
      git(empty, "init", "-q", "-b", "main")
      const cases = [
        [plain, "is not a git repository"],
        [bare, "is a bare repository"],
        [empty, "has no commit yet"]
      ] as const
      for (const [dir, why] of cases) {
        const error = await errorOf(
          env,
          Spawnkit.createTask({ description: "t", working_directory: dir, isolation: "worktree" })
        )
        expect(error).toMatchObject({
          _tag: "InvalidInput",
          field: "working_directory",
          reason: expect.stringContaining(why)
        })
        expect(taskDirs(env)).toEqual([])
      }
      // A task without isolation may work in such a directory; a spawn asking for a worktree there is refused.
      for (const [dir, why] of cases) {
        const task = await runIn(env, Spawnkit.createTask({ description: "t", working_directory: dir }))
        const before = snapshot(env, task.task_id)
        const error = await errorOf(
          env,
          Spawnkit.spawn({ taskId: task.task_id, agentType: "x", prompt: "p", isolation: "worktree" })
        )
        expect(error).toMatchObject({
          _tag: "InvalidInput",
          field: "working_directory",
          reason: expect.stringContaining(why)
        })
        expect(snapshot(env, task.task_id)).toEqual(before)
      }
      expect(liveSessions(env.socket)).toEqual([])
      expect(anythingUnderWorktreesRoot(env)).toEqual([])
      expect(git(empty, "for-each-ref")).toBe("")
      expect(git(bare, "for-each-ref")).toBe("")
    })

    it("a stored worktree record edited to a hostile base_ref or id is refused when read, and git never runs with it", async () => {
      const env = newEnv()
      const repo = makeRepo(env)
      const taskId = await createTask(env, repo)
      const agent = await runIn(env, Spawnkit.spawn({ taskId, agentType: "worker", prompt: "p" }))
      const file = NodePath.join(env.home, taskId, "AGENT_REGISTRY.json")
      const original = Fs.readFileSync(file, "utf8")
      const pwned = NodePath.join(env.dir, "pwned")
      // A git first on PATH that logs every call, then runs the real one.
      const bin = NodePath.join(env.dir, "bin")
      Fs.mkdirSync(bin)
      const log = NodePath.join(env.dir, "git-calls")
      const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim()
      Fs.writeFileSync(
        NodePath.join(bin, "git"),
        `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${realGit}' "$@"\n`,
        { mode: 0o755 }
      )
      const loggedGit = { PATH: `${bin}${NodePath.delimiter}${process.env["PATH"]}` }
      const gitCalls = () => (Fs.existsSync(log) ? Fs.readFileSync(log, "utf8") : "")

      // On the intact record, the CLI's git calls go through the logging git.
      const intact = cli(env, ["worktree", "list", "--task", taskId, "--json"], loggedGit)
      expect(intact.status).toBe(0)
      expect(stdoutJson(intact)).toMatchObject([{ agent_id: agent.agent_id, state: "active" }])
      expect(gitCalls()).toContain("worktree list")
      Fs.rmSync(log)

      const edits: ReadonlyArray<readonly [string, (r: any) => void]> = [
        ["base_ref as an option", (r) => (r.agents[0].worktree.base_ref = `--upload-pack=touch ${pwned}`)],
        ["id as a path out of the root", (r) => (r.agents[0].worktree.id = "../../../escape")],
        ["id with a line break", (r) => (r.agents[0].worktree.id = "w\n--force")],
        ["the task's base_ref as an option", (r) => (r.base_ref = "-b")]
      ]
      for (const [what, edit] of edits) {
        const registry = JSON.parse(original)
        edit(registry)
        Fs.writeFileSync(file, JSON.stringify(registry, null, 2))
        for (
          const args of [
            ["worktree", "list", "--task", taskId, "--json"],
            ["worktree", "remove", "--task", taskId, "--agent", agent.agent_id, "--force", "--json"]
          ]
        ) {
          const out = cli(env, args, loggedGit)
          expect(out.status, `${what}: ${args.join(" ")}`).not.toBe(0)
          expect(stdoutJson(out).error, `${what}: ${args.join(" ")}`).toMatchObject({ tag: "RegistryCorrupt" })
        }
        const pruned = cli(env, ["worktree", "prune", "--json"], loggedGit)
        expect(pruned.status, what).toBe(0)
        expect(stdoutJson(pruned)).toMatchObject({
          outcomes: [],
          failures: [{ task_id: taskId, reason: expect.stringContaining("RegistryCorrupt") }]
        })
        const reconciled = cli(env, ["reconcile", "--json"], loggedGit)
        expect(reconciled.status, what).toBe(2)
        expect(stdoutJson(reconciled)).toMatchObject({
          repairs: [],
          unreadable: [{ task_id: taskId, action: "left untouched" }]
        })
        expect(gitCalls(), what).toBe("")
        expect(Fs.existsSync(pwned)).toBe(false)
        // The agent and its worktree are left as they were.
        expect(Fs.readFileSync(file, "utf8")).toBe(JSON.stringify(registry, null, 2))
        expect(worktreeDirsOf(env, taskId)).toEqual([agent.agent_id])
        expect(spawnkitBranches(repo)).toEqual([`spawnkit/${agent.agent_id}`])
        expect(liveSessions(env.socket)).toEqual([agent.tmux_session])
      }
      expect(Fs.existsSync(NodePath.join(env.dir, "escape"))).toBe(false)
    })
  })
})
