/**
 * MCP test support: the real `spawnkit serve` (dist/cli/main.js) as a child process, driven by the SDK's own Client
 * over stdio (StdioClientTransport) or Streamable HTTP (StreamableHTTPClientTransport); tool-call helpers; tmux and
 * registry probes. Every server started here is tracked until it has exited, so a test can kill all of its servers.
 */
import { afterEach, expect } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { onTestFinished } from "vitest"
import {
  CLI,
  liveSessions,
  makeTestEnv,
  processAlive,
  promptFiles,
  readRegistryFile,
  type TestEnv,
  waitFor
} from "./Harness.js"

export type Kind = "stdio" | "http"

/** A running server and a connected client. */
export interface Served {
  readonly kind: Kind
  readonly client: Client
  readonly pid: number
  /** The HTTP endpoint (http only). */
  readonly url: string | undefined
  /** The orchestrator's bearer token the server takes (http only). */
  readonly token: string | undefined
  /** Everything the server wrote to stderr (its log). */
  readonly stderr: () => string
  /** Resolves when the server process has exited. */
  readonly exited: Promise<void>
  readonly hasExited: () => boolean
}

export { waitFor }

/** Resolve or reject with `promise`, or reject naming `what` after `timeoutMs`. */
export const within = <A>(what: string, promise: Promise<A>, timeoutMs = 60_000): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs} ms`)), timeoutMs)
    })
  ]).finally(() => clearTimeout(timer))
}

/**
 * The environment of a server: what an MCP client gives a server it starts (the SDK's getDefaultEnvironment(): HOME,
 * LOGNAME, PATH, SHELL, TERM, USER; no locale) plus the test environment's settings. Nothing else of this process
 * leaks in.
 */
export const serverEnv = (env: TestEnv, extra: Record<string, string> = {}): Record<string, string> => ({
  ...getDefaultEnvironment(),
  ...env.env,
  ...extra
})

const live = new Set<Served>()

const killAndWait = async (served: Served) => {
  if (!served.hasExited()) {
    try {
      process.kill(served.pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  await within(`server ${served.pid} exit after SIGKILL`, served.exited, 10_000)
}

/** SIGKILL every tracked server still alive (or only `which`) and wait until each has exited. */
export const killServers = async (which?: ReadonlyArray<Served>): Promise<void> => {
  const targets = which ?? [...live]
  await Promise.all(targets.map(async (s) => {
    // (An HTTP server that never announced its URL has no client: its getter throws, and the catch takes that too.)
    await Promise.resolve().then(() => s.client.close()).catch(() => undefined)
    await killAndWait(s)
  }))
}

/** Start `spawnkit serve` over stdio with the SDK's StdioClientTransport and connect a client. */
export const startStdio = async (env: TestEnv, extra: Record<string, string> = {}): Promise<Served> => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, "serve"],
    env: serverEnv(env, extra),
    cwd: env.home,
    stderr: "pipe"
  })
  let stderr = ""
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
  })
  const client = new Client({ name: "spawnkit-test", version: "1.0.0" })
  let closed = false
  let onClosed: () => void = () => undefined
  const closedPromise = new Promise<void>((resolve) => {
    onClosed = resolve
  })
  client.onclose = () => {
    closed = true
    onClosed()
  }
  await within("stdio server connect", client.connect(transport), 120_000).catch(async (e) => {
    await transport.close().catch(() => undefined)
    throw new Error(`could not connect to the stdio server: ${String(e)}; stderr: ${stderr}`)
  })
  const pid = transport.pid
  if (pid === null) throw new Error("stdio server has no pid")
  // The transport reports close when the child's stdio closes; the process itself is gone once it is reaped.
  const exited = closedPromise.then(async () => {
    await waitFor(`server ${pid} reaped`, () => !processAlive(pid), 10_000)
  })
  let gone = false
  void exited.then(() => (gone = true), () => undefined)
  const served: Served = {
    kind: "stdio",
    client,
    pid,
    url: undefined,
    token: undefined,
    stderr: () => stderr,
    exited,
    hasExited: () => gone || (closed && !processAlive(pid))
  }
  live.add(served)
  void exited.then(() => live.delete(served), () => undefined)
  return served
}

/** A spawned server process with its stderr and exit. */
export interface ServerProcess {
  readonly proc: ChildProcess
  readonly stderr: () => string
  readonly stdout: () => string
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Start `node dist/cli/main.js serve ...args` with stdin kept open (a stdio server would serve on it). */
export const startServerProcess = (
  env: TestEnv,
  args: ReadonlyArray<string>,
  extra: Record<string, string> = {}
): ServerProcess => {
  const proc = spawn(process.execPath, [CLI, "serve", ...args], {
    env: serverEnv(env, extra),
    cwd: env.home,
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stderr = ""
  let stdout = ""
  proc.stdin!.on("error", () => undefined)
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    proc.on("error", reject)
    proc.on("exit", (code, signal) => resolve({ code, signal }))
  })
  return { proc, stderr: () => stderr, stdout: () => stdout, exit }
}

const URL_LINE = /spawnkit MCP server on (http:\/\/127\.0\.0\.1:(\d+)\/mcp)/

/**
 * Options of an HTTP client: its bearer token (none: the request carries no credential), a custom fetch (e.g. one
 * that closes the request when the caller aborts).
 */
export interface HttpClientOptions {
  readonly token?: string | undefined
  readonly fetch?: (url: string | URL, init?: RequestInit) => Promise<Response>
}

/** Connect a new SDK client to a Streamable HTTP endpoint. */
export const connectHttp = async (url: string, options: HttpClientOptions = {}): Promise<Client> => {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
    ...(options.token !== undefined ? { requestInit: { headers: { authorization: `Bearer ${options.token}` } } } : {})
  })
  const client = new Client({ name: "spawnkit-test-http", version: "1.0.0" })
  await within("http client connect", client.connect(transport), 120_000)
  return client
}

/** The home's orchestrator credential, which `serve --http` draws when it is given no token. */
export const orchestratorCredential = (env: TestEnv) =>
  Fs.readFileSync(NodePath.join(env.home, ".spawnkit-orchestrator.token"), "utf8").trim()

/** Start `spawnkit serve --http --port 0`, read the port from its log line, and connect a client. */
export const startHttp = async (env: TestEnv, extra: Record<string, string> = {}): Promise<Served> => {
  const server = startServerProcess(env, ["--http", "--port", "0"], extra)
  const pid = server.proc.pid
  if (pid === undefined) throw new Error("http server has no pid")
  let gone = false
  const exited = server.exit.then(() => {
    gone = true
  })
  let clientRef: Client | undefined
  let url: string | undefined
  let token: string | undefined
  const served: Served = {
    kind: "http",
    get client() {
      if (clientRef === undefined) throw new Error("http client not connected")
      return clientRef
    },
    pid,
    get url() {
      return url
    },
    get token() {
      return token
    },
    stderr: server.stderr,
    exited,
    hasExited: () => gone
  }
  live.add(served)
  void exited.then(() => live.delete(served))
  await waitFor(
    `http server announces its URL (stderr: ${server.stderr().slice(0, 500)})`,
    () => gone || URL_LINE.test(server.stderr()),
    30_000
  )
  const match = URL_LINE.exec(server.stderr())
  if (match === null) throw new Error(`http server exited before serving; stderr: ${server.stderr()}`)
  url = match[1]!
  expect(Number(match[2])).toBeGreaterThan(0)
  token = extra["SPAWNKIT_HTTP_TOKEN"] ?? orchestratorCredential(env)
  clientRef = await connectHttp(url, { token })
  return served
}

/** Start a server of either kind. */
export const startServer = (kind: Kind, env: TestEnv, extra: Record<string, string> = {}) =>
  kind === "stdio" ? startStdio(env, extra) : startHttp(env, extra)

/**
 * What the tests of one file start: `newEnv()` makes a test environment, `own(served)` and `ownProcess(server)` take
 * a server; after each test every such server is killed (and waited for) and every environment disposed.
 */
export const ownedPerTest = () => {
  const servers: Array<Served> = []
  const processes: Array<ServerProcess> = []
  const envs: Array<TestEnv> = []
  afterEach(async () => {
    await killServers(servers.splice(0))
    for (const server of processes.splice(0)) {
      if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill("SIGKILL")
      await within(`server ${server.proc.pid} exits`, server.exit, 10_000)
    }
    for (const env of envs.splice(0)) await disposeEnv(env)
  })
  return {
    newEnv: (agentCommand?: string) => {
      const env = makeTestEnv(agentCommand)
      envs.push(env)
      return env
    },
    own: (served: Served) => {
      servers.push(served)
      return served
    },
    ownProcess: (server: ServerProcess) => {
      processes.push(server)
      return server
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Tool calls

/** The text of a tool result. */
export const textOf = (result: CallToolResult): string =>
  result.content.flatMap((c) => (c.type === "text" ? [c.text] : [])).join("\n")

/** Call a tool; the raw result. */
export const call = (
  client: Client,
  name: string,
  args: Record<string, unknown>,
  options?: RequestOptions
): Promise<CallToolResult> => client.callTool({ name, arguments: args }, undefined, options) as Promise<CallToolResult>

/** Call a tool that must succeed; its structured result (checked against the JSON text). */
export const ok = async (client: Client, name: string, args: Record<string, unknown>): Promise<any> => {
  const result = await call(client, name, args)
  if (result.isError === true) throw new Error(`${name} failed: ${textOf(result)}`)
  expect(JSON.parse(textOf(result))).toEqual(result.structuredContent)
  return result.structuredContent
}

/** Call a tool that must fail; its error text, which must start with `tag:`. */
export const fails = async (client: Client, name: string, args: Record<string, unknown>, tag: string) => {
  const result = await call(client, name, args)
  const text = textOf(result)
  expect(result.isError, `${name} should fail with ${tag}, got ${text}`).toBe(true)
  expect(text.startsWith(`${tag}:`), `${name}: expected ${tag}, got: ${text}`).toBe(true)
  return text
}

/** Fault injection that makes every spawn hang once its tmux session exists: how a test keeps a call in flight. */
export const HANG_AFTER_SESSION = { SPAWNKIT_FAULT: "after-session:hang" }

let hangingSpawns = 0

/**
 * Start a deploy_headless_agent that hangs (on a server started with HANG_AFTER_SESSION) and resolve once its tmux
 * session and its reservation exist: its outcome (result or error), and whether the call is still pending.
 */
export const startHangingDeploy = async (env: TestEnv, client: Client, taskId: string, signal?: AbortSignal) => {
  const before = liveSessions(env.socket).length
  let pending = true
  const settled = call(
    client,
    "deploy_headless_agent",
    // A prompt of its own: the same type and prompt again would be refused as a duplicate.
    { task_id: taskId, agent_type: "slow", prompt: `a spawn that hangs (${++hangingSpawns})` },
    signal !== undefined ? { signal } : undefined
  ).then((result) => ({ result }), (error: unknown) => ({ error })).finally(() => {
    pending = false
  })
  await waitFor("the hanging spawn's session exists", () => liveSessions(env.socket).length === before + 1)
  await waitFor(
    "the hanging spawn's reservation exists",
    () => readRegistryFile(env.home, taskId).agents.some((a: any) => a.status === "reserved")
  )
  return { settled, stillPending: () => pending }
}

/** Wait until a task holds no tmux session, prompt file or record: what it spawned has been rolled back. */
export const waitRolledBack = (env: TestEnv, taskId: string) =>
  waitFor(
    "the cancelled spawn is rolled back",
    () =>
      liveSessions(env.socket).length === 0 && promptFiles(env.home, taskId).length === 0 &&
      readRegistryFile(env.home, taskId).agents.length === 0
  )

// ---------------------------------------------------------------------------------------------------------------------
// tmux and disk

const tmux = (socket: string, args: ReadonlyArray<string>) =>
  spawnSync("tmux", ["-S", socket, ...args], { encoding: "utf8" })

/** A variable of a session's environment (`tmux show-environment`), or undefined. */
export const sessionEnv = (socket: string, session: string, name: string): string | undefined => {
  const r = tmux(socket, ["show-environment", "-t", session, name])
  if (r.status !== 0) return undefined
  const line = r.stdout.trim()
  return line.startsWith(`${name}=`) ? line.slice(name.length + 1) : undefined
}

/** The processes below one (children, their children, …), from /proc. */
const descendantsOf = (pid: number): Array<number> => {
  const children = new Map<number, Array<number>>()
  for (const name of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${name}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)])
    } catch {
      // Gone meanwhile.
    }
  }
  const out: Array<number> = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

/**
 * An agent's secret as its own processes have it (the runner reads it from its file and exports it to the agent):
 * read from /proc/<pid>/environ of the processes below the session's pane, as any process of the same user could.
 * Waits until the agent has started.
 */
export const agentSecret = async (socket: string, session: string): Promise<string> => {
  let secret: string | undefined
  await waitFor(`the secret of ${session} in its agent's environment`, () => {
    const r = tmux(socket, ["display-message", "-p", "-t", `=${session}:`, "#{pane_pid}"])
    const panePid = Number(r.stdout.trim())
    if (r.status !== 0 || !Number.isInteger(panePid) || panePid <= 1) return false
    for (const pid of descendantsOf(panePid)) {
      try {
        const vars = Fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
        const line = vars.find((v) => v.startsWith("SPAWNKIT_AGENT_SECRET="))
        if (line !== undefined) secret = line.slice("SPAWNKIT_AGENT_SECRET=".length)
      } catch {
        // Gone meanwhile.
      }
      if (secret !== undefined) return true
    }
    return false
  })
  return secret!
}

