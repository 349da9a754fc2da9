/**
 * Stored data is untrusted: agents can write their task's AGENT_REGISTRY.json. Here hostile records are planted by
 * writing the file's bytes directly (ids that traverse, session names that are not the record's own, tracked files
 * outside the workspace, duplicate ids, a task_id naming another task), in states that would make spawnkit act (a
 * reservation with a dead owner, a live record without its session). Real files, real tmux, real processes.
 *
 * What must hold: the planted task is reported unreadable and left untouched by every reconcile pass, kill, exit
 * hook and listing; no canary file (at the paths a traversal would reach) and no session outside the task's own is
 * touched; the other task is still supervised in the same pass; and `spawnkit task quarantine` is the way out.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  cli,
  fileTree,
  liveSessions,
  processAlive,
  runIn,
  type TestEnv,
  testEnvs,
  waitFor
} from "../support/Harness.js"

const newEnv = testEnvs()

/** The tree without the paths under `prefix` (the good task's directory, which its own supervision changes). */
const treeOutside = (dir: string, prefix: string) =>
  Object.fromEntries(Object.entries(fileTree(dir)).filter(([p]) => p !== prefix && !p.startsWith(prefix + "/")))

/**
 * A sandbox: spawnkit's home sits two levels below the test's temp root, so a traversal of up to four `..` from a
 * task's subdirectory still lands inside the root, where the tree snapshot sees it.
 */
interface Sandbox {
  readonly env: TestEnv
  readonly root: string
  readonly home: string
  /** The task whose registry is planted. */
  readonly bad: string
  /** Its one real agent (a live session tagged for the bad task). */
  readonly keeper: Spawnkit.SpawnResult
  /** The good task, and its agent that lives through every test. */
  readonly good: string
  readonly long: Spawnkit.SpawnResult
  readonly badFile: string
  /** The bad task's registry as it was written (valid), to plant variants on. */
  readonly valid: any
  readonly deadPid: number
  /** This host (SPAWNKIT_HOST_ID): a reservation it owns is judged by whether its owner process lives. */
  readonly hostId: string
  readonly canaries: ReadonlyArray<string>
  readonly api: <A, E>(effect: Effect.Effect<A, E, Spawnkit.Services>) => Promise<A>
  readonly run: (args: ReadonlyArray<string>) => ReturnType<typeof cli>
  readonly tmux: (...args: Array<string>) => ReturnType<typeof spawnSync>
}

/** Ids a hostile record may carry to reach outside its task's prompts, logs and reports directories. */
const TRAVERSALS = ["../x", "../../outside", "../../../../CANARY"]

