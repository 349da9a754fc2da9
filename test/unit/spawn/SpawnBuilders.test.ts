/**
 * The spawn's pure parts, without tmux: the builders of a reservation record, a spawn's result, an agent's
 * environment, command and session; the handover of a spawn's resources; the prompt template read once per process;
 * and the decoding of caller ids. Records are checked against the stored schema, so every built record is one
 * spawnkit could read back.
 */
import { NodeServices } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { Agent } from "../../../src/domain/Agent.js"
import { formatAgentToken } from "../../../src/domain/AgentToken.js"
import { parseAgentId, parseTaskId } from "../../../src/domain/Decode.js"
import { InvalidConfiguration } from "../../../src/domain/Errors.js"
import { AgentId, TaskId } from "../../../src/domain/Ids.js"
import { SpawnRequest } from "../../../src/domain/SpawnRequest.js"
import { TaskRegistry } from "../../../src/domain/Task.js"
import { agentRunner } from "../../../src/host/PackagePaths.js"
import { exitHooks } from "../../../src/host/TmuxHooks.js"
import { agentBrokerConfig } from "../../../src/spawn/AgentFiles.js"
import { agentCommand, agentEnvironment, agentPaths, agentSession } from "../../../src/spawn/AgentLaunch.js"
import { DEFAULT_PROMPT_TEMPLATE } from "../../../src/spawn/AgentPrompt.js"
import {
  agentIdFor,
  freshAgentId,
  type NewAgent,
  PROMPT_PREVIEW_CHARS,
  reservedAgent,
  sha256,
  spawnResultOf
} from "../../../src/spawn/AgentRecords.js"
import * as Handover from "../../../src/spawn/Handover.js"
import { promptTemplate } from "../../../src/spawn/PromptTemplate.js"
import { taskJson as taskRecord } from "../support/Records.js"

// ---------------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------------

const NOW = Date.UTC(2026, 11, 2, 9, 5, 7)
const HOME = "/srv/spawnkit-home"
const T = Schema.decodeUnknownSync(TaskId)("TASK-20261202-090507-0000abcd")
const agentId = Schema.decodeUnknownSync(AgentId)
const decodeAgent = Schema.decodeUnknownSync(Agent)

const task = (extra: Record<string, unknown> = {}, agents: ReadonlyArray<Record<string, unknown>> = []): TaskRegistry =>
  Schema.decodeUnknownSync(TaskRegistry)(
    taskRecord(
      { task_id: T, created_at: new Date(NOW - 60_000).toISOString(), workspace: `${HOME}/${T}` },
      agents,
      extra
    ),
    { errors: "all", onExcessProperty: "error" }
  )

const request = (extra: Record<string, unknown> = {}): SpawnRequest =>
  Schema.decodeUnknownSync(SpawnRequest)({ taskId: T, agentType: "worker", prompt: "do the work", ...extra })

const newAgent = (overrides: Partial<NewAgent> = {}): NewAgent => ({
  agentId: agentId("worker-090507-0000002a"),
  request: request(),
  parent: agentId("orchestrator"),
  depth: 1,
  engine: "custom",
  task: task(),
  home: HOME,
  hostId: "host-a",
  ownerPid: 4321,
  nowMs: NOW,
  promptSha256: sha256("do the work"),
  secretSha256: sha256("secret"),
  sessionUuid: "0b7c2a3e-9d41-4c55-8f00-1234567890ab",
  outputFormat: "none",
  ...overrides
})

const settings = {
  home: HOME,
  tmuxSocket: { _tag: "Name" as const, name: "spawnkit-test" },
  databaseUrl: Option.none<Redacted.Redacted<string>>(),
  hostId: "host-a",
  claudeModel: Option.none<string>(),
  agentCommand: Option.some("sleep {agent_id}"),
  agentResumeCommand: Option.none<string>()
}

// ---------------------------------------------------------------------------------------------------------------------
// Agent ids and reservation records
// ---------------------------------------------------------------------------------------------------------------------

