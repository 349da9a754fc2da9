/**
 * Test harness: a temp directory per test holding its home and its tmux server's socket (`tmux -S`, never a socket
 * name under the shared TMUX_TMPDIR), a database of its own for the PostgreSQL registry, spawnkit's layer on them,
 * and clean-up that kills the tmux server (and waits until it is gone), removes the directory and drops the database.
 */
import { afterEach } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { inject } from "vitest"
import * as Spawnkit from "../../src/index.js"

// Which registry a test uses is the test's choice alone, never the developer's shell.
delete process.env["SPAWNKIT_DATABASE_URL"]

/** The registry backends every invariant suite runs against. */
export const BACKENDS = ["file", "postgresql"] as const
/** @see BACKENDS */
export type Backend = (typeof BACKENDS)[number]

/** Run SQL on the test server (as its superuser) and return psql's unaligned output. */
export const psql = (url: string, sql: string): string => {
  const out = spawnSync(inject("psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql], {
    encoding: "utf8"
  })
  if (out.status !== 0) throw new Error(`psql failed (${out.status}): ${out.stderr || out.error}`)
  return out.stdout
}

/** The test server's URL with another database. */
export const databaseUrlFor = (database: string): string => {
  const url = new URL(inject("databaseUrl"))
  url.pathname = `/${database}`
  return url.toString()
}

/** A new, empty database on the test server; returns its name and URL. */
export const createDatabase = () => {
  const name = `sk_${process.pid}_${Math.random().toString(16).slice(2, 10)}`
  psql(inject("databaseUrl"), `CREATE DATABASE ${name}`)
  return { name, url: databaseUrlFor(name) }
}