const setup = async (goodAgents: ReadonlyArray<{ type: string; timeoutSeconds?: number }> = []) => {
  const env = newEnv()
  const root = env.home
  const home = NodePath.join(root, "a", "b", "home")
  const api = <A, E>(effect: Effect.Effect<A, E, Spawnkit.Services>) =>
    Effect.runPromise(effect.pipe(Effect.provide(env.layer({ home }))))
  const run = (args: ReadonlyArray<string>) => cli(env, args, { SPAWNKIT_HOME: home })
  const tmux = (...args: Array<string>) => spawnSync("tmux", ["-S", env.socket, ...args], { encoding: "utf8" })

  const { bad, good, keeper, long, extra, hostId } = await api(Effect.gen(function*() {
    const bad = (yield* Spawnkit.createTask({ description: "planted", max_concurrent: 10 })).task_id
    const good = (yield* Spawnkit.createTask({ description: "good", max_concurrent: 10 })).task_id
    // A live agent in the bad task: the task is marked active, as a task whose agent rewrote its registry is.
    const keeper = yield* Spawnkit.spawn({ taskId: bad, agentType: "keeper", prompt: "p" })
    const long = yield* Spawnkit.spawn({ taskId: good, agentType: "long", prompt: "p" })
    const extra = yield* Effect.forEach(goodAgents, (a) =>
      Spawnkit.spawn({
        taskId: good,
        agentType: a.type,
        prompt: "p",
        ...(a.timeoutSeconds !== undefined ? { timeoutSeconds: a.timeoutSeconds } : {})
      }))
    return { bad, good, keeper, long, extra, hostId: (yield* Spawnkit.SpawnkitConfig).hostId }
  }))
  // A session that is no agent's (the user's own on the same socket).
  expect(tmux("new-session", "-d", "-s", "canary", "sleep", "600").status).toBe(0)

  // Canary files wherever a hostile id would lead a path built from it, and where hostile tracked_files point.
  const canaries = [
    NodePath.join(root, "CANARY-tracked"),
    ...TRAVERSALS.flatMap((id) => [
      NodePath.join(home, bad, "prompts", `${id}.prompt`),
      NodePath.join(home, bad, "prompts", `${id}.mcp.json`),
      NodePath.join(home, bad, "logs", `${id}.log`),
      NodePath.join(home, bad, "progress", `${id}_progress.jsonl`),
      NodePath.join(home, bad, "findings", `${id}_findings.jsonl`)
    ])
  ]
  for (const c of canaries) {
    Fs.mkdirSync(NodePath.dirname(c), { recursive: true })
    Fs.writeFileSync(c, `canary ${c}\n`)
  }
  const badFile = NodePath.join(home, bad, "AGENT_REGISTRY.json")
  const sb: Sandbox = {
    env,
    root,
    home,
    bad,
    keeper,
    good,
    long,
    badFile,
    valid: JSON.parse(Fs.readFileSync(badFile, "utf8")),
    deadPid: spawnSync("true").pid!,
    hostId,
    canaries,
    api,
    run,
    tmux
  }
  return { sb, extra }
}

/** A record as the bad task stores it (started when the task was created). */
const record = (sb: Sandbox, id: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: "worker",
  tmux_session: `agent_${id}`,
  parent: "orchestrator",
  depth: 1,
  status,
  started_at: sb.valid.created_at,
  ...extra
})

/** A reservation whose owner process is gone: a readable one would be rolled back (files, session, record). */
const deadOwner = (sb: Sandbox) => ({
  reservation: { owner_pid: sb.deadPid, owner_host: sb.hostId, reserved_at: sb.valid.created_at }
})

/**
 * The hostile variants: each alone makes the task unreadable (with the reason shown), and each is in a state a
 * readable record would be acted on in.
 */
const variants = (
  sb: Sandbox
): ReadonlyArray<{ readonly what: string; readonly reason: RegExp; readonly doc: any }> => {
  const withAgents = (...agents: Array<Record<string, unknown>>) => ({
    ...sb.valid,
    agents: [...sb.valid.agents, ...agents]
  })
  const keeperRecord = sb.valid.agents[0]
  return [
    {
      what: "a reservation with a dead owner whose id traverses (../x)",
      reason: /Expected an agent id/,
      doc: withAgents(record(sb, "../x", "reserved", deadOwner(sb)))
    },
    {
      what: "a live record without a session whose id traverses (../../outside)",
      reason: /Expected an agent id/,
      doc: withAgents(record(sb, "../../outside", "running"))
    },
    {
      what: "a live record whose id leaves the home (../../../../CANARY)",
      reason: /Expected an agent id/,
      doc: withAgents(record(sb, "../../../../CANARY", "running"))
    },
    {
      what: "a live record naming the good task's agent session as its own",
      reason: /Expected tmux_session agent_ok-1/,
      doc: withAgents(record(sb, "ok-1", "running", { tmux_session: sb.long.tmux_session }))
    },
    {
      what: "a reservation with a dead owner naming a session that is not spawnkit's",
      reason: /Expected a session name matching/,
      doc: withAgents(record(sb, "ok-2", "reserved", { tmux_session: "canary", ...deadOwner(sb) }))
    },
    {
      what: "a live record tracking files outside the workspace",
      reason: /Expected tracked_files\.prompt_file of agent ok-3 in a directory of task/,
      doc: withAgents(record(sb, "ok-3", "running", {
        tracked_files: {
          prompt_file: NodePath.join(sb.root, "CANARY-tracked"),
          log_file: NodePath.join(sb.root, "CANARY-tracked")
        }
      }))
    },
    {
      what: "a live record whose parent traverses",
      reason: /Expected an agent id/,
      doc: withAgents(record(sb, "ok-4", "running", { parent: "../../outside" }))
    },
    {
      what: "a second record with the live keeper's id, as a reservation with a dead owner",
      reason: new RegExp(`Expected unique agent ids; ${sb.keeper.agent_id} appears twice`),
      doc: withAgents({ ...keeperRecord, status: "reserved", ...deadOwner(sb) })
    },
    {
      what: "a registry whose task_id names the good task",
      reason: new RegExp(`its task_id "${sb.good}" is not its directory's ${sb.bad}`),
      doc: {
        ...sb.valid,
        task_id: sb.good,
        workspace: NodePath.join(sb.home, sb.good),
        agents: [record(sb, "ghost-1", "running"), { ...record(sb, "ghost-2", "reserved"), ...deadOwner(sb) }]
      }
    }
  ]
}