describe("agent ids", () => {
  it("are <type>-<HHMMSS UTC>-<8 hex digits>", () => {
    expect(agentIdFor("worker", NOW, 42)).toBe("worker-090507-0000002a")
    expect(agentIdFor("a", Date.UTC(2026, 0, 1, 23, 59, 59), 0xffffffff)).toBe("a-235959-ffffffff")
  })

  it("skip every id the task already holds, counting the suffix up", () => {
    const t = task({}, [
      {
        id: "worker-090507-0000002a",
        type: "worker",
        tmux_session: "agent_worker-090507-0000002a",
        parent: "orchestrator",
        depth: 1,
        status: "running",
        started_at: new Date(NOW).toISOString()
      },
      {
        id: "worker-090507-0000002b",
        type: "worker",
        tmux_session: "agent_worker-090507-0000002b",
        parent: "orchestrator",
        depth: 1,
        status: "failed",
        started_at: new Date(NOW).toISOString()
      }
    ])
    expect(freshAgentId(t, "worker", NOW, 42)).toBe("worker-090507-0000002c")
    expect(freshAgentId(task(), "worker", NOW, 42)).toBe("worker-090507-0000002a")
  })

  it("wrap the suffix at 32 bits", () => {
    const t = task({}, [
      {
        id: "worker-090507-ffffffff",
        type: "worker",
        tmux_session: "agent_worker-090507-ffffffff",
        parent: "orchestrator",
        depth: 1,
        status: "running",
        started_at: new Date(NOW).toISOString()
      }
    ])
    expect(freshAgentId(t, "worker", NOW, 0xffffffff)).toBe("worker-090507-00000000")
  })
})