/** A session's pane: whether it is dead and its current directory. */
export const paneOf = (socket: string, session: string) => {
  const r = tmux(socket, ["display-message", "-p", "-t", `=${session}:`, "#{pane_dead}\t#{pane_current_path}"])
  if (r.status !== 0) return undefined
  const [dead, cwd] = r.stdout.trim().split("\t")
  return { dead: dead === "1", cwd }
}

/** Ids of the `spawnkit agent-exited` processes (started by the pane-died hook) of a socket. */
const exitHookProcesses = (socket: string): Array<number> =>
  execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes("agent-exited") && l.includes(`--socket ${socket}`))
    .map((l) => Number(l.trim().split(/\s+/)[0]))

/**
 * Clean up a test environment (env.cleanup(): kill the socket's tmux server, remove its directory) with the pane-died
 * hook removed first and once no exit-hook process of its socket runs any more: such a process, started by an agent
 * killed shortly before, must not be left working on a home being removed.
 */
export const disposeEnv = async (env: TestEnv | undefined): Promise<void> => {
  if (env === undefined) return
  tmux(env.socket, ["set-hook", "-gu", "pane-died"])
  await waitFor(`exit-hook processes of ${env.socket} end`, () => exitHookProcesses(env.socket).length === 0, 15_000)
  env.cleanup()
}