/** Drop a database made by createDatabase, ending its connections. */
export const dropDatabase = (name: string) => {
  psql(inject("databaseUrl"), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}

const TASK_ID = /^TASK-[A-Za-z0-9-]{1,64}$/

/** A private test environment. */
export interface TestEnv {
  readonly backend: Backend
  /** The test's temp directory: its home and its tmux socket live here. */
  readonly dir: string
  readonly home: string
  /** The path of the tmux server's socket (`tmux -S`). */
  readonly socket: string
  /** The PostgreSQL registry's database URL (none for the file registry). */
  readonly databaseUrl: string | undefined
  /** A task's registry as stored (the file, or the row's document), read directly; throws when there is none. */
  readonly readTask: (taskId: string) => any
  /** Environment variables for a child process using this environment. */
  readonly env: Readonly<Record<string, string>>
  readonly layer: (
    overrides?: Partial<Spawnkit.SpawnkitSettings>,
    faults?: Layer.Layer<Spawnkit.FaultInjection, never, Spawnkit.SpawnkitConfig>
  ) => ReturnType<typeof Spawnkit.layer>
  readonly cleanup: () => void
}

/** The default custom-engine command of tests: an agent that lives until killed. */
export const SLEEPER = "sleep 600"

/**
 * A temp directory for a test's tmux socket and files. Its path stays short: a unix socket's path is limited to about
 * 107 bytes.
 */
export const makeTempDir = (prefix = "sk-"): string => Fs.mkdtempSync(NodePath.join(Os.tmpdir(), prefix))

/** tmux's arguments for a socket path. */
export const tmuxOn = (socket: string, ...args: ReadonlyArray<string>): Array<string> => ["-S", socket, ...args]

/**
 * Kill the tmux server on a socket path and wait until no server answers there (tmux leaves its socket file behind:
 * the caller removes the directory). Throws when the server is still there after 30 s.
 */
export const killTmuxServer = (socket: string): void => {
  spawnSync("tmux", tmuxOn(socket, "kill-server"), { stdio: "ignore" })
  const deadline = Date.now() + 30_000
  for (;;) {
    const probe = spawnSync("tmux", tmuxOn(socket, "list-sessions"), { encoding: "utf8" })
    if (probe.status !== 0 && /no server running|error connecting/.test(probe.stderr)) return
    if (Date.now() > deadline) throw new Error(`the tmux server on ${socket} is still running after kill-server`)
    spawnSync("tmux", tmuxOn(socket, "kill-server"), { stdio: "ignore" })
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
  }
}

/** Create a temp directory with a home and a tmux socket path in it and, for PostgreSQL, a database of its own. */
export const makeTestEnv = (agentCommand = SLEEPER, backend: Backend = "file"): TestEnv => {
  const dir = makeTempDir()
  const home = NodePath.join(dir, "home")
  Fs.mkdirSync(home)
  const socket = NodePath.join(dir, "tmux")
  const database = backend === "postgresql" ? createDatabase() : undefined
  const env = {
    SPAWNKIT_HOME: home,
    SPAWNKIT_TMUX_SOCKET: socket,
    SPAWNKIT_AGENT_COMMAND: agentCommand,
    SPAWNKIT_ENGINE: "custom",
    ...(database !== undefined ? { SPAWNKIT_DATABASE_URL: database.url } : {})
  }
  const readTask = (taskId: string): any => {
    if (database === undefined) return readRegistryFile(home, taskId)
    if (!TASK_ID.test(taskId)) throw new Error(`not a task id: ${taskId}`)
    const doc = psql(database.url, `SELECT doc FROM spawnkit_tasks WHERE task_id = '${taskId}'`).trim()
    if (doc === "") throw new Error(`no task ${taskId} in ${database.name}`)
    return JSON.parse(doc)
  }
  return {
    backend,
    dir,
    home,
    socket,
    databaseUrl: database?.url,
    readTask,
    env,
    layer: (overrides = {}, faults) =>
      Spawnkit.layer(
        {
          home,
          tmuxSocket: { _tag: "Path", path: socket },
          agentCommand: Option.some(agentCommand),
          defaultEngine: "custom",
          databaseUrl: database === undefined ? Option.none() : Option.some(Redacted.make(database.url)),
          ...overrides
        },
        faults
      ),
    cleanup: () => {
      killTmuxServer(socket)
      Fs.rmSync(dir, { recursive: true, force: true })
      if (database !== undefined) dropDatabase(database.name)
    }
  }
}

/** Names of the live sessions on a socket path (none when its server is down). */
export const liveSessions = (socket: string): Array<string> => {
  const r = spawnSync("tmux", ["-S", socket, "list-sessions", "-F", "#{session_name}"], { encoding: "utf8" })
  return r.status === 0 ? r.stdout.split("\n").filter((l) => l.length > 0) : []
}

/**
 * Prompt and MCP config files in a task's prompts directory (an agent's `.secret` file, which its runner deletes as it
 * starts, is left out: see secretFiles).
 */
export const promptFiles = (home: string, taskId: string): Array<string> => {
  const dir = NodePath.join(home, taskId, "prompts")
  return Fs.existsSync(dir) ? Fs.readdirSync(dir).filter((n) => !n.endsWith(".secret")) : []
}

/** Agents' secret files left in a task's prompts directory. */
export const secretFiles = (home: string, taskId: string): Array<string> => {
  const dir = NodePath.join(home, taskId, "prompts")
  return Fs.existsSync(dir) ? Fs.readdirSync(dir).filter((n) => n.endsWith(".secret")) : []
}

/** A task's registry as JSON, read straight from disk. */
export const readRegistryFile = (home: string, taskId: string): any =>
  JSON.parse(Fs.readFileSync(NodePath.join(home, taskId, "AGENT_REGISTRY.json"), "utf8"))

/** Run an effect against a test environment's layer. */
export const runIn = <A, E>(env: TestEnv, effect: Effect.Effect<A, E, Spawnkit.Services>) =>
  Effect.runPromise(effect.pipe(Effect.provide(env.layer())))

/** Path of the compiled CLI (built by `npm test` before vitest runs). */
export const CLI = NodePath.resolve(import.meta.dirname, "..", "..", "dist", "cli", "main.js")

/** Run the compiled CLI synchronously with a test environment. */
export const cli = (env: TestEnv, args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env.env, ...extraEnv }
  })

/** Whether a process exists (the one check spawnkit itself uses). */
export { processAlive } from "../../src/host/Processes.js"

/** Every path under a directory with a digest of its contents (directories and symlinks by kind). */
export const fileTree = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of Fs.readdirSync(d).sort()) {
      const p = NodePath.join(d, name)
      const st = Fs.lstatSync(p)
      if (st.isDirectory()) {
        out[p] = "dir"
        walk(p)
      } else if (st.isFile()) {
        out[p] = createHash("sha256").update(Fs.readFileSync(p)).digest("hex")
      } else {
        out[p] = st.isSymbolicLink() ? "symlink" : "other"
      }
    }
  }
  walk(dir)
  return out
}

