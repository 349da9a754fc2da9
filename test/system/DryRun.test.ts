/**
 * `spawnkit reconcile --dry-run` only reports: it changes nothing on disk (no home created when there is none, no
 * lock file, no marker directory, no byte of any file) and no session, while reporting what a pass would repair.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { cli, fileTree, liveSessions, runIn, stdoutJson, type TestEnv, testEnvs } from "../support/Harness.js"

const newEnv = testEnvs()

const tmux = (env: TestEnv, ...args: Array<string>) =>
  spawnSync("tmux", ["-S", env.socket, ...args], { encoding: "utf8" })

/** A task with one running agent, through the API (which writes the home, as any spawn does). */
const oneAgent = (env: TestEnv) =>
  runIn(
    env,
    Effect.gen(function*() {
      const task = yield* Spawnkit.createTask({ description: "dry run" })
      const agent = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "p" })
      return { taskId: task.task_id as string, agent }
    })
  )

describe("reconcile --dry-run", () => {
  it("on a missing home reports nothing to repair and leaves the home missing (CLI and API)", async () => {
    const env = newEnv()
    const home = NodePath.join(env.home, "never-made")
    const out = cli(env, ["reconcile", "--dry-run", "--json"], { SPAWNKIT_HOME: home })
    expect(out.status, out.stderr).toBe(0)
    expect(stdoutJson(out)).toEqual({
      dry_run: true,
      repairs: [],
      unreadable: [],
      failed: [],
      partial: false,
      worktrees_kept: []
    })
    const text = cli(env, ["reconcile", "--dry-run"], { SPAWNKIT_HOME: home })
    expect(text.stdout).toBe("nothing to repair\n")
    const report = await Effect.runPromise(
      Spawnkit.reconcile({ dryRun: true }).pipe(Effect.provide(env.layer({ home })))
    )
    expect(report).toEqual({
      dry_run: true,
      repairs: [],
      unreadable: [],
      failed: [],
      partial: false,
      worktrees_kept: []
    })
    expect(Fs.existsSync(home)).toBe(false)
    expect(Fs.readdirSync(env.home)).toEqual([])
  })

  it("on a home without its markers and lock file finds the active task all the same, and makes neither", async () => {
    const env = newEnv()
    const { taskId, agent } = await oneAgent(env)
    // A home as an older version (or the older orchestrator) left it: no markers, no lock file.
    Fs.rmSync(NodePath.join(env.home, ".spawnkit-active"), { recursive: true })
    Fs.rmSync(NodePath.join(env.home, ".spawnkit.lock"))
    // Its agent's session went behind spawnkit's back: a pass would mark it lost.
    expect(tmux(env, "kill-session", "-t", `=${agent.tmux_session}`).status).toBe(0)
    const before = fileTree(env.home)

    const out = cli(env, ["reconcile", "--dry-run", "--json"])
    expect(out.status, out.stderr).toBe(0)
    expect(stdoutJson(out)).toMatchObject({
      dry_run: true,
      repairs: [{ kind: "marked_lost", task_id: taskId, agent_id: agent.agent_id }],
      unreadable: [],
      partial: false
    })
    expect(stdoutJson(out).repairs).toHaveLength(1)
    expect(fileTree(env.home)).toEqual(before)
    expect(Fs.existsSync(NodePath.join(env.home, ".spawnkit-active"))).toBe(false)
    expect(Fs.existsSync(NodePath.join(env.home, ".spawnkit.lock"))).toBe(false)
  })

  it("on a home with orphans reports each repair and leaves every byte and session as it was", async () => {
    const env = newEnv()
    const { taskId, agent } = await oneAgent(env)
    const dir = NodePath.join(env.home, taskId)
    // An orphan session tagged for this home, an orphan prompt file and a dead writer's registry temp file.
    expect(tmux(env, "new-session", "-d", "-s", "agent_orphan-1", "sleep", "600").status).toBe(0)
    tmux(env, "set-option", "-t", "=agent_orphan-1:", "@spawnkit_home", env.home)
    tmux(env, "set-option", "-t", "=agent_orphan-1:", "@spawnkit_task", taskId)
    tmux(env, "set-option", "-t", "=agent_orphan-1:", "@spawnkit_agent", "orphan-1")
    Fs.writeFileSync(NodePath.join(dir, "prompts", "ghost-1.prompt"), "x")
    const deadPid = spawnSync("true").pid!
    const temp = `AGENT_REGISTRY.json.tmp-${deadPid}-abcdef12`
    Fs.writeFileSync(NodePath.join(dir, temp), "{")
    const before = fileTree(env.home)
    const sessions = liveSessions(env.socket).sort()
    expect(sessions).toEqual(["agent_orphan-1", agent.tmux_session].sort())

    const out = cli(env, ["reconcile", "--dry-run", "--json"])
    expect(out.status, out.stderr).toBe(0)
    const expected = [
      { kind: "killed_orphan_session", task_id: taskId, agent_id: "orphan-1", target: "agent_orphan-1" },
      {
        kind: "removed_orphan_file",
        task_id: taskId,
        agent_id: "ghost-1",
        target: NodePath.join(dir, "prompts", "ghost-1.prompt")
      },
      { kind: "removed_temp_file", task_id: taskId, target: NodePath.join(dir, temp) }
    ]
    expect(stdoutJson(out)).toMatchObject({ dry_run: true, repairs: expected, unreadable: [], partial: false })
    expect(stdoutJson(out).repairs).toHaveLength(3)
    expect(fileTree(env.home)).toEqual(before)
    expect(liveSessions(env.socket).sort()).toEqual(sessions)

    // What it reported is what a pass does.
    const pass = await runIn(env, Spawnkit.reconcile())
    expect(pass).toMatchObject({ dry_run: false, repairs: expected })
    expect(liveSessions(env.socket)).toEqual([agent.tmux_session])
  })
})