/** Every agent-level hostile record at once (the task_id stays the bad task's). */
const combined = (sb: Sandbox) => ({
  ...sb.valid,
  agents: variants(sb).slice(0, -1).flatMap((v) => v.doc.agents.slice(sb.valid.agents.length))
})

const plant = (sb: Sandbox, doc: unknown) => {
  const bytes = Buffer.from(JSON.stringify(doc, null, 2) + "\n")
  Fs.writeFileSync(sb.badFile, bytes)
  return bytes
}

const json = (out: { stdout: string }) => JSON.parse(out.stdout)
const recordIn = (sb: Sandbox, taskId: string, agentId: string) =>
  JSON.parse(Fs.readFileSync(NodePath.join(sb.home, taskId, "AGENT_REGISTRY.json"), "utf8")).agents.find(
    (a: { id: string }) => a.id === agentId
  )
const paneOf = (sb: Sandbox, session: string) => {
  const [id, pid] = String(sb.tmux("list-panes", "-t", `=${session}:`, "-F", "#{pane_id} #{pane_pid}").stdout).trim()
    .split(" ")
  return { id: id!, pid: Number(pid) }
}
/** The agent process itself (the runner's child running the agent command), so the runner exits with its status. */
const agentProcessOf = (panePid: number) =>
  Number(
    spawnSync("ps", ["-o", "pid=,args=", "--ppid", String(panePid)], { encoding: "utf8" }).stdout.split("\n")
      .find((l) => l.includes("sleep 600"))!.trim().split(/\s+/)[0]
  )