/** Ids of processes whose command line contains `needle` (from the process table). */
export const processesMatching = (needle: string): Array<number> =>
  execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(needle) && !l.includes("ps -eo"))
    .map((l) => Number(l.trim().split(/\s+/)[0]))

/**
 * Poll `probe` every 50 ms until it returns a value other than undefined or false, and return that value; fail with
 * `what` after `timeoutMs`. For waiting on conditions only, never for timing assertions.
 */
export const waitFor = async <A>(
  what: string,
  probe: () => A | undefined | false,
  timeoutMs = 60_000
): Promise<Exclude<A, false>> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value as Exclude<A, false>
    if (Date.now() > deadline) throw new Error(`condition not reached in time: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** SIGTERM a child (SIGKILL after 10 s) and wait until it has exited. */
export const stopChild = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

/**
 * Test environments for one test file: `newEnv(agentCommand?, backend?)` makes one, and every environment made during a test
 * is cleaned up (tmux server killed, directory removed) after it.
 */
export const testEnvs = () => {
  const envs: Array<TestEnv> = []
  afterEach(() => {
    for (const env of envs.splice(0)) env.cleanup()
  })
  return (agentCommand?: string, backend: Backend = "file"): TestEnv => {
    const env = makeTestEnv(agentCommand, backend)
    envs.push(env)
    return env
  }
}

/** The JSON a CLI run printed on stdout. */
export const stdoutJson = (out: { readonly stdout: string }): any => JSON.parse(out.stdout)

/** A tmux wrapper that holds every `new-session` at a gate until the test opens it. */
export interface GatedTmux {
  /** The wrapper, for SPAWNKIT_TMUX_BIN / `tmuxBin`. */
  readonly bin: string
  /** How many `new-session` calls are waiting at the gate (or have passed it). */
  readonly arrivals: () => number
  /** Let every waiting and later `new-session` through. */
  readonly open: () => void
}

/**
 * Make a gated tmux in `dir`: a spawn that reaches its session step waits there (its reservation written, its
 * prompt file too) until `open()`, so a test can act on a spawn in flight, without timing.
 */
export const gatedTmux = (dir: string): GatedTmux => {
  const bin = NodePath.join(dir, "gated-tmux")
  const gate = NodePath.join(dir, "gate-open")
  const arrived = NodePath.join(dir, "gate-arrivals")
  Fs.mkdirSync(arrived, { recursive: true })
  Fs.writeFileSync(
    bin,
    `#!/usr/bin/env bash
for a in "$@"; do
  if [ "$a" = new-session ]; then
    touch "${arrived}/$$"
    # Waits for the gate, but never outlives the process that ran it (or the test's directory).
    while [ ! -e "${gate}" ]; do
      kill -0 $PPID 2>/dev/null && [ -d "${arrived}" ] || exit 1
      sleep 0.05
    done
    break
  fi
done
exec tmux "$@"
`,
    { mode: 0o755 }
  )
  return { bin, arrivals: () => Fs.readdirSync(arrived).length, open: () => Fs.writeFileSync(gate, "") }
}

/**
 * A Node script run as a child process with the test environment's settings, its output collected: `done` resolves
 * with its stdout when it exits 0 and rejects naming it, its status and both outputs otherwise. Kill it in afterEach.
 */
export const runNode = (env: TestEnv, args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d))
  const done = new Promise<string>((resolve, reject) =>
    child.once("exit", (code, signal) =>
      code === 0
        ? resolve(out)
        : reject(
          new Error(
            `${NodePath.basename(args[0] ?? "")} ${args.slice(1).join(" ")} ended ${code ?? signal}: ${out}\n${err}`
          )
        ))
  )
  return { child, done }
}

/** Run git in `dir`; its output, trimmed (a failure throws with git's own message). */
export const gitIn = (dir: string, ...args: ReadonlyArray<string>): string => {
  const r = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`)
  return r.stdout.trim()
}

/** A new git repository `<dir>/repo` with one commit of a README and `files` (path to text). */
export const newRepo = (dir: string, files: Readonly<Record<string, string>> = {}): string => {
  const repo = NodePath.join(dir, "repo")
  Fs.mkdirSync(repo)
  gitIn(repo, "init", "-q")
  for (const [path, text] of Object.entries({ README: "r\n", ...files })) {
    Fs.mkdirSync(NodePath.dirname(NodePath.join(repo, path)), { recursive: true })
    Fs.writeFileSync(NodePath.join(repo, path), text)
  }
  gitIn(repo, "add", "-A")
  gitIn(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
  return repo
}
