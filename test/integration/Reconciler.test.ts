import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  cli,
  liveSessions,
  promptFiles,
  readRegistryFile,
  runIn,
  stdoutJson,
  type TestEnv,
  testEnvs,
  waitFor
} from "../support/Harness.js"

const newEnv = testEnvs()
const json = stdoutJson
const tmux = (env: TestEnv, ...args: Array<string>) =>
  spawnSync("tmux", ["-S", env.socket, ...args], { encoding: "utf8" })
const reconcile = (env: TestEnv, dryRun = false) => runIn(env, Spawnkit.reconcile({ dryRun }))
const recordOf = (env: TestEnv, taskId: string, agentId: string) =>
  readRegistryFile(env.home, taskId).agents.find((a: { id: string }) => a.id === agentId)
const paneGroups = (env: TestEnv, sessions: Array<string>) =>
  sessions.map((name) => Number(tmux(env, "list-panes", "-t", `=${name}:`, "-F", "#{pane_pid}").stdout.trim()))
/** Whether the process table holds a running (not zombie) member of the group. */
const groupAlive = (pgid: number) =>
  spawnSync("ps", ["-eo", "pgid=,stat="], { encoding: "utf8" }).stdout.split("\n").some((l) => {
    const [group, stat] = l.trim().split(/\s+/)
    return Number(group) === pgid && stat !== undefined && !stat.startsWith("Z")
  })

const createTask = (env: TestEnv) =>
  json(cli(env, ["task", "create", "--description", "reconcile", "--max-concurrent", "10", "--json"])).task_id as string

/** A spawning process SIGKILLed right after it created the session: a reservation with a dead owner is left. */
const spawnKilledMidway = (env: TestEnv, taskId: string, step = "after-session") => {
  const out = cli(env, ["spawn", "--task", taskId, "--type", "doomed", "--prompt", "p", "--json"], {
    SPAWNKIT_FAULT: `${step}:kill`
  })
  expect(out.signal).toBe("SIGKILL")
}