describe("planted hostile records", () => {
  it("each kind makes its task unreadable; reconcile passes leave the task, its sessions and every canary as they were", async () => {
    const { sb } = await setup()
    const sessions = liveSessions(sb.env.socket).sort()
    expect(sessions).toEqual(["canary", sb.keeper.tmux_session, sb.long.tmux_session].sort())
    for (const v of variants(sb)) {
      const bytes = plant(sb, v.doc)
      const before = fileTree(sb.root)
      for (let pass = 0; pass < 2; pass++) {
        const report = await sb.api(Spawnkit.reconcile())
        expect(report, v.what).toMatchObject({ dry_run: false, repairs: [], partial: true })
        expect(report.unreadable, v.what).toEqual([
          { task_id: sb.bad, location: sb.badFile, reason: expect.stringMatching(v.reason), action: "left untouched" }
        ])
      }
      expect(Fs.readFileSync(sb.badFile).equals(bytes), v.what).toBe(true)
      expect(fileTree(sb.root), v.what).toEqual(before)
      expect(liveSessions(sb.env.socket).sort(), v.what).toEqual(sessions)
    }
  })

  it("reconcile (CLI and API), kill, the exit hook and status never act on them, and the good task is still supervised", async () => {
    const { sb, extra } = await setup([{ type: "short", timeoutSeconds: 1 }, { type: "exiting" }])
    const short = extra[0]!
    const exiting = extra[1]!
    const bytes = plant(sb, combined(sb))
    const goodDir = NodePath.join(sb.home, sb.good)
    // The home's event journal grows with the good task's changes; every event in it must be the good task's.
    const journalFile = NodePath.join(sb.home, ".spawnkit-events.jsonl")
    const outsideBut = () =>
      Object.fromEntries(Object.entries(treeOutside(sb.root, goodDir)).filter(([p]) => p !== journalFile))
    const before = outsideBut()
    const journalSize = Fs.existsSync(journalFile) ? Fs.statSync(journalFile).size : 0
    const untouched = (what: string) => {
      expect(Fs.readFileSync(sb.badFile).equals(bytes), what).toBe(true)
      expect(outsideBut(), what).toEqual(before)
      // What was journaled since the records were planted: the good task's changes only.
      const since = Fs.existsSync(journalFile)
        ? Fs.readFileSync(journalFile).subarray(journalSize).toString("utf8")
        : ""
      const journaled = since.trim() === "" ? [] : since.trim().split("\n").map((l) => JSON.parse(l))
      const tasks = new Set(journaled.flatMap((l: any) => (l.events ?? []).map((e: any) => e.task_id)))
      expect([...tasks].filter((t) => t !== sb.good), what).toEqual([])
      for (const c of sb.canaries) expect(Fs.readFileSync(c, "utf8"), `${what}: ${c}`).toBe(`canary ${c}\n`)
    }

    // One pass: the planted task is reported and left alone, and the good task's overdue agent is ended in it.
    await waitFor(
      "the short agent is past its limit",
      () => Date.now() - Date.parse(recordIn(sb, sb.good, short.agent_id).started_at) > 1_200
    )
    const first = sb.run(["reconcile", "--json"])
    expect(first.status, first.stderr).toBe(2)
    expect(json(first)).toEqual({
      dry_run: false,
      repairs: [expect.objectContaining({ kind: "timed_out", task_id: sb.good, agent_id: short.agent_id })],
      unreadable: [{ task_id: sb.bad, location: sb.badFile, reason: expect.any(String), action: "left untouched" }],
      failed: [],
      partial: true,
      worktrees_kept: []
    })
    expect(recordIn(sb, sb.good, short.agent_id)).toMatchObject({ status: "timed_out" })
    const sessions = ["canary", sb.keeper.tmux_session, sb.long.tmux_session, exiting.tmux_session].sort()
    expect(liveSessions(sb.env.socket).sort()).toEqual(sessions)
    untouched("first pass")

    // More passes (a dry run, the text output, the API): each still partial, with nothing to repair.
    for (const args of [["reconcile", "--dry-run", "--json"], ["reconcile"]]) {
      const out = sb.run(args)
      expect(out.status, args.join(" ")).toBe(2)
      if (args.includes("--json")) {
        expect(json(out)).toMatchObject({ repairs: [], partial: true, unreadable: [{ task_id: sb.bad }] })
      } else expect(out.stdout).toContain(`spawnkit task quarantine --task ${sb.bad}`)
    }
    expect(await sb.api(Spawnkit.reconcile())).toMatchObject({
      repairs: [],
      partial: true,
      unreadable: [{ task_id: sb.bad }]
    })
    expect(liveSessions(sb.env.socket).sort()).toEqual(sessions)
    untouched("later passes")

    // kill: the planted task refuses to be changed; a hostile id cannot even be named.
    const killKeeper = sb.run(["kill", "--task", sb.bad, "--agent", sb.keeper.agent_id, "--json"])
    expect(killKeeper.status).toBe(1)
    expect(json(killKeeper).error).toMatchObject({ tag: "RegistryCorrupt" })
    const killTraversal = sb.run(["kill", "--task", sb.bad, "--agent", "../../outside", "--json"])
    expect(json(killTraversal).error).toMatchObject({ tag: "InvalidInput" })
    expect(liveSessions(sb.env.socket).sort()).toEqual(sessions)
    untouched("kill")

    // The exit hook: the good task's agent that exits is recorded by tmux's pane-died hook...
    process.kill(agentProcessOf(paneOf(sb, exiting.tmux_session).pid), "SIGTERM")
    await waitFor(
      "the exit hook recorded the good agent's exit",
      () => recordIn(sb, sb.good, exiting.agent_id).status === "failed"
    )
    expect(recordIn(sb, sb.good, exiting.agent_id).exit.exit_code).toBe(143)
    await waitFor("its session is removed", () => !liveSessions(sb.env.socket).includes(exiting.tmux_session))
    // ...and the planted task's agent that exits is not recorded: its dead pane stays, and so does every byte.
    const keeperPane = paneOf(sb, sb.keeper.tmux_session)
    process.kill(agentProcessOf(keeperPane.pid), "SIGTERM")
    await waitFor(
      "the keeper's pane is dead",
      () =>
        String(sb.tmux("list-panes", "-t", `=${sb.keeper.tmux_session}:`, "-F", "#{pane_dead}").stdout).trim() === "1"
    )
    const socketPath = String(sb.tmux("display-message", "-p", "-t", "=canary:", "#{socket_path}").stdout).trim()
    const hook = sb.run(["agent-exited", "--pane", keeperPane.id, "--socket", socketPath])
    expect(hook.status).toBe(1)
    expect(hook.stderr).toContain("error [RegistryCorrupt]")
    const afterExits = ["canary", sb.keeper.tmux_session, sb.long.tmux_session].sort()
    expect(liveSessions(sb.env.socket).sort()).toEqual(afterExits)
    expect(processAlive(paneOf(sb, sb.long.tmux_session).pid)).toBe(true)
    untouched("exit hook")

    // A pass after the exits: still partial, the planted task's dead session still left alone.
    const after = sb.run(["reconcile", "--json"])
    expect(after.status).toBe(2)
    expect(json(after)).toMatchObject({ repairs: [], partial: true })
    expect(liveSessions(sb.env.socket).sort()).toEqual(afterExits)

    // Listings go on past it, naming it.
    for (const args of [["status", "--json"], ["status", "--all", "--json"]]) {
      const out = sb.run(args)
      expect(out.status, args.join(" ")).toBe(0)
      const page = json(out)
      expect(page.tasks.map((t: { task_id: string }) => t.task_id), args.join(" ")).toEqual([sb.good])
      expect(page.unreadable, args.join(" ")).toEqual([{
        task_id: sb.bad,
        location: sb.badFile,
        reason: expect.any(String)
      }])
    }
    untouched("status")
  })
})

