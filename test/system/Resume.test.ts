/**
 * Resuming an ended agent's conversation, end to end with the custom engine and bin/conversation-agent.mjs (a stand-in
 * CLI that keeps each conversation in a store file, one line per turn with its prompt and working directory, and
 * resumes it by id, as Claude Code does with --session-id and --resume):
 *
 * - a killed agent resumed with a prompt is a new record (resumed_from, same type, parent, engine and limits) whose CLI
 *   continues the same conversation (turn 2), and the resumed agent can be resumed in turn (turn 3);
 * - with isolation worktree it works in the worktree of the agent it resumes, kept because it held work, on the same
 *   branch; a worktree removed (its branch kept) is made again at the same place from the branch;
 * - a resume is a spawn: it counts against max_concurrent, and is idempotent with a key;
 * - refusals change nothing: a running, reserved or completed agent, or one another agent resumes already;
 * - a conversation the CLI no longer has: the resumed agent is recorded failed, saying so, and owns nothing after;
 * - an id from a record or a log that is not usable never reaches a command line.
 *
 * The API runs in this process; the CLI (`spawnkit resume`, text and --json) and the MCP tools (resume_agent,
 * list_agent_branches) are the built ones. Needs `npm run build` first.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { resume, type ResumeInput } from "../../src/lifecycle/Resume.js"
import {
  cli,
  gatedTmux,
  liveSessions,
  makeTempDir,
  makeTestEnv,
  promptFiles,
  readRegistryFile,
  stdoutJson,
  type TestEnv,
  waitFor
} from "../support/Harness.js"
import { disposeEnv, killServers, ok, type Served, startBroker, startStdio } from "../support/Mcp.js"

const ROOT = NodePath.resolve(import.meta.dirname, "..", "..")
const CONVERSATION_AGENT = NodePath.join(ROOT, "bin", "conversation-agent.mjs")
const AFTER_COMMIT = NodePath.join(ROOT, "test", "support", "after-commit.mjs")
const NODE = process.execPath
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const envs: Array<TestEnv> = []
const dirs: Array<string> = []
const servers: Array<Served> = []
afterEach(async () => {
  await killServers(servers.splice(0))
  for (const env of envs.splice(0)) await disposeEnv(env)
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

const tempDir = (prefix: string) => {
  const dir = makeTempDir(prefix)
  dirs.push(dir)
  return dir
}

/** The conversation agent's command lines for a store directory: a new conversation, and a resume. */
const conversationCommands = (store: string) => ({
  start: `${NODE} ${CONVERSATION_AGENT} --store ${store} --session-id {session_id} --stay`,
  resume: `${NODE} ${CONVERSATION_AGENT} --store ${store} --resume {session_id} --stay`
})

/**
 * A test environment whose agents are conversation agents (Claude-shaped output): the API runs on its layer, the
 * CLI and the MCP server get the same settings through `vars`.
 */
const makeLab = (commands: (store: string) => { start: string; resume: string } = conversationCommands) => {
  const store = tempDir("sk-conv-")
  const { start, resume: resumeCommand } = commands(store)
  const env = makeTestEnv(start)
  envs.push(env)
  const settings = (extra: Partial<Spawnkit.SpawnkitSettings> = {}) =>
    env.layer({
      agentCommand: Option.some(start),
      agentResumeCommand: Option.some(resumeCommand),
      agentFormat: "claude",
      ...extra
    })
  const run = <A, E>(effect: Effect.Effect<A, E, Spawnkit.Services>, extra?: Partial<Spawnkit.SpawnkitSettings>) =>
    Effect.runPromise(effect.pipe(Effect.provide(settings(extra))))
  /** Run an effect that must fail; its error. */
  const refused = async <A, E>(effect: Effect.Effect<A, E, Spawnkit.Services>) => {
    const result = await run(Effect.result(effect))
    if (result._tag === "Success") throw new Error(`expected a failure, got ${JSON.stringify(result.success)}`)
    return result.failure as E & { readonly _tag: string; readonly message: string }
  }
  const vars = { SPAWNKIT_AGENT_RESUME_COMMAND: resumeCommand, SPAWNKIT_AGENT_FORMAT: "claude" }
  return { env, store, run, refused, vars }
}
type Lab = ReturnType<typeof makeLab>