describe("Reconciler", () => {
  it("rolls back a reservation whose owner was SIGKILLed, and a second pass is a no-op", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const live = json(cli(env, ["spawn", "--task", taskId, "--type", "keeper", "--prompt", "stay", "--json"]))
    spawnKilledMidway(env, taskId)
    const left = readRegistryFile(env.home, taskId).agents
    expect(left.map((a: { status: string }) => a.status).sort()).toEqual(["reserved", "running"])
    expect(liveSessions(env.socket)).toHaveLength(2)
    expect(promptFiles(env.home, taskId)).toHaveLength(2)

    const dry = await reconcile(env, true)
    expect(dry.repairs.map((r) => r.kind)).toEqual(["rolled_back_reservation"])
    expect(readRegistryFile(env.home, taskId).agents).toHaveLength(2)
    expect(liveSessions(env.socket)).toHaveLength(2)

    const first = await reconcile(env)
    expect(first.repairs.map((r) => r.kind)).toEqual(["rolled_back_reservation"])
    const after = readRegistryFile(env.home, taskId)
    expect(after.agents.map((a: { id: string }) => a.id)).toEqual([live.agent_id])
    expect(after.active_count).toBe(1)
    expect(liveSessions(env.socket)).toEqual([live.tmux_session])
    expect(promptFiles(env.home, taskId)).toEqual([`${live.agent_id}.prompt`])

    expect((await reconcile(env)).repairs).toEqual([])
  })

  it("kills orphan sessions of its home but never a foreign session or another home's session", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const live = json(cli(env, ["spawn", "--task", taskId, "--type", "keeper", "--prompt", "stay", "--json"]))
    expect(tmux(env, "new-session", "-d", "-s", "foreign", "sleep", "600").status).toBe(0)
    expect(tmux(env, "new-session", "-d", "-s", "agent_other-home", "sleep", "600").status).toBe(0)
    tmux(env, "set-option", "-t", "=agent_other-home:", "@spawnkit_home", "/elsewhere")
    tmux(env, "set-option", "-t", "=agent_other-home:", "@spawnkit_task", taskId)
    tmux(env, "set-option", "-t", "=agent_other-home:", "@spawnkit_agent", "other-home")
    expect(tmux(env, "new-session", "-d", "-s", "agent_orphan-1", "sleep", "600").status).toBe(0)
    tmux(env, "set-option", "-t", "=agent_orphan-1:", "@spawnkit_home", env.home)
    tmux(env, "set-option", "-t", "=agent_orphan-1:", "@spawnkit_task", taskId)
    tmux(env, "set-option", "-t", "=agent_orphan-1:", "@spawnkit_agent", "orphan-1")

    const report = await reconcile(env)
    expect(report.repairs).toMatchObject([{ kind: "killed_orphan_session", target: "agent_orphan-1" }])
    expect(liveSessions(env.socket).sort()).toEqual(["agent_other-home", "foreign", live.tmux_session].sort())
    expect(readRegistryFile(env.home, taskId).agents[0].status).toBe("running")
    expect((await reconcile(env)).repairs).toEqual([])
  })

  it("marks a live agent lost only after its session is confirmed gone, and removes its files", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const a = json(cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "one", "--json"]))
    const b = json(cli(env, ["spawn", "--task", taskId, "--type", "b", "--prompt", "two", "--json"]))
    expect(tmux(env, "kill-session", "-t", `=${a.tmux_session}`).status).toBe(0)

    const report = await reconcile(env)
    expect(report.repairs).toMatchObject([{ kind: "marked_lost", agent_id: a.agent_id }])
    const agents = readRegistryFile(env.home, taskId).agents
    expect(agents.find((x: { id: string }) => x.id === a.agent_id)).toMatchObject({ status: "lost" })
    expect(agents.find((x: { id: string }) => x.id === b.agent_id)).toMatchObject({ status: "running" })
    expect(promptFiles(env.home, taskId)).toEqual([`${b.agent_id}.prompt`])
    expect(liveSessions(env.socket)).toEqual([b.tmux_session])
    expect((await reconcile(env)).repairs).toEqual([])
  })

  it("a failing tmux query stops the pass: nothing is declared lost or killed", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const a = json(cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "one", "--json"]))
    const before = Fs.readFileSync(NodePath.join(env.home, taskId, "AGENT_REGISTRY.json"))
    // A tmux that answers list-sessions but fails every pane query.
    const fake = NodePath.join(env.home, "flaky-tmux")
    Fs.writeFileSync(
      fake,
      `#!/usr/bin/env bash\nfor a in "$@"; do [ "$a" = list-panes ] && { echo "server exited unexpectedly" >&2; exit 1; }; done\nexec tmux "$@"\n`,
      { mode: 0o755 }
    )
    const result = await Effect.runPromise(
      Spawnkit.reconcile().pipe(Effect.result, Effect.provide(env.layer({ tmuxBin: fake })))
    )
    expect(result._tag).toBe("Failure")
    expect(result).toMatchObject({ failure: { _tag: "TmuxError" } })
    expect(Fs.readFileSync(NodePath.join(env.home, taskId, "AGENT_REGISTRY.json"))).toEqual(before)
    expect(liveSessions(env.socket)).toEqual([a.tmux_session])
  })

  it("a query that meets a server on its way out is asked again, and the pass goes on", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const a = json(cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "one", "--json"]))
    // A tmux whose first pane query meets a server shutting down, as a client does right after the last session ended.
    const fake = NodePath.join(env.home, "exiting-tmux")
    const once = NodePath.join(env.home, "exiting-once")
    Fs.writeFileSync(
      fake,
      `#!/usr/bin/env bash
for a in "$@"; do [ "$a" = list-panes ] && [ ! -e ${once} ] && { touch ${once}; echo "server exited unexpectedly" >&2; exit 1; }; done
exec tmux "$@"
`,
      { mode: 0o755 }
    )
    const report = await Effect.runPromise(Spawnkit.reconcile().pipe(Effect.provide(env.layer({ tmuxBin: fake }))))
    expect(Fs.existsSync(once)).toBe(true)
    expect(report.repairs).toEqual([])
    expect(liveSessions(env.socket)).toEqual([a.tmux_session])
  })

  it("removes orphan prompt files and registry temp files of dead writers, nothing else", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const a = json(cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "one", "--json"]))
    const dir = NodePath.join(env.home, taskId)
    Fs.writeFileSync(NodePath.join(dir, "prompts", "ghost-000000-deadbeef.prompt"), "x")
    const deadPid = spawnSync("true").pid!
    Fs.writeFileSync(NodePath.join(dir, `AGENT_REGISTRY.json.tmp-${deadPid}-abcdef12`), "{")
    Fs.writeFileSync(NodePath.join(dir, `AGENT_REGISTRY.json.tmp-${process.pid}-abcdef12`), "{")

    const kinds = (await reconcile(env)).repairs.map((r) => r.kind).sort()
    expect(kinds).toEqual(["removed_orphan_file", "removed_temp_file"])
    expect(promptFiles(env.home, taskId)).toEqual([`${a.agent_id}.prompt`])
    expect(Fs.existsSync(NodePath.join(dir, `AGENT_REGISTRY.json.tmp-${deadPid}-abcdef12`))).toBe(false)
    // A live writer's temp file is its own business.
    expect(Fs.existsSync(NodePath.join(dir, `AGENT_REGISTRY.json.tmp-${process.pid}-abcdef12`))).toBe(true)
  })

  it("stops an agent past its wall-clock limit and records it timed_out, leaving the others", async () => {
    const env = newEnv()
    const taskId = createTask(env)
    const short = json(
      cli(env, ["spawn", "--task", taskId, "--type", "short", "--prompt", "p", "--timeout", "3", "--json"])
    )
    // Nothing is due before the limit.
    expect((await reconcile(env)).repairs).toEqual([])
    const long = json(cli(env, ["spawn", "--task", taskId, "--type", "long", "--prompt", "p", "--json"]))
    const [group] = paneGroups(env, [short.tmux_session])
    await waitFor(
      "the limit has passed",
      () => Date.now() - Date.parse(recordOf(env, taskId, short.agent_id).started_at) > 3_200
    )
    const report = await reconcile(env)
    expect(report.repairs).toMatchObject([{ kind: "timed_out", agent_id: short.agent_id }])
    expect(recordOf(env, taskId, short.agent_id)).toMatchObject({
      status: "timed_out",
      reason: expect.stringContaining("3 s")
    })
    expect(recordOf(env, taskId, long.agent_id).status).toBe("running")
    expect(liveSessions(env.socket)).toEqual([long.tmux_session])
    expect(groupAlive(group!)).toBe(false)
    expect((await reconcile(env)).repairs).toEqual([])
  })

  it("stops an agent whose output stalls and records it stalled, but not one that keeps writing", async () => {
    const env = newEnv()
    const taskId = json(
      cli(env, ["task", "create", "--description", "stall", "--stall-timeout", "2", "--json"], {
        SPAWNKIT_AGENT_COMMAND: `sh -c "echo started; exec sleep 600"`
      })
    ).task_id as string
    const quiet = json(
      cli(env, ["spawn", "--task", taskId, "--type", "quiet", "--prompt", "p", "--json"], {
        SPAWNKIT_AGENT_COMMAND: `sh -c "echo started; exec sleep 600"`
      })
    )
    const chatty = json(
      cli(env, ["spawn", "--task", taskId, "--type", "chatty", "--prompt", "p", "--json"], {
        SPAWNKIT_AGENT_COMMAND: `sh -c "while true; do echo tick; sleep 0.3; done"`
      })
    )
    await waitFor(
      "more than the stall limit has passed",
      () => Date.now() - Date.parse(recordOf(env, taskId, quiet.agent_id).started_at) > 2_500,
      10_000
    )
    const report = await reconcile(env)
    expect(report.repairs).toMatchObject([{ kind: "stalled", agent_id: quiet.agent_id }])
    expect(recordOf(env, taskId, quiet.agent_id)).toMatchObject({ status: "stalled" })
    expect(recordOf(env, taskId, chatty.agent_id).status).toBe("running")
    expect(liveSessions(env.socket)).toEqual([chatty.tmux_session])
  })

  it("spawnkit reconcile --json reports the repairs", () => {
    const env = newEnv()
    const taskId = createTask(env)
    spawnKilledMidway(env, taskId, "after-prompt")
    const out = cli(env, ["reconcile", "--json"])
    expect(out.status).toBe(0)
    expect(json(out)).toMatchObject({ dry_run: false, repairs: [{ kind: "rolled_back_reservation", task_id: taskId }] })
    expect(json(cli(env, ["reconcile", "--json"])).repairs).toEqual([])
    expect(readRegistryFile(env.home, taskId).agents).toEqual([])
    expect(promptFiles(env.home, taskId)).toEqual([])
  })
})