describe("reservedAgent", () => {
  it("builds a reserved record owned by the reserving process, one the stored schema reads back", () => {
    const agent = reservedAgent(newAgent())
    const now = new Date(NOW).toISOString()
    expect(agent).toEqual({
      id: "worker-090507-0000002a",
      type: "worker",
      tmux_session: "agent_worker-090507-0000002a",
      parent: "orchestrator",
      depth: 1,
      status: "reserved",
      started_at: now,
      last_update: now,
      progress: 0,
      prompt: "do the work",
      prompt_sha256: sha256("do the work"),
      engine: "custom",
      reservation: { owner_pid: 4321, owner_host: "host-a", reserved_at: now },
      host: "host-a",
      secret_sha256: sha256("secret"),
      session_id: "0b7c2a3e-9d41-4c55-8f00-1234567890ab",
      output_format: "none",
      tracked_files: {
        prompt_file: `${HOME}/${T}/prompts/worker-090507-0000002a.prompt`,
        log_file: `${HOME}/${T}/logs/worker-090507-0000002a.log`
      }
    })
    expect(decodeAgent(agent, { onExcessProperty: "error" })).toEqual(agent)
  })

  it("keeps a preview of the prompt only, and the idempotency key when there is one", () => {
    const prompt = "x".repeat(PROMPT_PREVIEW_CHARS + 50)
    const agent = reservedAgent(newAgent({ request: request({ prompt, idempotencyKey: "key-1" }) }))
    expect(agent.prompt).toBe("x".repeat(PROMPT_PREVIEW_CHARS))
    expect(agent.idempotency_key).toBe("key-1")
  })

  it("keeps the spawn's budget (over its subtree) and the output format metering reads", () => {
    const agent = reservedAgent(
      newAgent({ request: request({ maxCostUsd: 2.5, maxTokens: 9000 }), outputFormat: "claude" })
    )
    expect(agent.budget).toEqual({ max_cost_usd: 2.5, max_tokens: 9000 })
    expect(agent.output_format).toBe("claude")
    expect("budget" in reservedAgent(newAgent())).toBe(false)
    expect(decodeAgent(agent, { onExcessProperty: "error" })).toEqual(agent)
  })

  it("pre-assigns a conversation id to the engines that take one (not Codex, whose thread id comes from its output)", () => {
    const uuid = "0b7c2a3e-9d41-4c55-8f00-1234567890ab"
    expect(reservedAgent(newAgent({ engine: "claude" })).claude_session_id).toBe(uuid)
    expect(["claude", "gemini", "custom"].map((engine) => reservedAgent(newAgent({ engine } as never)).session_id))
      .toEqual([uuid, uuid, uuid])
    const codex = reservedAgent(newAgent({ engine: "codex" }))
    expect("claude_session_id" in codex || "session_id" in codex).toBe(false)
    expect("claude_session_id" in reservedAgent(newAgent({ engine: "gemini" }))).toBe(false)
  })

  it("a resumed agent keeps the conversation it resumes, the worktree it takes over and where it comes from", () => {
    const agent = reservedAgent(newAgent({
      engine: "claude",
      resume: { from: "worker-090000-00000001" as never, sessionId: "11111111-2222-4333-8444-555555555555" },
      worktree: { id: "worker-090000-00000001" as never, state: "active", base_commit: "b".repeat(40) }
    }))
    expect([agent.resumed_from, agent.session_id, agent.claude_session_id, agent.worktree?.id]).toEqual([
      "worker-090000-00000001",
      "11111111-2222-4333-8444-555555555555",
      "11111111-2222-4333-8444-555555555555",
      "worker-090000-00000001"
    ])
    expect(decodeAgent(agent, { onExcessProperty: "error" })).toEqual(agent)
  })

  it("takes the watchdog limits from the request, else from the task, else leaves them out", () => {
    const fromTask = reservedAgent(newAgent({ task: task({ timeout_seconds: 600, stall_timeout_seconds: 120 }) }))
    expect([fromTask.timeout_seconds, fromTask.stall_timeout_seconds]).toEqual([600, 120])
    const fromRequest = reservedAgent(newAgent({
      request: request({ timeoutSeconds: 30, stallTimeoutSeconds: 10 }),
      task: task({ timeout_seconds: 600, stall_timeout_seconds: 120 })
    }))
    expect([fromRequest.timeout_seconds, fromRequest.stall_timeout_seconds]).toEqual([30, 10])
    const none = reservedAgent(newAgent())
    expect("timeout_seconds" in none || "stall_timeout_seconds" in none).toBe(false)
  })
})