describe("a planted task that holds no active marker", () => {
  it("is still read, reported and left untouched when one of its sessions names it", async () => {
    const { sb } = await setup()
    // As after a kill recorded (the marker goes with the task's last active record) whose process died before it
    // stopped the session: the agent lives on, and rewrites its registry.
    Fs.rmSync(NodePath.join(sb.home, ".spawnkit-active", sb.bad))
    const bytes = plant(sb, combined(sb))
    const before = fileTree(sb.root)
    const sessions = liveSessions(sb.env.socket).sort()
    for (let pass = 0; pass < 2; pass++) {
      const report = await sb.api(Spawnkit.reconcile())
      expect(report).toEqual({
        dry_run: false,
        repairs: [],
        unreadable: [{ task_id: sb.bad, location: sb.badFile, reason: expect.any(String), action: "left untouched" }],
        failed: [],
        partial: true,
        worktrees_kept: []
      })
    }
    expect(liveSessions(sb.env.socket).sort()).toEqual(sessions)
    expect(Fs.readFileSync(sb.badFile).equals(bytes)).toBe(true)
    expect(fileTree(sb.root)).toEqual(before)
  })
})

describe("directories an agent made in its task directory", () => {
  it("named like an agent file or a registry temp file, end no reconcile pass and are left, while files still go", async () => {
    const env = newEnv()
    const { taskId, held } = await runIn(
      env,
      Effect.gen(function*() {
        const task = yield* Spawnkit.createTask({ description: "dirs" })
        const held = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "holder", prompt: "p" })
        return { taskId: task.task_id, held }
      })
    )
    const dir = NodePath.join(env.home, taskId)
    const deadPid = spawnSync("true").pid!
    const dirs = [
      NodePath.join(dir, "prompts", "ghost-9.prompt"),
      NodePath.join(dir, `AGENT_REGISTRY.json.tmp-${deadPid}-abcdef12`)
    ]
    for (const d of dirs) {
      Fs.mkdirSync(d)
      Fs.writeFileSync(NodePath.join(d, "inside"), "kept")
    }
    const orphan = NodePath.join(dir, "prompts", "ghost-8.prompt")
    Fs.writeFileSync(orphan, "x")

    const out = cli(env, ["reconcile", "--json"])
    expect(out.status, out.stdout + out.stderr).toBe(0)
    expect(json(out)).toEqual({
      dry_run: false,
      repairs: [{
        kind: "removed_orphan_file",
        task_id: taskId,
        agent_id: "ghost-8",
        target: orphan,
        reason: "no active agent owns it"
      }],
      unreadable: [],
      failed: [],
      partial: false,
      worktrees_kept: []
    })
    expect(Fs.existsSync(orphan)).toBe(false)
    for (const d of dirs) expect(Fs.readFileSync(NodePath.join(d, "inside"), "utf8")).toBe("kept")
    expect(liveSessions(env.socket)).toEqual([held.tmux_session])
    expect(json(cli(env, ["reconcile", "--json"])).repairs).toEqual([])
  })
})

