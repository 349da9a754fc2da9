/**
 * A turned agent in its bubblewrap sandbox (`sandbox: bwrap`, isolation worktree, the real bwrap and git): it tries
 * what a prompt-injected agent would — read a sibling's prompt, list spawnkit's home, write a registry, reach the tmux
 * socket, read other processes' environments — and can do none of it, while it works and commits in its own worktree
 * and its exit is recorded as usual. A sandbox over a working directory inside spawnkit's home is refused, nothing left.
 *
 * Needs `npm run build` first (the pane-died hook runs dist/cli/main.js).
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import {
  cli,
  gitIn,
  liveSessions,
  makeTestEnv,
  newRepo,
  stdoutJson,
  type TestEnv,
  waitFor
} from "../support/Harness.js"

const envs: Array<TestEnv> = []
afterEach(() => {
  for (const env of envs.splice(0)) env.cleanup()
})

/** What the turned agent tries, each attempt printing a word only if it succeeds; then it commits and ends. */
const hostile = (env: TestEnv) =>
  "sh -c '" + [
    // The patterns never spell the sibling's word, so the script's own text cannot match them.
    `cat ${env.home}/*/prompts/*.prompt 2>/dev/null | grep -q "sibling-secre[t]" && echo LEAK-SIBLING-PROMPT`,
    // What the home shows is the path to its own worktree, nothing else.
    `[ -n "$(ls -A ${env.home} 2>/dev/null | grep -v "^.spawnkit-worktrees$")" ] && echo LEAK-HOME-LISTED`,
    `for f in ${env.home}/*/AGENT_REGISTRY.json; do [ -f "$f" ] && echo x >> "$f" && echo LEAK-REGISTRY-WRITTEN; done`,
    `tmux -S ${env.socket} ls >/dev/null 2>&1 && echo LEAK-TMUX`,
    `cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n" | grep -q "sibling-secre[t]" && echo LEAK-ENVIRON`,
    "echo PROCESSES $(ls /proc | grep -c \"^[0-9]\")",
    "echo mine > mine.txt && git add mine.txt && git -c user.name=a -c user.email=a@b commit -qm mine && echo COMMITTED",
    "echo HOSTILE-DONE"
  ].join("; ") + "'"

/** `spawnkit spawn --sandbox bwrap` of one agent of type `type` (CLI output; `vars` for its environment). */
const spawnSandboxed = (env: TestEnv, taskId: string, type: string, vars: Record<string, string> = {}) =>
  cli(env, ["spawn", "--task", taskId, "--type", type, "--prompt", "p", "--sandbox", "bwrap", "--json"], vars)

describe("a turned agent in its sandbox", () => {
  it("reaches nothing of spawnkit or its siblings, and works in its own worktree", () => {
    const env = makeTestEnv()
    envs.push(env)
    const repo = newRepo(env.dir)
    const script = hostile(env)
    const created = cli(env, [
      "task",
      "create",
      "--description",
      "sandbox",
      "--working-directory",
      repo,
      "--isolation",
      "worktree",
      "--json"
    ], { SPAWNKIT_AGENT_COMMAND: script })
    expect(created.status, created.stderr).toBe(0)
    const taskId = stdoutJson(created).task_id
    // A sibling outside the sandbox, whose prompt and environment hold a secret word.
    const sibling = cli(env, ["spawn", "--task", taskId, "--type", "sibling", "--prompt", "sibling-secret", "--json"], {
      // The word is put together at run time: it is in the sibling's environment, and in no command line or tmux's.
      SPAWNKIT_AGENT_COMMAND: "sh -c 'export W=sib$(echo ling)-secret; exec sleep 600'"
    })
    expect(sibling.status, sibling.stderr).toBe(0)
    const spawned = spawnSandboxed(env, taskId, "turned", { SPAWNKIT_AGENT_COMMAND: script })
    expect(spawned.status, spawned.stderr).toBe(0)
    const agentId = stdoutJson(spawned).agent_id
    const log = NodePath.join(env.home, taskId, "logs", `${agentId}.log`)
    return waitFor("the turned agent ended", () => {
      const task = stdoutJson(cli(env, ["status", "--task", taskId, "--json"]))
      return task.agents.find((a: any) => a.id === agentId)?.status === "completed"
    }).then(() => {
      const out = Fs.readFileSync(log, "utf8")
      expect(out).toContain("HOSTILE-DONE")
      expect(out).not.toMatch(/LEAK-/)
      expect(Number(/PROCESSES (\d+)/.exec(out)?.[1])).toBeLessThan(10)
      expect(out).toContain("COMMITTED")
      const record = stdoutJson(cli(env, ["status", "--task", taskId, "--json"])).agents.find((a: any) =>
        a.id === agentId
      )
      expect(record.sandbox).toBe("bwrap")
      // Its commit is on its own branch, in the shared repository.
      expect(gitIn(repo, "log", "--format=%s", `spawnkit/${agentId}`, "-1")).toBe("mine")
      expect(liveSessions(env.socket)).toContain(stdoutJson(sibling).tmux_session)
    })
  })

  it("refuses a sandbox over a working directory inside spawnkit's home, and leaves nothing", () => {
    const env = makeTestEnv()
    envs.push(env)
    const created = cli(env, ["task", "create", "--description", "in home", "--json"])
    const taskId = stdoutJson(created).task_id
    const spawned = spawnSandboxed(env, taskId, "t")
    expect(spawned.status).not.toBe(0)
    expect(stdoutJson(spawned).error.tag).toBe("InvalidInput")
    expect(stdoutJson(spawned).error.message).toContain("sandbox")
    expect(env.readTask(taskId).agents).toEqual([])
    expect(liveSessions(env.socket)).toEqual([])
  })

  it("a sandbox that cannot be set up fails the spawn cleanly: nothing of the agent is left", async () => {
    const env = makeTestEnv("sleep 600")
    envs.push(env)
    const repo = newRepo(env.dir)
    const taskId = stdoutJson(cli(env, [
      "task",
      "create",
      "--description",
      "no bwrap",
      "--working-directory",
      repo,
      "--isolation",
      "worktree",
      "--json"
    ])).task_id
    // The bubblewrap binary is not there: the agent's command cannot start.
    const missing = NodePath.join(env.dir, "no-such-bwrap")
    const spawned = spawnSandboxed(env, taskId, "t", {
      SPAWNKIT_BWRAP_BIN: missing
    })
    if (spawned.status === 0) {
      // The pane was still starting when tmux answered: the exit is recorded as a failure once it dies.
      const agentId = stdoutJson(spawned).agent_id
      await waitFor("the agent's failure recorded", () => env.readTask(taskId).agents[0]?.status === "failed")
      expect(env.readTask(taskId).agents[0]).toMatchObject({ id: agentId, exit: { exit_code: 127 } })
    } else {
      expect(stdoutJson(spawned).error.tag, spawned.stdout).toBe("AgentExitedAtStartup")
      expect(env.readTask(taskId).agents).toEqual([])
    }
    expect(
      Fs.readFileSync(
        NodePath.join(env.home, taskId, "logs", Fs.readdirSync(NodePath.join(env.home, taskId, "logs"))[0]!),
        "utf8"
      )
    )
      .toContain(missing)
    await waitFor(
      "nothing left",
      () =>
        env.readTask(taskId).active_count === 0 && liveSessions(env.socket).length === 0 &&
        gitIn(repo, "branch", "--list", "spawnkit/*") === "" && gitIn(repo, "worktree", "list").split("\n").length === 1
    )
    expect(Fs.readdirSync(NodePath.join(env.home, taskId, "prompts"))).toEqual([])
  })
})