describe("spawnResultOf", () => {
  it("answers with the record's id, session, status, depth and parent", () => {
    const agent = {
      ...reservedAgent(newAgent({ depth: 2, parent: agentId("lead-090000-00000001") })),
      status: "running" as const
    }
    expect(spawnResultOf(T, agent, false)).toEqual({
      agent_id: "worker-090507-0000002a",
      task_id: T,
      tmux_session: "agent_worker-090507-0000002a",
      status: "running",
      depth: 2,
      parent: "lead-090000-00000001",
      existing: false
    })
    expect(spawnResultOf(T, agent, true).existing).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Environment, command and session
// ---------------------------------------------------------------------------------------------------------------------

describe("agentEnvironment", () => {
  const id = agentId("worker-090507-0000002a")

  it("gives the agent its identity, and its secret and token in a file; with a file registry tmux's server gets nothing", () => {
    const env = agentEnvironment(settings, T, id, "s3cret", "/x/secret")
    // Its tmux session gets where the secret is, never the secret (any client of the socket can read it).
    expect(env.session).toEqual({
      SPAWNKIT_HOME: HOME,
      SPAWNKIT_TMUX_SOCKET: "spawnkit-test",
      SPAWNKIT_TASK_ID: T,
      SPAWNKIT_AGENT_ID: id,
      SPAWNKIT_AGENT_SECRET_FILE: "/x/secret"
    })
    expect(JSON.stringify(env.session)).not.toContain("s3cret")
    expect(env.secretFileText).toBe(`s3cret\n${formatAgentToken(T, id, "s3cret")}\n`)
    expect(env.registry).toEqual({})
  })

  it("passes a database registry's location to tmux's server only, and a socket path as it is", () => {
    const env = agentEnvironment(
      {
        ...settings,
        tmuxSocket: { _tag: "Path", path: "/tmp/sk/tmux.sock" },
        databaseUrl: Option.some(Redacted.make("postgres://db/spawnkit"))
      },
      T,
      id,
      "s3cret",
      "/x/secret"
    )
    const registry = { SPAWNKIT_DATABASE_URL: "postgres://db/spawnkit", SPAWNKIT_HOST_ID: "host-a" }
    expect(env.registry).toEqual(registry)
    // The agent itself reaches spawnkit through the broker: no database credentials in its session.
    expect(env.session).toMatchObject({ SPAWNKIT_TMUX_SOCKET: "/tmp/sk/tmux.sock" })
    expect(JSON.stringify(env.session)).not.toContain("postgres://")
  })
})

describe("agentCommand and agentSession", () => {
  const paths = agentPaths(HOME, T, agentId("worker-090507-0000002a"))

  it("places an agent's files in its task's prompts and logs directories", () => {
    expect(paths).toEqual({
      prompt: `${HOME}/${T}/prompts/worker-090507-0000002a.prompt`,
      log: `${HOME}/${T}/logs/worker-090507-0000002a.log`,
      mcpConfig: `${HOME}/${T}/prompts/worker-090507-0000002a.mcp.json`,
      secret: `${HOME}/${T}/prompts/worker-090507-0000002a.secret`,
      exitFile: `${HOME}/.spawnkit-exits/${T}.worker-090507-0000002a`
    })
  })

  it("gives Claude Code its session id and its MCP config, Codex the broker, and fills a custom template", () => {
    const broker = "http://127.0.0.1:4321/mcp"
    const claude = reservedAgent(newAgent({ engine: "claude" }))
    const argv = Result.getOrThrow(agentCommand(settings, "claude", claude, T, paths, undefined, undefined, broker))
    expect(argv.join(" ")).toContain(`--session-id ${claude.claude_session_id}`)
    expect(argv.join(" ")).toContain(`--mcp-config ${paths.mcpConfig}`)
    // Its configuration names the broker and the variable its token is in: no secret in the file.
    expect(JSON.parse(agentBrokerConfig(broker))).toEqual({
      mcpServers: {
        spawnkit: { type: "http", url: broker, headers: { Authorization: "Bearer ${SPAWNKIT_AGENT_TOKEN}" } }
      }
    })
    const codex = Result.getOrThrow(
      agentCommand(
        settings,
        "codex",
        reservedAgent(newAgent({ engine: "codex" })),
        T,
        paths,
        undefined,
        undefined,
        broker
      )
    )
    expect(codex.slice(0, 6)).toEqual([
      "codex",
      "-c",
      `mcp_servers.spawnkit.url="${broker}"`,
      "-c",
      `mcp_servers.spawnkit.bearer_token_env_var="SPAWNKIT_AGENT_TOKEN"`,
      "exec"
    ])
    const custom = Result.getOrThrow(agentCommand(settings, "custom", reservedAgent(newAgent()), T, paths))
    expect(custom).toEqual(["sleep", "worker-090507-0000002a"])
  })

  it("resumes each engine's conversation with its CLI's own resume, the id never read as an option", () => {
    const id = "0b6c1a9e-3f5d-4e2a-9c1b-2d3e4f5a6b7c"
    const resumeArgv = (engine: "claude" | "codex" | "gemini" | "custom", s = settings) =>
      Result.getOrThrow(agentCommand(s, engine, reservedAgent(newAgent({ engine })), T, paths, undefined, id))
    const claude = resumeArgv("claude")
    expect(claude.slice(claude.indexOf("--resume"), claude.indexOf("--resume") + 2)).toEqual(["--resume", id])
    expect(claude).not.toContain("--session-id")
    expect(resumeArgv("codex")).toEqual([
      "codex",
      "exec",
      "--json",
      "--sandbox",
      "workspace-write",
      "--skip-git-repo-check",
      "resume",
      id,
      "-"
    ])
    expect(resumeArgv("gemini").slice(-2)).toEqual(["--resume", id])
    const custom = resumeArgv("custom", {
      ...settings,
      agentResumeCommand: Option.some("my-agent --resume {session_id}")
    })
    expect(custom).toEqual(["my-agent", "--resume", id])
  })

  it("refuses to resume a custom agent without SPAWNKIT_AGENT_RESUME_COMMAND, naming it", () => {
    const r = agentCommand(settings, "custom", reservedAgent(newAgent()), T, paths, undefined, "abc")
    expect(Result.isFailure(r) && r.failure.variable).toBe("SPAWNKIT_AGENT_RESUME_COMMAND")
  })

  it("gives the custom engine a pre-assigned conversation id as {session_id}", () => {
    const agent = reservedAgent(newAgent())
    const argv = Result.getOrThrow(
      agentCommand({ ...settings, agentCommand: Option.some("run --session {session_id}") }, "custom", agent, T, paths)
    )
    expect(agent.session_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(argv).toEqual(["run", "--session", agent.session_id])
  })

  it("refuses an unusable custom template with a typed error naming the setting", () => {
    const bad = agentCommand(
      { ...settings, agentCommand: Option.some("sleep 1; rm -rf /") },
      "custom",
      reservedAgent(newAgent()),
      T,
      paths
    )
    expect(Result.isFailure(bad)).toBe(true)
    if (Result.isFailure(bad)) expect(bad.failure.variable).toBe("SPAWNKIT_AGENT_COMMAND")
  })

  it("runs the command after the agent runner, in the task's working directory, tagged and hooked", () => {
    const env = agentEnvironment(settings, T, agentId("worker-090507-0000002a"), "s3cret", paths.secret)
    const inTaskDir = agentSession(HOME, task(), agentId("worker-090507-0000002a"), paths, ["sleep", "5"], env)
    expect(inTaskDir).toEqual({
      name: "agent_worker-090507-0000002a",
      cwd: `${HOME}/${T}`,
      command: [agentRunner, paths.prompt, paths.log, paths.exitFile, "--", "sleep", "5"],
      env: env.session,
      tags: { spawnkit_task: T, spawnkit_agent: "worker-090507-0000002a", spawnkit_home: HOME },
      serverEnv: env.registry,
      hooks: exitHooks
    })
    const elsewhere = agentSession(
      HOME,
      task({ working_directory: "/srv/repo" }),
      agentId("worker-090507-0000002a"),
      paths,
      ["sleep", "5"],
      env
    )
    expect(elsewhere.cwd).toBe("/srv/repo")
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Handover
// ---------------------------------------------------------------------------------------------------------------------

describe("Handover", () => {
  const recorder = () => {
    const log: Array<string> = []
    return { log, note: (what: string) => Effect.sync(() => void log.push(what)) }
  }

  it.effect("releases every resource in reverse order of acquisition when the scope fails", () =>
    Effect.gen(function*() {
      const { log, note } = recorder()
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const h = yield* Handover.make
        yield* h.resource(Effect.as(note("acquire a"), "a"), (a) => note(`release ${a}`))
        yield* h.guarded(note("release b"), note("acquire b"))
        yield* h.guarded(note("release c"), note("acquire c"))
        return yield* Effect.fail("step failed")
      })).pipe(Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(log).toEqual(["acquire a", "acquire b", "acquire c", "release c", "release b", "release a"])
    }))

  it.effect("releases nothing once the commit handed the resources over", () =>
    Effect.gen(function*() {
      const { log, note } = recorder()
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const h = yield* Handover.make
        yield* h.resource(note("acquire a"), () => note("release a"))
        yield* h.guarded(note("release b"), note("acquire b"))
        const committed = yield* h.handOver(Effect.as(note("commit"), "committed"))
        yield* note("after commit")
        return committed
      }))
      expect(result).toBe("committed")
      expect(log).toEqual(["acquire a", "acquire b", "commit", "after commit"])
    }))

  it.effect("releases everything when the commit itself fails", () =>
    Effect.gen(function*() {
      const { log, note } = recorder()
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const h = yield* Handover.make
        yield* h.guarded(note("release a"), note("acquire a"))
        return yield* h.handOver(Effect.fail("commit refused"))
      })).pipe(Effect.exit)
      expect(exit).toEqual(Exit.fail("commit refused"))
      expect(log).toEqual(["acquire a", "release a"])
    }))

  it.effect("releases a guarded resource whose acquisition failed half-way", () =>
    Effect.gen(function*() {
      const { log, note } = recorder()
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const h = yield* Handover.make
        yield* h.guarded(note("release half-made"), Effect.andThen(note("half made"), Effect.fail("acquire failed")))
      })).pipe(Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(log).toEqual(["half made", "release half-made"])
    }))

  it.effect("releases a guarded resource whose acquisition was interrupted", () =>
    Effect.gen(function*() {
      const { log, note } = recorder()
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        const h = yield* Handover.make
        yield* h.guarded(note("release hanging"), Effect.andThen(Deferred.succeed(started, undefined), Effect.never))
      })))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.hasInterrupts(exit)).toBe(true)
      expect(log).toEqual(["release hanging"])
    }))
})