describe("admission with a corrupt active task", () => {
  it("fails closed with RegistryCorrupt naming the task and the way out, creating nothing, until it is quarantined", async () => {
    const env = newEnv()
    const api = <A, E>(effect: Effect.Effect<A, E, Spawnkit.Services>) =>
      Effect.runPromise(effect.pipe(Effect.provide(env.layer())))
    const { a, b, held } = await api(Effect.gen(function*() {
      const a = (yield* Spawnkit.createTask({ description: "A" })).task_id
      const b = (yield* Spawnkit.createTask({ description: "B" })).task_id
      // A holds a slot, so it is marked active and its slots count against the global limit.
      const held = yield* Spawnkit.spawn({ taskId: a, agentType: "holder", prompt: "p" })
      return { a, b, held }
    }))
    const aFile = NodePath.join(env.home, a, "AGENT_REGISTRY.json")
    const bytes = Buffer.from(Fs.readFileSync(aFile, "utf8").replace(`"status": "running"`, `"status": "owned"`))
    Fs.writeFileSync(aFile, bytes)
    // The holder's runner creates its log once tmux has started it, which may be after the spawn returned.
    await waitFor("the holder's log", () => Fs.existsSync(NodePath.join(env.home, a, "logs", `${held.agent_id}.log`)))
    const before = fileTree(env.home)

    // The global count cannot be proven while A may hold slots: a spawn into B is refused, not admitted on a guess.
    const refused = await Effect.runPromiseExit(
      Spawnkit.spawn({ taskId: b, agentType: "worker", prompt: "p" }).pipe(Effect.provide(env.layer()))
    )
    expect(refused._tag).toBe("Failure")
    const error = refused._tag === "Failure" ? Cause.findErrorOption(refused.cause) : undefined
    expect(error).toMatchObject({ _tag: "Some", value: { _tag: "RegistryCorrupt", taskId: a, path: aFile } })
    const corrupt = (error as { value: Spawnkit.RegistryCorrupt }).value
    expect(corrupt.message).toContain(`spawnkit task quarantine --task ${a}`)
    expect(fileTree(env.home)).toEqual(before)
    expect(liveSessions(env.socket)).toEqual([held.tmux_session])

    const out = cli(env, ["task", "quarantine", "--task", a, "--json"])
    expect(out.status, out.stderr).toBe(0)
    expect(json(out)).toMatchObject({ task_id: a, stopped_sessions: [held.tmux_session] })

    const admitted = await api(Spawnkit.spawn({ taskId: b, agentType: "worker", prompt: "p" }))
    expect(admitted).toMatchObject({ task_id: b, status: "running", existing: false })
    expect(liveSessions(env.socket)).toEqual([admitted.tmux_session])
    expect(Fs.readFileSync(json(out).kept_at).equals(bytes)).toBe(true)
  })
})