const agentOf = (env: TestEnv, taskId: string, agentId: string): any => {
  const agent = readRegistryFile(env.home, taskId).agents.find((a: any) => a.id === agentId)
  if (agent === undefined) throw new Error(`no agent ${agentId} in ${taskId}`)
  return agent
}

const logOf = (env: TestEnv, taskId: string, agentId: string) => {
  try {
    return Fs.readFileSync(NodePath.join(env.home, taskId, "logs", `${agentId}.log`), "utf8")
  } catch {
    return ""
  }
}

const waitLog = (env: TestEnv, taskId: string, agentId: string, text: string) =>
  waitFor(`log of ${agentId} shows "${text}"`, () => logOf(env, taskId, agentId).includes(text)).catch((e) => {
    throw new Error(`${e.message}; log: ${logOf(env, taskId, agentId)}`)
  })

/** The session id of the Claude-shaped init line an agent printed. */
const initSessionOf = (env: TestEnv, taskId: string, agentId: string): string | undefined =>
  logOf(env, taskId, agentId).split("\n").flatMap((line) => {
    try {
      const event = JSON.parse(line)
      return event.type === "system" && event.subtype === "init" ? [event.session_id as string] : []
    } catch {
      return []
    }
  })[0]

/** The turns of a conversation in the store: prompt and working directory of each. */
const turnsOf = (store: string, sessionId: string): Array<{ prompt: string; cwd: string }> => {
  const file = NodePath.join(store, `${sessionId}.jsonl`)
  return Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
    : []
}

/** What a refused resume must leave as it was. */
const snapshot = (env: TestEnv, taskId: string) => {
  const task = readRegistryFile(env.home, taskId)
  return {
    agents: task.agents,
    active_count: task.active_count,
    total_spawned: task.total_spawned,
    sessions: liveSessions(env.socket).sort(),
    prompts: promptFiles(env.home, taskId).sort()
  }
}

const newTask = (lab: Lab, fields: Record<string, unknown> = {}) =>
  lab.run(Spawnkit.createTask({ description: "resume", ...fields })).then((t) => t.task_id as string)

/** Spawn a conversation agent and wait until it has had its first turn. */
const spawnTalking = async (lab: Lab, taskId: string, input: Partial<Spawnkit.SpawnInput> = {}) => {
  const prompt = input.prompt ?? `first turn of ${randomUUID().slice(0, 8)}`
  const spawned = await lab.run(Spawnkit.spawn({ taskId, agentType: "writer", ...input, prompt }))
  await waitLog(lab.env, taskId, spawned.agent_id, `turn 1: ${prompt}`)
  return spawned
}

const killAgent = (lab: Lab, taskId: string, agentId: string) => lab.run(Spawnkit.kill(taskId, agentId))

const resumeAgent = (lab: Lab, input: ResumeInput) => lab.run(resume(input))