/** JSON lines of a file. */
export const jsonLines = (file: string): Array<any> =>
  Fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))

/** Paths inside a task directory. */
export const taskFiles = (home: string, taskId: string, agentId: string) => ({
  prompt: NodePath.join(home, taskId, "prompts", `${agentId}.prompt`),
  log: NodePath.join(home, taskId, "logs", `${agentId}.log`),
  progress: NodePath.join(home, taskId, "progress", `${agentId}_progress.jsonl`),
  findings: NodePath.join(home, taskId, "findings", `${agentId}_findings.jsonl`)
})

/**
 * `spawnkit supervise` on a test home: the host's broker, which a Claude or Codex agent is not spawned without.
 * `processEnv` is its whole environment (default: the test's server environment); stopped when the test ends.
 */
export const startBroker = async (env: TestEnv, processEnv: Record<string, string> = serverEnv(env)) => {
  const proc = spawn(process.execPath, [CLI, "supervise"], {
    env: { ...processEnv, ...env.env },
    stdio: ["ignore", "ignore", "pipe"]
  })
  let stderr = ""
  proc.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
  onTestFinished(async () => {
    proc.kill("SIGTERM")
    await within(`supervisor ${proc.pid} exits`, exited, 30_000)
  })
  const marker = NodePath.join(env.home, ".spawnkit-brokers", `${proc.pid}.json`)
  await waitFor(`the supervisor's broker is announced (stderr: ${stderr.slice(0, 500)})`, () => Fs.existsSync(marker))
  return { pid: proc.pid!, url: JSON.parse(Fs.readFileSync(marker, "utf8")).url as string }
}