describe("task quarantine", () => {
  it("sets the planted task aside byte-identical, stops its sessions only, and reconcile is whole again", async () => {
    const { sb } = await setup()
    const bytes = plant(sb, combined(sb))
    // The agent also wrote into its prompts directory: a directory (which must not block the way out) and a file
    // that is no agent's prompt or MCP config (which is not quarantine's to remove).
    const prompts = NodePath.join(sb.home, sb.bad, "prompts")
    Fs.mkdirSync(NodePath.join(prompts, "x.prompt"))
    Fs.writeFileSync(NodePath.join(prompts, "x.prompt", "inside"), "kept")
    Fs.writeFileSync(NodePath.join(prompts, "notes.txt"), "kept")
    expect(sb.run(["reconcile", "--json"]).status).toBe(2)
    const before = fileTree(sb.root)

    const out = sb.run(["task", "quarantine", "--task", sb.bad, "--json"])
    expect(out.status, out.stderr).toBe(0)
    const result = json(out)
    const keeperPrompt = NodePath.join(sb.home, sb.bad, "prompts", `${sb.keeper.agent_id}.prompt`)
    expect(result).toEqual({
      task_id: sb.bad,
      kept_at: expect.stringMatching(new RegExp(`^${sb.home}/\\.spawnkit-quarantine/${sb.bad}\\..+\\.json$`)),
      stopped_sessions: [sb.keeper.tmux_session],
      removed_files: [keeperPrompt]
    })
    expect(Fs.readFileSync(result.kept_at).equals(bytes)).toBe(true)
    expect(liveSessions(sb.env.socket).sort()).toEqual(["canary", sb.long.tmux_session].sort())

    // Exactly this changed: the registry moved into the quarantine, the keeper's prompt and the task's marker went.
    const expected = { ...before }
    delete expected[sb.badFile]
    delete expected[keeperPrompt]
    delete expected[NodePath.join(sb.home, ".spawnkit-active", sb.bad)]
    expected[NodePath.join(sb.home, ".spawnkit-quarantine")] = "dir"
    expected[result.kept_at] = before[sb.badFile]!
    expect(fileTree(sb.root)).toEqual(expected)

    const pass = sb.run(["reconcile", "--json"])
    expect(pass.status, pass.stderr).toBe(0)
    expect(json(pass)).toEqual({
      dry_run: false,
      repairs: [],
      unreadable: [],
      failed: [],
      partial: false,
      worktrees_kept: []
    })
    expect(json(sb.run(["status", "--all", "--json"])).unreadable).toEqual([])
    expect(fileTree(sb.root)).toEqual(expected)
  })

  it("refuses a task that decodes with TaskNotCorrupt and changes nothing", async () => {
    const { sb } = await setup()
    plant(sb, combined(sb))
    const before = fileTree(sb.root)
    const sessions = liveSessions(sb.env.socket).sort()
    const out = sb.run(["task", "quarantine", "--task", sb.good, "--json"])
    expect(out.status).toBe(1)
    expect(json(out).error).toMatchObject({
      tag: "TaskNotCorrupt",
      message: expect.stringContaining(`task ${sb.good} decodes`)
    })
    expect(fileTree(sb.root)).toEqual(before)
    expect(liveSessions(sb.env.socket).sort()).toEqual(sessions)
  })
})