const git = (cwd: string, ...args: ReadonlyArray<string>) => {
  const r = spawnSync("git", args, { cwd, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`git ${args.join(" ")} in ${cwd}: ${r.stdout}${r.stderr}`)
  return r.stdout.trim()
}

/** A git repository with one commit, its own identity and no signing. */
const makeRepo = () => {
  const repo = Fs.realpathSync(tempDir("sk-repo-"))
  git(repo, "init", "-q", "-b", "main")
  git(repo, "config", "user.name", "spawnkit test")
  git(repo, "config", "user.email", "test@spawnkit.invalid")
  git(repo, "config", "commit.gpgsign", "false")
  Fs.writeFileSync(NodePath.join(repo, "README.md"), "project\n")
  git(repo, "add", "README.md")
  git(repo, "commit", "-q", "-m", "initial")
  return repo
}

// ---------------------------------------------------------------------------------------------------------------------

describe("resuming a conversation (custom engine)", () => {
  it("continues it in a new agent with the same type, parent, engine and limits, and that one can be resumed too", async () => {
    const lab = makeLab()
    const { env, store } = lab
    const taskId = await newTask(lab)
    const lead = await spawnTalking(lab, taskId, { agentType: "lead", prompt: "lead the work" })
    const first = await spawnTalking(lab, taskId, {
      prompt: "write the first part",
      parent: lead.agent_id as Spawnkit.AgentId,
      timeoutSeconds: 900,
      stallTimeoutSeconds: 600,
      maxTokens: 500_000
    })
    const sessionId = agentOf(env, taskId, first.agent_id).session_id
    expect(sessionId).toMatch(UUID)
    expect(initSessionOf(env, taskId, first.agent_id)).toBe(sessionId)
    expect(await killAgent(lab, taskId, first.agent_id)).toMatchObject({ status: "killed", killed: true })

    const second = await resumeAgent(lab, { taskId, agentId: first.agent_id, prompt: "now the second part" })
    expect(second).toMatchObject({
      task_id: taskId,
      status: "running",
      parent: lead.agent_id,
      depth: 2,
      existing: false,
      resumed_from: first.agent_id
    })
    expect(second.agent_id).not.toBe(first.agent_id)
    expect(agentOf(env, taskId, second.agent_id)).toMatchObject({
      type: "writer",
      parent: lead.agent_id,
      engine: "custom",
      status: "running",
      resumed_from: first.agent_id,
      session_id: sessionId,
      timeout_seconds: 900,
      stall_timeout_seconds: 600,
      budget: { max_tokens: 500_000 },
      output_format: "claude"
    })
    await waitLog(env, taskId, second.agent_id, "turn 2: now the second part")
    expect(initSessionOf(env, taskId, second.agent_id)).toBe(sessionId)
    expect(turnsOf(store, sessionId).map((t) => t.prompt)).toEqual(["write the first part", "now the second part"])
    // The old record is left as it ended.
    expect(agentOf(env, taskId, first.agent_id)).toMatchObject({ status: "killed", session_id: sessionId })

    // The resumed agent, killed, is resumed in turn: through the CLI, its text output.
    await killAgent(lab, taskId, second.agent_id)
    const out = cli(
      env,
      ["resume", "--task", taskId, "--agent", second.agent_id, "--prompt", "and the third"],
      lab.vars
    )
    expect(out.status, out.stdout + out.stderr).toBe(0)
    const line = /^(\S+) {2}session (\S+) {2}resumes (\S+)$/.exec(out.stdout.trim())
    expect(line, out.stdout).not.toBeNull()
    const [, thirdId, session, from] = line!
    expect(from).toBe(second.agent_id)
    expect(session).toBe(`agent_${thirdId}`)
    await waitLog(env, taskId, thirdId!, "turn 3: and the third")
    expect(agentOf(env, taskId, thirdId!)).toMatchObject({
      type: "writer",
      parent: lead.agent_id,
      status: "running",
      resumed_from: second.agent_id,
      session_id: sessionId
    })
    expect(turnsOf(store, sessionId)).toHaveLength(3)
    expect(liveSessions(env.socket).sort()).toEqual([lead.tmux_session, `agent_${thirdId}`].sort())
    expect(readRegistryFile(env.home, taskId).active_count).toBe(2)
  })

  it("works in the worktree of the agent it resumes: kept for its work, same path and branch, made again if removed", async () => {
    const lab = makeLab((store) => ({
      start: `sh -c 'touch left-by-agent; exec ${NODE} ${CONVERSATION_AGENT} --store ${store} ` +
        `--session-id {session_id} --stay'`,
      // Each resumed run first commits what it finds (nothing, the second time).
      resume: `sh -c 'git add -A && git commit -q -m "resumed work"; exec ${NODE} ${CONVERSATION_AGENT} ` +
        `--store ${store} --resume {session_id} --stay'`
    }))
    const { env, store } = lab
    const repo = makeRepo()
    const taskId = await newTask(lab, { working_directory: repo, isolation: "worktree" })
    const first = await spawnTalking(lab, taskId, { prompt: "start the work" })
    const path = NodePath.join(env.home, ".spawnkit-worktrees", taskId, first.agent_id)
    const branch = `spawnkit/${first.agent_id}`
    const sessionId = agentOf(env, taskId, first.agent_id).session_id
    const baseCommit = git(repo, "rev-parse", "HEAD")
    expect(agentOf(env, taskId, first.agent_id).worktree).toMatchObject({
      id: first.agent_id,
      state: "active",
      base_commit: baseCommit
    })
    // The agent's own view of its directory (the same unless the temp directory is behind a symlink).
    const cwd = Fs.realpathSync(path)
    expect(turnsOf(store, sessionId)[0]!.cwd).toBe(cwd)

    // Killed holding work (an untracked file): its worktree is kept.
    await killAgent(lab, taskId, first.agent_id)
    expect(agentOf(env, taskId, first.agent_id).worktree).toMatchObject({ id: first.agent_id, state: "kept" })
    expect(Fs.existsSync(NodePath.join(path, "left-by-agent"))).toBe(true)

    const second = await resumeAgent(lab, { taskId, agentId: first.agent_id, prompt: "commit what you left" })
    await waitLog(env, taskId, second.agent_id, "turn 2: commit what you left")
    expect(agentOf(env, taskId, second.agent_id).worktree).toEqual({
      ...agentOf(env, taskId, first.agent_id).worktree,
      state: "active"
    })
    expect(turnsOf(store, sessionId).map((t) => t.cwd)).toEqual([cwd, cwd])
    expect(git(path, "rev-parse", "--abbrev-ref", "HEAD")).toBe(branch)
    expect(git(repo, "log", "-1", "--format=%s", branch)).toBe("resumed work")
    expect(git(repo, "show", "--name-only", "--format=", branch)).toBe("left-by-agent")
    const worktrees = git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree "))
    expect(worktrees).toEqual([`worktree ${repo}`, `worktree ${path}`])

    // Killed again, one commit ahead: kept, and listed for a merge with that commit.
    await killAgent(lab, taskId, second.agent_id)
    expect(agentOf(env, taskId, second.agent_id).worktree.state).toBe("kept")
    const served = await startStdio(env, lab.vars)
    servers.push(served)
    const listed = await ok(served.client, "list_agent_branches", { task_id: taskId })
    expect(listed.branches).toHaveLength(1)
    expect(listed.branches[0]).toMatchObject({
      agent_id: second.agent_id,
      status: "killed",
      branch,
      path,
      state: "kept",
      base_commit: baseCommit,
      exists: true,
      ahead: 1,
      dirty: false,
      holds_work: true
    })
    expect(listed.branches[0].commits).toEqual([{ sha: git(repo, "rev-parse", branch), subject: "resumed work" }])

    // Its directory removed by hand, its branch kept: the resume (through MCP) makes it again there, from the branch.
    git(repo, "worktree", "remove", "--force", path)
    expect(Fs.existsSync(path)).toBe(false)
    const third = await ok(served.client, "resume_agent", {
      task_id: taskId,
      agent_id: second.agent_id,
      prompt: "carry on"
    })
    expect(third).toMatchObject({ resumed_from: second.agent_id, status: "running", existing: false })
    await waitLog(env, taskId, third.agent_id, "turn 3: carry on")
    expect(turnsOf(store, sessionId).map((t) => t.cwd)).toEqual([cwd, cwd, cwd])
    expect(git(path, "rev-parse", "--abbrev-ref", "HEAD")).toBe(branch)
    expect(git(path, "log", "-1", "--format=%s")).toBe("resumed work")
    expect(Fs.existsSync(NodePath.join(path, "left-by-agent"))).toBe(true)
    expect(agentOf(env, taskId, third.agent_id).worktree).toMatchObject({ id: first.agent_id, state: "active" })
  })

  it("counts against max_concurrent: refused with LimitReached while the slot is taken, admitted once it is free", async () => {
    const lab = makeLab()
    const { env } = lab
    const taskId = await newTask(lab, { max_concurrent: 1 })
    const ended = await spawnTalking(lab, taskId)
    await killAgent(lab, taskId, ended.agent_id)
    const busy = await spawnTalking(lab, taskId, { agentType: "other" })

    const before = snapshot(env, taskId)
    const error = await lab.refused(resume({ taskId, agentId: ended.agent_id, prompt: "go on" }))
    expect(error._tag).toBe("LimitReached")
    expect(error).toMatchObject({ limit: "max_concurrent" })
    expect(snapshot(env, taskId)).toEqual(before)
    expect(before.sessions).toEqual([busy.tmux_session])

    await killAgent(lab, taskId, busy.agent_id)
    const resumed = await resumeAgent(lab, { taskId, agentId: ended.agent_id, prompt: "go on" })
    expect(resumed).toMatchObject({ status: "running", resumed_from: ended.agent_id })
    await waitLog(env, taskId, resumed.agent_id, "turn 2: go on")
    expect(readRegistryFile(env.home, taskId).active_count).toBe(1)
  })

  it("refuses a running, a reserved and a completed agent, and one another agent resumes already, changing nothing", async () => {
    const lab = makeLab()
    const { env, store } = lab
    const taskId = await newTask(lab)
    const agent = await spawnTalking(lab, taskId)

    let before = snapshot(env, taskId)
    const running = await lab.refused(resume({ taskId, agentId: agent.agent_id }))
    expect(running._tag).toBe("NotResumable")
    expect(running.message).toContain("it is running")
    expect(snapshot(env, taskId)).toEqual(before)

    await killAgent(lab, taskId, agent.agent_id)
    const first = await resumeAgent(lab, { taskId, agentId: agent.agent_id, prompt: "once" })
    before = snapshot(env, taskId)
    const twice = await lab.refused(resume({ taskId, agentId: agent.agent_id, prompt: "twice" }))
    expect(twice._tag).toBe("NotResumable")
    expect(twice.message).toContain(`agent ${first.agent_id} resumes it already and is running`)
    expect(snapshot(env, taskId)).toEqual(before)

    // The resumed agent, killed and resumed in turn: the conversation runs again in a third agent, so the first one
    // (whose direct resumer has ended) is not resumed beside it either.
    await waitLog(env, taskId, first.agent_id, "turn 2: once")
    await killAgent(lab, taskId, first.agent_id)
    const chained = await resumeAgent(lab, { taskId, agentId: first.agent_id, prompt: "chained" })
    await waitLog(env, taskId, chained.agent_id, "turn 3: chained")
    before = snapshot(env, taskId)
    const beside = await lab.refused(resume({ taskId, agentId: agent.agent_id, prompt: "beside" }))
    expect(beside._tag).toBe("NotResumable")
    expect(beside.message).toContain(`agent ${chained.agent_id} continues its conversation already and is running`)
    expect(snapshot(env, taskId)).toEqual(before)
    expect(turnsOf(store, agentOf(env, taskId, agent.agent_id).session_id).map((t) => t.prompt)).toEqual([
      expect.stringContaining("first turn of"),
      "once",
      "chained"
    ])

    // An agent that completed (exit 0).
    const oneTurn = `${NODE} ${CONVERSATION_AGENT} --store ${store} --session-id {session_id}`
    const done = await lab.run(Spawnkit.spawn({ taskId, agentType: "done", prompt: "one turn" }), {
      agentCommand: Option.some(oneTurn)
    })
    await waitFor("the one-turn agent completed", () => agentOf(env, taskId, done.agent_id).status === "completed")
    // The exit is recorded before the runner's shell returns, so the session may still be closing.
    await waitFor("the one-turn agent's session closed", () => !liveSessions(env.socket).includes(done.tmux_session))
    before = snapshot(env, taskId)
    const completed = await lab.refused(resume({ taskId, agentId: done.agent_id }))
    expect(completed._tag).toBe("NotResumable")
    expect(completed.message).toContain("it completed")
    expect(snapshot(env, taskId)).toEqual(before)

    // A reservation (its spawn held at the tmux step).
    const gate = gatedTmux(tempDir("sk-gate-"))
    const held = lab.run(Spawnkit.spawn({ taskId, agentType: "held", prompt: "held" }), { tmuxBin: gate.bin })
    await waitFor("the held spawn reaches tmux", () => gate.arrivals() === 1)
    const reservation = readRegistryFile(env.home, taskId).agents.find((a: any) => a.type === "held")
    expect(reservation.status).toBe("reserved")
    const reserved = await lab.refused(resume({ taskId, agentId: reservation.id }))
    expect(reserved._tag).toBe("NotResumable")
    expect(reserved.message).toContain("it is reserved")
    gate.open()
    expect(await held).toMatchObject({ agent_id: reservation.id, status: "running" })
    expect(
      readRegistryFile(env.home, taskId).agents.filter((a: any) => a.resumed_from !== undefined).map((a: any) => a.id)
    ).toEqual([first.agent_id, chained.agent_id])
  })

  it("is idempotent with a key: the same key again returns the agent resumed the first time", async () => {
    const lab = makeLab()
    const { env, store } = lab
    const taskId = await newTask(lab)
    const agent = await spawnTalking(lab, taskId)
    await killAgent(lab, taskId, agent.agent_id)
    const request = { taskId, agentId: agent.agent_id, prompt: "resume once", idempotencyKey: "resume-once" }
    const first = await resumeAgent(lab, request)
    expect(first).toMatchObject({ existing: false, resumed_from: agent.agent_id })
    const again = await resumeAgent(lab, request)
    expect(again).toEqual({ ...first, existing: true })
    // The CLI's --json, with the same key.
    const out = cli(env, [
      "resume",
      "--task",
      taskId,
      "--agent",
      agent.agent_id,
      "--prompt",
      "resume once",
      "--idempotency-key",
      "resume-once",
      "--json"
    ], lab.vars)
    expect(out.status, out.stdout + out.stderr).toBe(0)
    expect(stdoutJson(out)).toEqual({ ...first, existing: true })
    await waitLog(env, taskId, first.agent_id, "turn 2: resume once")
    expect(readRegistryFile(env.home, taskId).agents.map((a: any) => a.id)).toEqual([agent.agent_id, first.agent_id])
    expect(turnsOf(store, agentOf(env, taskId, agent.agent_id).session_id)).toHaveLength(2)
    expect(liveSessions(env.socket)).toEqual([first.tmux_session])
  })

  it("records a resume whose conversation is gone as failed, saying so, and leaves nothing running", async () => {
    const lab = makeLab((store) => ({
      ...conversationCommands(store),
      // Started only once its spawn committed: it exits at once, and must be recorded, not refused at start-up.
      resume: `${NODE} ${AFTER_COMMIT} -- ${NODE} ${CONVERSATION_AGENT} --store ${store} --resume {session_id}`
    }))
    const { env, store } = lab
    const taskId = await newTask(lab)
    const agent = await spawnTalking(lab, taskId)
    const sessionId = agentOf(env, taskId, agent.agent_id).session_id
    await killAgent(lab, taskId, agent.agent_id)
    Fs.rmSync(NodePath.join(store, `${sessionId}.jsonl`))

    const resumed = await resumeAgent(lab, { taskId, agentId: agent.agent_id, prompt: "go on" })
    expect(resumed).toMatchObject({ status: "running", resumed_from: agent.agent_id })
    const record = await waitFor("the resumed agent's exit recorded", () => {
      const r = agentOf(env, taskId, resumed.agent_id)
      return r.status !== "running" ? r : undefined
    })
    expect(record.status).toBe("failed")
    expect(record.exit.exit_code).toBe(1)
    expect(record.reason).toBe(
      `the conversation to resume is gone (exited with code 1): No conversation found with session ID: ${sessionId}`
    )
    await waitFor("no session left", () => liveSessions(env.socket).length === 0)
    const task = readRegistryFile(env.home, taskId)
    expect(task.active_count).toBe(0)
    expect(task.agents.filter((a: any) => a.status === "reserved" || a.reservation !== undefined)).toEqual([])
    expect(promptFiles(env.home, taskId)).toEqual([])
    expect(Fs.existsSync(NodePath.join(store, `${sessionId}.jsonl`))).toBe(false)
  })
})

describe("resuming with a conversation id that is not usable", () => {
  it("refuses a registry whose recorded session id is an option (RegistryCorrupt), leaving its bytes alone", async () => {
    const lab = makeLab()
    const { env } = lab
    const taskId = await newTask(lab)
    const agent = await spawnTalking(lab, taskId)
    await killAgent(lab, taskId, agent.agent_id)
    const file = NodePath.join(env.home, taskId, "AGENT_REGISTRY.json")
    const task = readRegistryFile(env.home, taskId)
    task.agents[0].session_id = "--upload-pack=touch /tmp/spawnkit-pwned"
    Fs.writeFileSync(file, JSON.stringify(task, null, 2))
    const bytes = Fs.readFileSync(file)

    const error = await lab.refused(resume({ taskId, agentId: agent.agent_id }))
    expect(error._tag).toBe("RegistryCorrupt")
    expect(error.message).toContain("session_id")
    expect(Fs.readFileSync(file).equals(bytes)).toBe(true)
    expect(liveSessions(env.socket)).toEqual([])
    expect(promptFiles(env.home, taskId)).toEqual([])
  })

  it("refuses a Codex agent whose thread id is no UUID (NotResumable) and runs nothing; a UUID one is resumed", async () => {
    // A stand-in `codex` on PATH: it notes its argv, prints the thread id in ./thread-id as Codex's first JSON line
    // does, and stays until killed.
    const fake = tempDir("sk-fake-codex-")
    const runs = NodePath.join(fake, "runs")
    Fs.writeFileSync(
      NodePath.join(fake, "codex"),
      `#!/usr/bin/env bash
'${NODE}' -e 'require("fs").appendFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)) + "\\n")' '${runs}' "$@"
printf '{"type":"thread.started","thread_id":"%s"}\\n' "$(cat '${fake}/thread-id')"
exec sleep 600
`,
      { mode: 0o755 }
    )
    const env = makeTestEnv()
    envs.push(env)
    const vars = { PATH: `${fake}:${process.env["PATH"]}` }
    const broker = await startBroker(env, { ...process.env as Record<string, string>, ...vars })
    const sk = (...args: Array<string>) => {
      const out = cli(env, [...args, "--json"], vars)
      return { status: out.status, json: JSON.parse(out.stdout), text: out.stdout + out.stderr }
    }
    const runsOf = () => (Fs.existsSync(runs) ? Fs.readFileSync(runs, "utf8").split("\n").filter((l) => l) : [])
    const taskId = sk("task", "create", "--description", "codex resume").json.task_id
    const codexAgent = async (threadId: string) => {
      Fs.writeFileSync(NodePath.join(fake, "thread-id"), threadId)
      const spawned = sk(
        "spawn",
        "--task",
        taskId,
        "--type",
        "coder",
        "--prompt",
        `thread ${threadId}`,
        "--engine",
        "codex"
      )
      expect(spawned.status, spawned.text).toBe(0)
      await waitLog(env, taskId, spawned.json.agent_id, `"thread_id":"${threadId}"`)
      expect(sk("kill", "--task", taskId, "--agent", spawned.json.agent_id).json.status).toBe("killed")
      return spawned.json.agent_id as string
    }
    // Metering reads the thread ids from the logs into the records (usage.session_id), as the supervisor does.
    const meter = () =>
      Effect.runPromise(
        Effect.flatMap(Spawnkit.loadPrices, (prices) => Spawnkit.meterTask(taskId as Spawnkit.TaskId, prices)).pipe(
          Effect.provide(env.layer())
        )
      )

    for (const threadId of ["--upload-pack=touch /tmp/spawnkit-pwned", "a-thread-name"]) {
      const agentId = await codexAgent(threadId)
      await meter()
      expect(agentOf(env, taskId, agentId)).toMatchObject({ engine: "codex", usage: { session_id: threadId } })
      expect(agentOf(env, taskId, agentId).session_id).toBeUndefined()
      const before = snapshot(env, taskId)
      const runsBefore = runsOf()
      const refused = sk("resume", "--task", taskId, "--agent", agentId)
      expect(refused.status, refused.text).toBe(1)
      expect(refused.json.error.tag).toBe("NotResumable")
      expect(refused.json.error.message).toContain("conversation id is unknown")
      expect(snapshot(env, taskId)).toEqual(before)
      expect(runsOf()).toEqual(runsBefore)
    }

    // The control: a UUID thread id is resumed with `codex exec … resume <id> -`.
    const thread = randomUUID()
    const agentId = await codexAgent(thread)
    const resumed = sk("resume", "--task", taskId, "--agent", agentId, "--prompt", "go on")
    expect(resumed.status, resumed.text).toBe(0)
    expect(resumed.json).toMatchObject({ resumed_from: agentId, status: "running" })
    const argv = await waitFor("the resumed codex runs", () => runsOf().length === 4 && JSON.parse(runsOf()[3]!))
    expect(argv).toEqual([
      "-c",
      `mcp_servers.spawnkit.url="${broker.url}"`,
      "-c",
      `mcp_servers.spawnkit.bearer_token_env_var="SPAWNKIT_AGENT_TOKEN"`,
      "exec",
      "--json",
      "--sandbox",
      "workspace-write",
      "--skip-git-repo-check",
      "resume",
      thread,
      "-"
    ])
    expect(agentOf(env, taskId, resumed.json.agent_id)).toMatchObject({ engine: "codex", session_id: thread })
  })
})
