/**
 * The real agent CLIs (Claude Code, Codex, Gemini CLI) accept the command lines spawnkit builds, and an agent that
 * exits at start-up (here: no credentials) is recorded as failed with its exit code and last output lines, and its
 * slot is freed.
 *
 * The CLIs come from the npm registry into a cache directory, not from the project's dependencies (about 740 MB):
 * before its tests, this file runs `scripts/install-agent-clis.sh`, which installs them once into
 * SPAWNKIT_AGENT_CLIS_DIR (default ~/.cache/spawnkit-agent-clis) and does nothing when they are there; it fails (it
 * never skips) when they cannot be installed.
 *
 * Every CLI runs with no credentials: no API key or token in the environment, HOME a fresh temp directory. Codex
 * without credentials would otherwise retry its default (remote) endpoint forever, so the temp HOME's Codex config
 * selects a provider on a closed loopback port whose key variable is unset: Codex then stops at start-up, and nothing
 * is sent off this machine. Claude Code refuses --dangerously-skip-permissions to root unless IS_SANDBOX=1 says the
 * machine is a sandbox, which is set when the tests run as root so the CLI gets to its credentials check.
 *
 * Needs `npm run build` first (the pane-died hook runs dist/cli/main.js).
 */
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import { spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import type { Engine } from "../../src/domain/Agent.js"
import { formatAgentToken } from "../../src/domain/AgentToken.js"
import type { AgentId, TaskId } from "../../src/domain/Ids.js"
import { buildCommand } from "../../src/host/Engines.js"
import { mcpConfigPath } from "../../src/host/Workspace.js"
import { parseLine } from "../../src/metering/Formats.js"
import { agentBrokerConfig } from "../../src/spawn/AgentFiles.js"
import { geminiSettingsPath, geminiSettingsText } from "../../src/worktree/GeminiSettings.js"
import {
  CLI,
  liveSessions,
  makeTestEnv,
  promptFiles,
  readRegistryFile,
  type TestEnv,
  waitFor
} from "../support/Harness.js"
import { agentSecret, ok, ownedPerTest, startBroker, startHttp } from "../support/Mcp.js"

const CLIS_DIR = process.env["SPAWNKIT_AGENT_CLIS_DIR"] || NodePath.join(Os.homedir(), ".cache", "spawnkit-agent-clis")
const CLIS_BIN = NodePath.join(CLIS_DIR, "node_modules", ".bin")
const INSTALL_HINT = `run \`bash scripts/install-agent-clis.sh\` (installs into ${CLIS_DIR})`

type RealEngine = Exclude<Engine, "custom">
const ENGINES: ReadonlyArray<RealEngine> = ["claude", "codex", "gemini"]

/** What a command-line parser prints when it rejects an argument (commander, clap, yargs, and the like). */
const PARSER_ERROR =
  /unknown option|unexpected argument|unknown arguments?:|unrecognized (option|argument)|invalid option|error: option|too many arguments|missing required argument|not enough arguments/i

/** What each CLI prints once it has accepted its command line and stopped for want of credentials. */
const NO_CREDENTIALS: Record<RealEngine, RegExp> = {
  claude: /Not logged in|Invalid API key|cannot be used with root/,
  codex: /Missing environment variable: `OPENAI_API_KEY`/,
  gemini: /Please set an Auth method|GEMINI_API_KEY/
}

const PROMPT = "spawnkit agent CLI check: reply with the single word hello"

const INSTALL_SCRIPT = NodePath.resolve(import.meta.dirname, "..", "..", "scripts", "install-agent-clis.sh")

// `npm test` needs nothing installed by hand: the CLIs are fetched into the cache the first time (a download of the
// three packages; later runs find them and return at once).
beforeAll(() => {
  const r = spawnSync("bash", [INSTALL_SCRIPT], {
    encoding: "utf8",
    env: { ...process.env, SPAWNKIT_AGENT_CLIS_DIR: CLIS_DIR },
    timeout: 900_000
  })
  if (r.status !== 0) throw new Error(`installing the agent CLIs failed (${r.status}): ${r.stdout}${r.stderr}`)
}, 900_000)

const envs: Array<TestEnv> = []
const tempDirs: Array<string> = []
afterEach(() => {
  for (const env of envs.splice(0)) env.cleanup()
  for (const dir of tempDirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

const tempDir = (prefix: string) => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

/** Variables that could carry credentials or point a CLI at a configuration with some. */
const CREDENTIAL_ENV =
  /API_KEY|TOKEN|SECRET|PASSWORD|^ANTHROPIC_|^OPENAI_|^GEMINI_|^GOOGLE_|^CLAUDE_|^CODEX_|^XDG_|^AWS_|^AZURE_|^VERTEX/i

/**
 * A fresh HOME for the CLIs and an environment without credentials, with the CLIs on PATH. Claude Code's and the
 * others' non-essential traffic (update checks, telemetry) is switched off.
 */
const agentEnvironment = () => {
  const home = tempDir("spawnkit-cli-home-")
  Fs.mkdirSync(NodePath.join(home, ".codex"))
  Fs.writeFileSync(
    NodePath.join(home, ".codex", "config.toml"),
    [
      `model_provider = "loopback"`,
      ``,
      `[model_providers.loopback]`,
      `name = "closed loopback port (spawnkit tests)"`,
      `base_url = "http://127.0.0.1:9/v1"`,
      `env_key = "OPENAI_API_KEY"`,
      `wire_api = "responses"`,
      ``
    ].join("\n")
  )
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] =>
      e[1] !== undefined && !CREDENTIAL_ENV.test(e[0]) && !e[0].startsWith("SPAWNKIT_")
    )
  )
  const env: Record<string, string> = {
    ...inherited,
    HOME: home,
    PATH: `${CLIS_BIN}:${process.env["PATH"] ?? "/usr/bin:/bin"}`,
    DISABLE_AUTOUPDATER: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_ERROR_REPORTING: "1",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    NO_UPDATE_NOTIFIER: "1",
    ...(process.getuid?.() === 0 ? { IS_SANDBOX: "1" } : {})
  }
  for (const name of ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"]) {
    expect(env[name], `${name} must not reach the agent`).toBeUndefined()
  }
  return { home, env }
}

const installed = (cli: string) => {
  try {
    Fs.accessSync(NodePath.join(CLIS_BIN, cli), Fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

const { newEnv, own } = ownedPerTest()

/**
 * A live broker (`serve --http`) with one running agent, and that agent's token: what a Claude or Codex agent's MCP
 * configuration reaches.
 */
const liveBroker = async () => {
  const env = newEnv("sleep 600")
  const served = own(await startHttp(env))
  const task = await ok(served.client, "create_real_task", { description: "cli check" })
  const agent = await ok(served.client, "deploy_headless_agent", {
    task_id: task.task_id,
    agent_type: "a",
    prompt: "p"
  })
  const secret = await agentSecret(env.socket, agent.tmux_session)
  return { url: served.url!, token: formatAgentToken(task.task_id, agent.agent_id, secret) }
}

/** Real agent CLIs start slowly: wait up to a minute for what they do. */
const waitLong = <A>(what: string, probe: () => A | undefined | false) => waitFor(what, probe, 60_000)

// ---------------------------------------------------------------------------------------------------------------------

describe("agent CLIs from the npm registry", () => {
  it("are installed (claude, codex, gemini)", () => {
    const missing = ["claude", "codex", "gemini"].filter((cli) => !installed(cli))
    expect(missing, `agent CLIs missing from ${CLIS_BIN}: ${INSTALL_HINT}`).toEqual([])
    const { env } = agentEnvironment()
    for (const cli of ["claude", "codex", "gemini"]) {
      const r = spawnSync(NodePath.join(CLIS_BIN, cli), ["--version"], { env, encoding: "utf8", timeout: 60_000 })
      expect(r.status, `${cli} --version: ${r.stdout}${r.stderr}`).toBe(0)
      console.log(`${cli} --version: ${r.stdout.trim()}`)
    }
  })
})

/** Run an argv as spawnkit's runner does: the prompt file on stdin, in a working directory of its own. */
const runArgv = (argv: ReadonlyArray<string>, promptFile: string, cwd: string, env: Record<string, string>) => {
  const stdin = Fs.openSync(promptFile, "r")
  try {
    const r = spawnSync(argv[0]!, argv.slice(1), {
      cwd,
      env,
      stdio: [stdin, "pipe", "pipe"],
      encoding: "utf8",
      timeout: 90_000
    })
    return { ...r, output: `${r.stdout ?? ""}${r.stderr ?? ""}` }
  } finally {
    Fs.closeSync(stdin)
  }
}

describe("the command lines spawnkit builds, run by the real CLIs", () => {
  it.each(ENGINES)("%s accepts spawnkit's argv (prompt on stdin, no credentials)", async (engine) => {
    expect(installed(engine), INSTALL_HINT).toBe(true)
    const { env: cliEnv } = agentEnvironment()
    // Claude Code and Codex reach a live broker as an agent, with the token in their environment (as the runner
    // exports it); Gemini CLI takes no spawnkit server.
    const broker = engine === "gemini" ? undefined : await liveBroker()
    const env = broker === undefined ? cliEnv : { ...cliEnv, SPAWNKIT_AGENT_TOKEN: broker.token }
    const work = tempDir("spawnkit-cli-work-")
    const cwd = NodePath.join(work, "project")
    Fs.mkdirSync(cwd)
    const taskId = "TASK-20260101-000000-00c0ffee"
    const agentId = `${engine}check-000000-00c0ffee`
    const promptFile = NodePath.join(work, `${agentId}.prompt`)
    Fs.writeFileSync(promptFile, PROMPT + "\n", { mode: 0o600 })
    const mcpConfigFile = NodePath.join(work, `${agentId}.mcp.json`)
    if (broker !== undefined) Fs.writeFileSync(mcpConfigFile, agentBrokerConfig(broker.url), { mode: 0o600 })
    const sessionId = randomUUID()
    const built = buildCommand(engine, {
      agentId,
      taskId,
      promptFile,
      logFile: NodePath.join(work, `${agentId}.log`),
      claudeModel: "sonnet",
      claudeSessionId: sessionId,
      ...(broker !== undefined ? { brokerUrl: broker.url } : {}),
      ...(engine === "claude" ? { mcpConfigFile } : {})
    })
    expect(Result.isSuccess(built)).toBe(true)
    const argv = Result.getOrThrow(built)
    expect(argv[0]).toBe(engine)

    // Exactly as built.
    const r = runArgv(argv, promptFile, cwd, env)
    const shown = `${argv.join(" ")} (exit ${r.status}, signal ${r.signal}):\n${r.output.slice(0, 4000)}`
    expect(r.error, shown).toBeUndefined()
    expect(r.signal, `it must stop by itself: ${shown}`).toBeNull()
    expect(r.output, shown).not.toMatch(PARSER_ERROR)
    expect(r.status, `no credentials, so it must fail: ${shown}`).not.toBe(0)
    expect(r.output, shown).toMatch(NO_CREDENTIALS[engine])

    // Evidence that each option took effect, from what the CLI reports about its own run.
    switch (engine) {
      case "claude": {
        const events = r.stdout.split("\n").flatMap((line) => {
          try {
            return [JSON.parse(line)]
          } catch {
            return []
          }
        })
        const init = events.find((e) => e.type === "system" && e.subtype === "init")
        expect(init, `stream-json init event: ${shown}`).toBeDefined()
        expect(init.session_id).toBe(sessionId)
        expect(init.permissionMode).toBe("bypassPermissions")
        expect(init.model).toMatch(/sonnet/i)
        // It reached the broker as the agent (a wrong or missing token would be "failed").
        expect(init.mcp_servers, shown).toContainEqual(
          expect.objectContaining({ name: "spawnkit", status: "connected" })
        )
        expect(events.find((e) => e.type === "result"), shown).toMatchObject({ is_error: true })
        // Metering reads the real output: the session it announced, no usage (nothing was sent).
        const observed = r.stdout.split("\n").flatMap((line) => parseLine("claude", line, Date.now()))
        expect(observed.find((o) => o._tag === "Session")).toEqual({ _tag: "Session", sessionId })
        break
      }
      case "codex": {
        // `--json`: JSON lines metering reads, the thread id first; without credentials the turn fails.
        const events = r.stdout.split("\n").flatMap((line) => parseLine("codex", line, Date.now()))
        expect(events.find((o) => o._tag === "Session"), shown).toMatchObject({ sessionId: expect.any(String) })
        expect(r.stdout, shown).toContain("\"type\":\"turn.failed\"")
        // Its own view of the MCP servers of that command line: the broker, with the token from the environment.
        const listed = spawnSync(
          argv[0]!,
          [...argv.slice(1, argv.indexOf("exec")), "mcp", "get", "spawnkit", "--json"],
          {
            cwd,
            env,
            encoding: "utf8",
            timeout: 60_000
          }
        )
        expect(listed.status, `${listed.stdout}${listed.stderr}`).toBe(0)
        expect(JSON.parse(listed.stdout), listed.stdout).toMatchObject({
          name: "spawnkit",
          transport: { type: "streamable_http", url: broker!.url, bearer_token_env_var: "SPAWNKIT_AGENT_TOKEN" }
        })
        break
      }
      case "gemini":
        expect(r.output, shown).toMatch(/YOLO mode is enabled/)
        // Gemini CLI turns the yolo approval mode back into "default" approvals in a folder it does not trust (reported, not asserted).
        const overridden = /Approval mode overridden[^\n]*/.exec(r.output)
        if (overridden !== null) console.log(`gemini: ${overridden[0]}`)
        break
    }
    console.log(`${engine}: ${argv.join(" ")} -> exit ${r.status}; ${r.output.match(NO_CREDENTIALS[engine])?.[0]}`)

    // Control: the same command line with an option the CLI does not know is reported by its parser, so the
    // check above would have caught a rejected option.
    const bogus = [...argv]
    bogus.splice(argv[1] === "exec" ? 2 : 1, 0, "--spawnkit-no-such-option")
    const c = runArgv(bogus, promptFile, cwd, env)
    expect(c.signal).toBeNull()
    expect(c.status).not.toBe(0)
    expect(c.output, c.output.slice(0, 2000)).toMatch(PARSER_ERROR)
  }, 300_000)
})

describe("Gemini CLI and the broker", () => {
  it("connects with the settings spawnkit writes into an isolated agent's worktree (its own `mcp list`)", async () => {
    expect(installed("gemini"), INSTALL_HINT).toBe(true)
    const { env: cliEnv } = agentEnvironment()
    const broker = await liveBroker()
    const cwd = tempDir("spawnkit-gemini-work-")
    Fs.mkdirSync(NodePath.join(cwd, ".gemini"))
    Fs.writeFileSync(geminiSettingsPath(cwd), geminiSettingsText(broker.url))
    const list = (token: string) => {
      const r = spawnSync(NodePath.join(CLIS_BIN, "gemini"), ["mcp", "list"], {
        cwd,
        env: { ...cliEnv, GEMINI_CLI_TRUST_WORKSPACE: "true", SPAWNKIT_AGENT_TOKEN: token },
        encoding: "utf8",
        timeout: 90_000
      })
      return `${r.stdout}${r.stderr}`
    }
    const listed = list(broker.token)
    console.log(`gemini mcp list: ${listed.trim()}`)
    expect(listed).toMatch(/spawnkit[^\n]*Connected/)
    // The control: the same settings with a wrong token do not connect, so the line above is the broker's yes.
    const refused = list(
      formatAgentToken(...(broker.token.split(".").slice(1, 3) as [TaskId, AgentId]), "0".repeat(64))
    )
    expect(refused).toMatch(/spawnkit/)
    expect(refused).not.toMatch(/spawnkit[^\n]*Connected/)
  }, 300_000)
})

// ---------------------------------------------------------------------------------------------------------------------

/** Run the compiled spawnkit CLI with the agents' environment (the first call starts the tmux server with it). */
const spawnkit = (env: TestEnv, agentEnv: Record<string, string>, args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    env: { ...agentEnv, ...env.env },
    timeout: 60_000
  })
  return {
    ...r,
    json: (() => {
      try {
        return JSON.parse(r.stdout)
      } catch {
        return undefined
      }
    })()
  }
}

describe("spawning a real agent that exits at start-up (no credentials)", () => {
  it.each(ENGINES)("%s: recorded as failed with its exit code and last lines; its slot is freed", async (engine) => {
    expect(installed(engine), INSTALL_HINT).toBe(true)
    expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)
    const env = makeTestEnv()
    envs.push(env)
    const { env: agentEnv } = agentEnvironment()
    await startBroker(env, agentEnv)

    const created = spawnkit(env, agentEnv, [
      "task",
      "create",
      "--description",
      `${engine} start-up`,
      "--max-concurrent",
      "1",
      "--json"
    ])
    expect(created.status, created.stdout + created.stderr).toBe(0)
    const taskId = created.json.task_id as string

    const spawned = spawnkit(env, agentEnv, [
      "spawn",
      "--task",
      taskId,
      "--type",
      `${engine}check`,
      "--prompt",
      PROMPT,
      "--engine",
      engine,
      "--json"
    ])
    const shown = `spawn: exit ${spawned.status}, ${spawned.stdout}${spawned.stderr}`
    let exitCode: number
    let lastLines: ReadonlyArray<string>
    let agentId: string
    if (spawned.status === 0) {
      // Committed before the agent died: the pane-died hook records the exit about a second later.
      expect(spawned.json, shown).toMatchObject({ task_id: taskId, status: "running", existing: false })
      agentId = spawned.json.agent_id
      const record = await waitLong(`${engine} agent's exit recorded`, () => {
        const agent = readRegistryFile(env.home, taskId).agents.find((a: any) => a.id === agentId)
        return agent !== undefined && agent.status !== "running" ? agent : undefined
      })
      expect(record.status, JSON.stringify(record)).toBe("failed")
      exitCode = record.exit.exit_code
      lastLines = record.exit.last_lines
      expect(record.reason).toBe(`exited with code ${exitCode}`)
      expect(record.engine).toBe(engine)
      expect(record.completed_at).toBeDefined()
    } else {
      // The agent died before the commit: the spawn fails with AgentExitedAtStartup and keeps nothing.
      expect(spawned.json?.error?.tag, shown).toBe("AgentExitedAtStartup")
      const message = spawned.json.error.message as string
      exitCode = Number(/exited at start-up with code (-?\d+)/.exec(message)?.[1])
      lastLines = [/Last output: (.*)\. Check the engine/.exec(message)?.[1] ?? ""]
      agentId = /Agent (\S+) exited/.exec(message)?.[1] ?? ""
      expect(readRegistryFile(env.home, taskId).agents).toEqual([])
    }
    expect(exitCode, shown).not.toBe(0)
    expect(exitCode, shown).toBeGreaterThan(0)
    expect(lastLines.length, shown).toBeGreaterThan(0)
    expect(lastLines.join("\n"), shown).toMatch(NO_CREDENTIALS[engine])
    expect(lastLines.join("\n")).not.toMatch(PARSER_ERROR)

    // The slot is free and the agent owns nothing any more (its log stays).
    const task = await waitLong("slot freed", () => {
      const t = readRegistryFile(env.home, taskId)
      return t.active_count === 0 ? t : undefined
    })
    expect(task.agents.filter((a: any) => ["reserved", "running"].includes(a.status))).toEqual([])
    await waitLong("dead session removed", () => (liveSessions(env.socket).length === 0 ? true : undefined))
    expect(promptFiles(env.home, taskId)).toEqual([])
    expect(Fs.readFileSync(NodePath.join(env.home, taskId, "logs", `${agentId}.log`), "utf8")).toMatch(
      NO_CREDENTIALS[engine]
    )
    const path = spawned.status === 0 ? "committed, then recorded failed by the pane-died hook" : "AgentExitedAtStartup"
    console.log(`${engine} agent ${agentId} (${path}): exit ${exitCode}, last line: ${lastLines.at(-1)?.slice(0, 160)}`)

    // The freed slot admits the next spawn (max_concurrent 1), and only that one.
    const next = spawnkit(env, agentEnv, [
      "spawn",
      "--task",
      taskId,
      "--type",
      "next",
      "--prompt",
      "after the failure",
      "--engine",
      "custom",
      "--json"
    ])
    expect(next.status, next.stdout + next.stderr).toBe(0)
    expect(next.json).toMatchObject({ status: "running", existing: false })
    const over = spawnkit(env, agentEnv, [
      "spawn",
      "--task",
      taskId,
      "--type",
      "next",
      "--prompt",
      "one too many",
      "--engine",
      "custom",
      "--json"
    ])
    expect(over.status).not.toBe(0)
    expect(over.json?.error?.tag, over.stdout).toBe("LimitReached")
    expect(over.json.error.message).toContain("max_concurrent")
    expect(readRegistryFile(env.home, taskId).active_count).toBe(1)
    expect(liveSessions(env.socket)).toEqual([next.json.tmux_session])
  }, 300_000)
})

// ---------------------------------------------------------------------------------------------------------------------

/**
 * What each CLI answers, without credentials, to the resume of a conversation (measured with Claude Code 2.1.332,
 * Codex 0.171.0 and Gemini CLI 0.61.0): Claude Code and Codex keep the conversation of a run that stopped at the
 * credentials check (Claude's transcript, Codex's rollout), so its resume is accepted and stops there again; Gemini
 * CLI saves no session before its auth check, so a resume finds none. A conversation that is not (or no longer) there
 * is reported in each CLI's own words, which spawnkit records as the reason.
 */
const RESUMED_FIRST: Record<RealEngine, "credentials" | "gone"> = {
  claude: "credentials",
  codex: "credentials",
  gemini: "gone"
}
const CONVERSATION_GONE: Record<RealEngine, (id: string) => RegExp> = {
  claude: (id) => new RegExp(`No conversation found with session ID: ${id}`),
  codex: (id) => new RegExp(`no rollout found for thread id ${id}`),
  gemini: () => /Error resuming session: (No previous sessions found for this project|Invalid session identifier)/
}
/** Where each CLI keeps its conversations under HOME (Claude: `projects/<dir>/<id>.jsonl`, Codex: `sessions/…`). */
const CONVERSATIONS: Partial<Record<RealEngine, string>> = { claude: ".claude", codex: ".codex" }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const AFTER_COMMIT = NodePath.resolve(import.meta.dirname, "..", "support", "after-commit.mjs")

/**
 * Wrappers named like the CLIs, first on PATH: each starts the real CLI with its argv unchanged once its agent's spawn
 * has committed (an agent that died before would leave no record to resume), and notes that argv as a JSON line.
 */
const committedClis = (agentEnv: Record<string, string>) => {
  const dir = tempDir("spawnkit-cli-wrappers-")
  const argvLog = NodePath.join(dir, "argv.jsonl")
  for (const cli of ENGINES) {
    Fs.writeFileSync(
      NodePath.join(dir, cli),
      `#!/bin/sh\nexec '${process.execPath}' '${AFTER_COMMIT}' --argv-log '${argvLog}' -- '${CLIS_BIN}/${cli}' "$@"\n`,
      { mode: 0o755 }
    )
  }
  const runs = (): Array<Array<string>> =>
    Fs.existsSync(argvLog)
      ? Fs.readFileSync(argvLog, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
      : []
  return { env: { ...agentEnv, PATH: `${dir}:${agentEnv["PATH"]}` }, runs }
}

/** Files under a directory whose name contains `needle` and ends in .jsonl. */
const conversationFiles = (dir: string, needle: string): Array<string> =>
  Fs.existsSync(dir)
    ? (Fs.readdirSync(dir, { recursive: true }) as Array<string>)
      .filter((p) => p.endsWith(".jsonl") && NodePath.basename(p).includes(needle))
      .map((p) => NodePath.join(dir, p))
    : []

describe("resuming a real agent that ended (no credentials)", () => {
  it.each(ENGINES)(
    "%s: its CLI's resume argv is accepted; the resumed agent is recorded failed, its slot freed",
    async (engine) => {
      expect(installed(engine), INSTALL_HINT).toBe(true)
      expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)
      const env = makeTestEnv()
      envs.push(env)
      const { home, env: plainEnv } = agentEnvironment()
      const clis = committedClis(plainEnv)
      const broker = await startBroker(env, clis.env)
      const sk = (...args: Array<string>) => spawnkit(env, clis.env, [...args, "--json"])
      const registry = () => readRegistryFile(env.home, taskId)
      const ended = (agentId: string) =>
        waitLong(`${agentId} ended`, () => {
          const agent = registry().agents.find((a: any) => a.id === agentId)
          return agent !== undefined && !["reserved", "running"].includes(agent.status) ? agent : undefined
        })
      const nothingLeft = async () => {
        await waitLong(
          "slot freed, no session left",
          () => registry().active_count === 0 && liveSessions(env.socket).length === 0
        )
        expect(registry().agents.filter((a: any) => a.reservation !== undefined)).toEqual([])
        expect(promptFiles(env.home, taskId)).toEqual([])
      }

      const created = sk("task", "create", "--description", `${engine} resume`, "--max-concurrent", "1")
      expect(created.status, created.stdout + created.stderr).toBe(0)
      const taskId = created.json.task_id as string
      const spawned = sk("spawn", "--task", taskId, "--type", `${engine}check`, "--prompt", PROMPT, "--engine", engine)
      expect(spawned.status, spawned.stdout + spawned.stderr).toBe(0)
      const old = await ended(spawned.json.agent_id)
      expect(old.status, JSON.stringify(old)).toBe("failed")
      expect(old.exit.last_lines.join("\n")).toMatch(NO_CREDENTIALS[engine])
      await nothingLeft()

      // The conversation id: pre-assigned for Claude Code and Gemini CLI; Codex's thread id is what its run printed.
      const log = Fs.readFileSync(NodePath.join(env.home, taskId, "logs", `${old.id}.log`), "utf8")
      const printed = log.split("\n").flatMap((line) => parseLine(engine, line, Date.now()))
        .find((o) => o._tag === "Session")
      const conversation: string = engine === "codex" ? (printed as any)?.sessionId : old.session_id
      expect(conversation, log.slice(0, 2000)).toMatch(UUID)
      if (engine === "codex") expect(old.session_id).toBeUndefined()
      else expect(old.session_id).toBe(conversation)
      if (engine === "claude") expect(printed).toEqual({ _tag: "Session", sessionId: conversation })

      const resumeOnce = async (expected: "credentials" | "gone") => {
        const resumed = sk("resume", "--task", taskId, "--agent", old.id, "--prompt", "continue: reply hello")
        const shown = `resume: exit ${resumed.status}, ${resumed.stdout}${resumed.stderr}`
        expect(resumed.status, shown).toBe(0)
        expect(resumed.json, shown).toMatchObject({ resumed_from: old.id, status: "running", existing: false })
        const record = await ended(resumed.json.agent_id)
        const lastLines = (record.exit.last_lines as Array<string>).join("\n")
        const recorded = `${JSON.stringify(record.reason)}; last lines:\n${lastLines.slice(-3000)}`
        // The argv spawnkit built for the resume is the one the CLI ran, and its parser took it.
        const argv = clis.runs().at(-1)!
        const built = buildCommand(engine, {
          agentId: record.id,
          taskId,
          promptFile: "",
          logFile: "",
          mcpConfigFile: engine === "claude" ? mcpConfigPath(env.home, taskId as TaskId, record.id) : undefined,
          brokerUrl: broker.url,
          resumeSessionId: conversation
        })
        expect(argv.slice(1)).toEqual(Result.getOrThrow(built).slice(1))
        expect(argv[0]).toBe(NodePath.join(CLIS_BIN, engine))
        expect(lastLines, recorded).not.toMatch(PARSER_ERROR)
        expect(record).toMatchObject({ status: "failed", engine, resumed_from: old.id, session_id: conversation })
        expect(record.exit.exit_code, recorded).toBeGreaterThan(0)
        if (expected === "credentials") {
          expect(lastLines, recorded).toMatch(NO_CREDENTIALS[engine])
          expect(record.reason).toBe(`exited with code ${record.exit.exit_code}`)
        } else {
          expect(lastLines, recorded).toMatch(CONVERSATION_GONE[engine](conversation))
          expect(record.reason, recorded).toMatch(
            new RegExp(`^the conversation to resume is gone \\(exited with code ${record.exit.exit_code}\\): `)
          )
          expect(record.reason, recorded).toMatch(CONVERSATION_GONE[engine](conversation))
        }
        await nothingLeft()
        console.log(`${engine} resume of ${old.id} (${expected}): exit ${record.exit.exit_code}; ${record.reason}`)
        return record
      }

      await resumeOnce(RESUMED_FIRST[engine])
      const store = CONVERSATIONS[engine]
      if (store !== undefined) {
        // The CLI kept the conversation (that is why its resume got as far as the credentials check); without it, the
        // resume is told the conversation is gone.
        const files = conversationFiles(NodePath.join(home, store), conversation)
        expect(files.length, `${engine} conversation files under ${home}/${store}`).toBeGreaterThan(0)
        for (const file of files) Fs.rmSync(file)
        await resumeOnce("gone")
      }
      expect(clis.runs().map((argv) => argv.includes(conversation))).toEqual(
        engine === "gemini" ? [true, true] : engine === "codex" ? [false, true, true] : [true, true, true]
      )
    },
    300_000
  )
})