// ---------------------------------------------------------------------------------------------------------------------
// The prompt template, read once
// ---------------------------------------------------------------------------------------------------------------------

describe("promptTemplate", () => {
  it.effect("is the built-in template when no file is configured", () =>
    Effect.gen(function*() {
      expect(yield* promptTemplate(Option.none())).toBe(DEFAULT_PROMPT_TEMPLATE)
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("reads a configured file once per process: a later change of the file is not read again", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-template-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const file = NodePath.join(dir, "template.txt")
      Fs.writeFileSync(file, "first {{agent_id}}")
      expect(yield* promptTemplate(Option.some(file))).toBe("first {{agent_id}}")
      Fs.writeFileSync(file, "second {{agent_id}}")
      expect(yield* promptTemplate(Option.some(file))).toBe("first {{agent_id}}")
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("reports a file it cannot read as InvalidConfiguration naming the variable, and reads it once it exists", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-template-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const file = NodePath.join(dir, "later.txt")
      const missing = yield* Effect.flip(promptTemplate(Option.some(file)))
      expect(missing).toBeInstanceOf(InvalidConfiguration)
      expect(missing.variable).toBe("SPAWNKIT_PROMPT_TEMPLATE")
      expect(missing.reason).toContain(file)
      Fs.writeFileSync(file, "now here")
      expect(yield* promptTemplate(Option.some(file))).toBe("now here")
    }).pipe(Effect.provide(NodeServices.layer)))
})

// ---------------------------------------------------------------------------------------------------------------------
// Caller ids
// ---------------------------------------------------------------------------------------------------------------------

describe("parseTaskId and parseAgentId", () => {
  it.effect("accept valid ids and refuse others with InvalidInput naming the field", () =>
    Effect.gen(function*() {
      expect(yield* parseTaskId(T)).toBe(T)
      expect(yield* parseAgentId("worker-090507-0000002a")).toBe("worker-090507-0000002a")
      const badTask = yield* Effect.flip(parseTaskId("../etc"))
      expect([badTask._tag, badTask.field]).toEqual(["InvalidInput", "task_id"])
      const badAgent = yield* Effect.flip(parseAgentId("a b", "parent_agent_id"))
      expect([badAgent._tag, badAgent.field]).toEqual(["InvalidInput", "parent_agent_id"])
      expect(badAgent.reason).toContain("an agent id")
    }))
})
