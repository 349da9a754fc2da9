/**
 * Broker footprint: what N agents' MCP access costs through the host's broker (one long-lived `serve --http` on
 * loopback, each agent authenticated by its own bearer token) against today's way without one (a stdio
 * `spawnkit serve` per agent, started by the agent's MCP client with the agent's identity in its environment).
 *
 * One environment (its home, tmux server and temp directory, all gone with the scope) holds one task of N live agents
 * (custom engine, `sleep 600`), spawned through the API; each agent's secret is read from its own process's
 * environment (/proc/<pid>/environ of the processes below its pane), as its MCP client would have it. Then, in turn:
 * - stdio: N MCP SDK clients, each starting its own `spawnkit serve` (StdioClientTransport) with its agent's identity,
 *   one after another, all kept open; each timed from its start to the answer of its first call (`list_tasks`);
 *   with all N open, the servers' resident memory (VmRSS) summed and their CPU (utime + stime) summed; then all closed;
 * - broker: one `serve --http --port 0 --host 127.0.0.1` (SPAWNKIT_HTTP_TOKEN set: the orchestrator's credential),
 *   timed until it logs its URL; its VmRSS and CPU read then, then N MCP SDK clients over Streamable HTTP, each with
 *   its agent's token (`ska1.<task>.<agent>.<secret>`), opened one after another and timed the same way; with all N
 *   open, its VmRSS and CPU read again.
 * At each measured point the spawnkit server processes of the home are counted from /proc (N, then 1). The figures are
 * compared as ratios within the run: no figure is checked against a wall-clock limit.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { formatAgentToken } from "../domain/AgentToken.js"
import type { AgentId, TaskId } from "../domain/Ids.js"
import { brokersDir } from "../host/Brokers.js"
import { cliScript } from "../host/PackagePaths.js"
import { spawn } from "../spawn/Spawner.js"
import { createTask } from "../tasks/Tasks.js"
import { type ScenarioEnv, scenarioEnv, withSpawnkit } from "./Environment.js"
import { runCommand } from "./Exec.js"
import { BenchFailed, benchFailed } from "./Scenario.js"
import { summarize, type Summary } from "./Stats.js"

/** Most agents a run may ask for: each stdio server holds some 80 MiB. */
export const FOOTPRINT_MAX_AGENTS = 100
/** Longest the agents' secrets, the broker's URL or the stdio servers' end may take before the measurement fails. */
const WAIT_LIMIT = Duration.seconds(60)
/** How often the agents' processes and the stdio servers' end are looked at again. */
const POLL = Duration.millis(50)
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ). */
const USER_HZ = 100
/** The line `serve --http` logs once it listens. */
const URL_LINE = /spawnkit MCP server on (http:\/\/127\.0\.0\.1:\d+\/mcp)/

/** One way of serving the agents, measured with all N clients open. */
export interface FootprintSide {
  /** spawnkit server processes of the home counted at the measured point (from /proc). */
  readonly servers: number
  /** Clients whose first call was answered with their own task. */
  readonly answered: number
  /** Per client, from its start (stdio: the server's spawn; HTTP: the session's first request) to its first answer, ms. */
  readonly startup: Summary
  /** Resident memory of the server processes at the measured point, summed, MiB. */
  readonly rssMiB: number
  /** CPU (user + system) the server processes had used by then, summed, seconds. */
  readonly cpuSeconds: number
}

/** The broker's side: the one server, before the clients and with them all open. */
export interface BrokerSide extends FootprintSide {
  /** From the broker's spawn until it logged its URL (paid once, not per agent), ms. */
  readonly brokerStartMs: number
  /** Its resident memory once it listened, before any client, MiB. */
  readonly rssBeforeMiB: number
  /** rssMiB - rssBeforeMiB: what the N sessions added. */
  readonly rssGrowthMiB: number
  /** Its CPU once it listened, before any client, seconds. */
  readonly cpuBeforeSeconds: number
}

/** What the measurement found. */
export interface BrokerFootprintResult {
  readonly agents: number
  /** Today's way: a stdio server per agent. */
  readonly stdio: FootprintSide & {
    /** The servers' resident memory, per server, MiB. */
    readonly rssPerServerMiB: Summary
  }
  readonly broker: BrokerSide
  /** stdio / broker, within this run. */
  readonly ratios: {
    /** Server processes: N / 1. */
    readonly servers: number
    /** The N servers' memory over the broker's, all clients open. */
    readonly memory: number
    /** Per-agent start-up: p50 of the stdio servers' over p50 of the HTTP sessions'. */
    readonly startupP50: number
    /** CPU of the N servers over the broker's (its own start-up included). */
    readonly cpu: number
  }
  /** The temp directory and the processes the measurement started, all gone when it returned (for checks). */
  readonly started: {
    readonly dir: string
    readonly serverPids: ReadonlyArray<number>
    readonly agentPids: ReadonlyArray<number>
  }
}

/** An agent of the measurement's task, with what its MCP client would be given. */
interface AgentCredentials {
  readonly taskId: TaskId
  readonly agentId: AgentId
  readonly session: string
  readonly secret: string
  /** The agent's processes holding the secret in their environment. */
  readonly pids: ReadonlyArray<number>
}

/** A connected client, the pid of its server (stdio) and how long it took to its first answer. */
interface Opened {
  readonly ms: number
  readonly pid: number | undefined
}

const round2 = (n: number) => Math.round(n * 100) / 100

const ratio = (a: number, b: number) => round2(a / Math.max(b, 0.001))

const now = Clock.currentTimeNanos.pipe(Effect.map((ns) => Number(ns) / 1e6))

/** A pid's fields of /proc/<pid>/stat after its command name: state is [0], ppid [1], utime [11], stime [12]. */
const statFields = (pid: number | string) => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
}

/** VmRSS of a live process, MiB. */
const residentMiB = (pid: number) =>
  Effect.try({
    try: () => {
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
      if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`)
      return Number(kb) / 1024
    },
    catch: benchFailed(`reading the memory of process ${pid}`)
  })

/** CPU (utime + stime) a live process has used, seconds. */
const cpuSeconds = (pid: number) =>
  Effect.try({
    try: () => {
      const fields = statFields(pid)
      return (Number(fields[11]) + Number(fields[12])) / USER_HZ
    },
    catch: benchFailed(`reading the CPU of process ${pid}`)
  })

/** Sum of a figure over processes. */
const summed = (pids: ReadonlyArray<number>, figure: (pid: number) => Effect.Effect<number, BenchFailed>) =>
  Effect.map(Effect.forEach(pids, figure), (xs) => xs.reduce((a, b) => a + b, 0))

/** Every process's children, from one read of /proc. */
const childrenByParent = () => {
  const children = new Map<number, Array<number>>()
  for (const name of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      const ppid = Number(statFields(name)[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)])
    } catch {
      // Gone meanwhile.
    }
  }
  return children
}

const descendantsOf = (children: ReadonlyMap<number, ReadonlyArray<number>>, pid: number): Array<number> =>
  (children.get(pid) ?? []).flatMap((c) => [c, ...descendantsOf(children, c)])

/** A variable of a process's environment (/proc/<pid>/environ), or undefined. */
const environValue = (pid: number, name: string) => {
  try {
    const line = Fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((v) => v.startsWith(`${name}=`))
    return line?.slice(name.length + 1)
  } catch {
    return undefined
  }
}

/**
 * The spawnkit servers of a home: live processes running `node <cliScript> serve ...` with SPAWNKIT_HOME set to it (a
 * zombie has no command line, so it is not counted).
 */
const serversOf = (home: string) =>
  Effect.sync(() =>
    Fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
      try {
        const argv = Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
        return argv[1] === cliScript && argv[2] === "serve" && environValue(pid, "SPAWNKIT_HOME") === home
      } catch {
        return false
      }
    })
  )

/** Poll `probe` every POLL until it gives a value, failing with `what` after WAIT_LIMIT. */
const pollFor = <A, E, R>(what: string, probe: Effect.Effect<A | undefined, E, R>) =>
  Effect.gen(function*() {
    for (;;) {
      const value = yield* probe
      if (value !== undefined) return value
      yield* Effect.sleep(POLL)
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: WAIT_LIMIT,
      orElse: () => Effect.fail(new BenchFailed({ reason: `${what}: not within ${Duration.format(WAIT_LIMIT)}` }))
    })
  )

/** The task and its N agents, spawned through the API (the environment's custom engine: `sleep 600`). */
const spawnAgents = (env: ScenarioEnv, agents: number) =>
  withSpawnkit(
    env,
    Effect.gen(function*() {
      const taskId = (yield* createTask({
        description: "broker footprint",
        max_concurrent: agents,
        max_agents: agents,
        max_children_per_parent: agents,
        max_spawns_per_minute: 1000
      })).task_id as TaskId
      const spawned = yield* Effect.forEach(
        Array.from({ length: agents }, (_, i) => i + 1),
        (i) => spawn({ taskId, agentType: `agent${i}`, prompt: `broker footprint agent ${i}` }),
        { concurrency: 4 }
      )
      return { taskId, spawned }
    })
  ).pipe(Effect.mapError((e) => new BenchFailed({ reason: `spawning the agents: ${e._tag}: ${e.message}` })))

/** Each agent's secret as its own processes have it, once every agent has started (read from /proc). */
const readCredentials = (
  env: ScenarioEnv,
  taskId: TaskId,
  spawned: ReadonlyArray<{ readonly agent_id: string; readonly tmux_session: string }>
) =>
  pollFor(
    "the agents' secrets in their processes' environments",
    Effect.gen(function*() {
      const panes = yield* runCommand("tmux", [
        "-S",
        env.socket,
        "list-panes",
        "-a",
        "-F",
        "#{session_name} #{pane_pid}"
      ])
        .pipe(Effect.mapError(benchFailed("listing the agents' panes")))
      const paneOf = new Map(panes.stdout.split("\n").map((l) => l.split(" ")).map(([s, p]) => [s, Number(p)]))
      const children = childrenByParent()
      const found: Array<AgentCredentials> = []
      for (const agent of spawned) {
        const pane = paneOf.get(agent.tmux_session)
        if (pane === undefined) return undefined
        const holders = descendantsOf(children, pane).flatMap((pid) => {
          const secret = environValue(pid, "SPAWNKIT_AGENT_SECRET")
          return secret === undefined ? [] : [{ pid, secret }]
        })
        if (holders.length === 0) return undefined
        found.push({
          taskId,
          agentId: agent.agent_id as AgentId,
          session: agent.tmux_session,
          secret: holders[0]!.secret,
          pids: [pane, ...holders.map((h) => h.pid)]
        })
      }
      return found
    })
  )

/** The agent's first call: its own task is the one `list_tasks` shows (an agent sees only its own). */
const firstAnswer = async (client: Client, taskId: TaskId) => {
  const result = await client.callTool({ name: "list_tasks", arguments: {} })
  const tasks = (result.structuredContent as { readonly tasks?: ReadonlyArray<{ readonly task_id: string }> })?.tasks
  if (result.isError === true || tasks?.length !== 1 || tasks[0]?.task_id !== taskId) {
    throw new Error(`list_tasks answered ${JSON.stringify(result).slice(0, 300)}`)
  }
}

/** Connect a client and have its first answer; on a failure it is closed (then `cleanup` runs) before the rethrow. */
const connectAnswered = async (
  client: Client,
  transport: Transport,
  taskId: TaskId,
  cleanup: () => Promise<void> = async () => {}
) => {
  try {
    await client.connect(transport)
    await firstAnswer(client, taskId)
  } catch (e) {
    await client.close().catch(() => undefined)
    await cleanup()
    throw e
  }
}

const newClient = () => new Client({ name: "spawnkit-bench-footprint", version: "1" })

/** Close a client (and so its transport, and a stdio transport's server); a failure is only logged. */
const closeClient = (client: Client, what: string) =>
  Effect.tryPromise(() => client.close()).pipe(
    Effect.catch((e) => Effect.logWarning(`closing the ${what} client failed: ${String(e)}`))
  )

/**
 * A client of a new stdio `spawnkit serve` started as `agent` (its identity in the server's environment, as the
 * agent's MCP configuration gives it), connected and answered once; closed, its server stopped, with the scope.
 */
const stdioClient = (env: ScenarioEnv, agent: AgentCredentials) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const transport = new StdioClientTransport({
          command: process.execPath,
          args: [cliScript, "serve"],
          env: {
            ...getDefaultEnvironment(),
            ...env.env,
            SPAWNKIT_TASK_ID: agent.taskId,
            SPAWNKIT_AGENT_ID: agent.agentId,
            SPAWNKIT_AGENT_SECRET: agent.secret
          },
          stderr: "ignore"
        })
        const client = newClient()
        // A failure leaves the server process to the transport: stop it before reporting the failure.
        await connectAnswered(client, transport, agent.taskId, () => transport.close())
        return { client, pid: transport.pid ?? undefined }
      },
      catch: benchFailed(`starting the stdio server of agent ${agent.agentId}`)
    }),
    ({ client }) => closeClient(client, "stdio")
  )

/**
 * A client of the broker at `url` as `agent` (its bearer token), its session opened and answered once; the session
 * ended (DELETE) and the client closed with the scope.
 */
const httpClient = (url: string, agent: AgentCredentials) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const token = formatAgentToken(agent.taskId, agent.agentId, agent.secret)
        const transport = new StreamableHTTPClientTransport(new URL(url), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } }
        })
        const client = newClient()
        await connectAnswered(client, transport, agent.taskId)
        return { client, transport, pid: undefined }
      },
      catch: benchFailed(`opening the broker session of agent ${agent.agentId}`)
    }),
    ({ client, transport }) =>
      Effect.tryPromise(() => transport.terminateSession()).pipe(
        Effect.catch((e) => Effect.logWarning(`ending a broker session failed: ${String(e)}`)),
        Effect.andThen(closeClient(client, "broker"))
      )
  )

/** Open clients one after another (each kept open), timing each from its start to its first answer. */
const openEach = <R>(
  agents: ReadonlyArray<AgentCredentials>,
  open: (agent: AgentCredentials) => Effect.Effect<{ readonly pid: number | undefined }, BenchFailed, R>
) =>
  Effect.forEach(agents, (agent) =>
    Effect.gen(function*() {
      const started = yield* now
      const { pid } = yield* open(agent)
      return { ms: (yield* now) - started, pid } satisfies Opened
    }))

/** Today's way: a stdio server per agent, all open at once; closed (and their processes gone) before it returns. */
const measureStdio = (env: ScenarioEnv, agents: ReadonlyArray<AgentCredentials>) =>
  Effect.gen(function*() {
    const side = yield* Effect.scoped(Effect.gen(function*() {
      const opened = yield* openEach(agents, (agent) => stdioClient(env, agent))
      const pids = opened.flatMap((o) => (o.pid === undefined ? [] : [o.pid]))
      if (new Set(pids).size !== agents.length) {
        return yield* new BenchFailed({ reason: `${agents.length} stdio clients gave ${pids.length} server pids` })
      }
      const rss = yield* Effect.forEach(pids, residentMiB)
      const servers = yield* serversOf(env.home)
      return {
        servers: servers.length,
        answered: opened.length,
        startup: summarize(opened.map((o) => o.ms)),
        rssMiB: round2(rss.reduce((a, b) => a + b, 0)),
        rssPerServerMiB: summarize(rss),
        cpuSeconds: round2(yield* summed(pids, cpuSeconds)),
        pids
      }
    }))
    // Every stdio server ended with its client: none may be left running beside the broker.
    yield* pollFor(
      "the stdio servers' end after their clients closed",
      Effect.map(serversOf(env.home), (left) => (left.length === 0 ? true : undefined))
    )
    return side
  })

/**
 * One broker on loopback for the scope's life (SIGTERM to its process group when the scope closes, SIGKILL 5 s
 * later): its pid, its URL once it logged it, and how long that took. Its marker must name it.
 */
const startBroker = (env: ScenarioEnv) =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const token = randomBytes(32).toString("hex")
    const started = yield* now
    const handle = yield* spawner.spawn(
      ChildProcess.make(process.execPath, [cliScript, "serve", "--http", "--port", "0", "--host", "127.0.0.1"], {
        env: { ...getDefaultEnvironment(), ...env.env, SPAWNKIT_HTTP_TOKEN: token },
        extendEnv: false,
        stdin: "ignore",
        forceKillAfter: Duration.seconds(5)
      })
    ).pipe(Effect.mapError(benchFailed("starting the broker")))
    const announced = yield* Deferred.make<string>()
    const tail: Array<string> = []
    // Its log is read to its end (a full pipe would stall it): the URL line, and the last lines for a failure.
    yield* handle.stderr.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) => {
        tail.push(line)
        if (tail.length > 10) tail.shift()
        const url = URL_LINE.exec(line)?.[1]
        return url === undefined ? Effect.void : Deferred.succeed(announced, url)
      }),
      Effect.ignore,
      Effect.forkScoped
    )
    const exited = handle.exitCode.pipe(
      Effect.ignore,
      Effect.andThen(Effect.sync(() => tail.join("\n"))),
      Effect.flatMap((log) => Effect.fail(new BenchFailed({ reason: `the broker ended before serving: ${log}` })))
    )
    const url = yield* Effect.raceFirst(Deferred.await(announced), exited).pipe(
      Effect.timeoutOrElse({
        duration: WAIT_LIMIT,
        orElse: () => Effect.fail(new BenchFailed({ reason: `the broker logged no URL: ${tail.join("\n")}` }))
      })
    )
    const startMs = (yield* now) - started
    const pid = Number(handle.pid)
    const marker = yield* Effect.try({
      try: () => JSON.parse(Fs.readFileSync(NodePath.join(brokersDir(env.home), `${pid}.json`), "utf8")),
      catch: benchFailed("reading the broker's marker")
    })
    if (marker?.url !== url || marker?.pid !== pid) {
      return yield* new BenchFailed({ reason: `the broker's marker ${JSON.stringify(marker)} is not ${url}, ${pid}` })
    }
    return { pid, url, startMs }
  })

/** The broker's way: one server, its figures before the N clients and with them all open. */
const measureBroker = (env: ScenarioEnv, agents: ReadonlyArray<AgentCredentials>) =>
  Effect.scoped(Effect.gen(function*() {
    const broker = yield* startBroker(env)
    const rssBefore = yield* residentMiB(broker.pid)
    const cpuBefore = yield* cpuSeconds(broker.pid)
    const opened = yield* openEach(agents, (agent) => httpClient(broker.url, agent))
    const rss = yield* residentMiB(broker.pid)
    const cpu = yield* cpuSeconds(broker.pid)
    const servers = yield* serversOf(env.home)
    return {
      side: {
        servers: servers.length,
        answered: opened.length,
        startup: summarize(opened.map((o) => o.ms)),
        rssMiB: round2(rss),
        cpuSeconds: round2(cpu),
        brokerStartMs: round2(broker.startMs),
        rssBeforeMiB: round2(rssBefore),
        rssGrowthMiB: round2(rss - rssBefore),
        cpuBeforeSeconds: round2(cpuBefore)
      } satisfies BrokerSide,
      pid: broker.pid
    }
  }))

/** `agents` agents' MCP access, a stdio server each, then through one broker, in an environment of its own. */
export const measureBrokerFootprint = (agents: number, progress: (text: string) => void) =>
  Effect.scoped(Effect.gen(function*() {
    if (!Number.isInteger(agents) || agents < 1 || agents > FOOTPRINT_MAX_AGENTS) {
      return yield* new BenchFailed({
        reason: `broker footprint: agents must be an integer from 1 to ${FOOTPRINT_MAX_AGENTS}, got ${agents}`
      })
    }
    if (!Fs.existsSync(cliScript)) {
      return yield* new BenchFailed({ reason: `${cliScript} is missing: run npm run build first` })
    }
    const env = yield* scenarioEnv("broker-footprint", ["sleep", "600"])
    const { spawned, taskId } = yield* spawnAgents(env, agents)
    const credentials = yield* readCredentials(env, taskId, spawned)
    progress(`broker footprint: ${agents} agents running; ${agents} stdio servers ...`)
    const stdio = yield* measureStdio(env, credentials)
    progress(`broker footprint: one broker, ${agents} HTTP sessions ...`)
    const broker = yield* measureBroker(env, credentials)
    const { pids, ...stdioSide } = stdio
    const result = {
      agents,
      stdio: stdioSide,
      broker: broker.side,
      ratios: {
        servers: ratio(stdio.servers, broker.side.servers),
        memory: ratio(stdio.rssMiB, broker.side.rssMiB),
        startupP50: ratio(stdio.startup.p50, broker.side.startup.p50),
        cpu: ratio(stdio.cpuSeconds, broker.side.cpuSeconds)
      },
      started: {
        dir: env.dir,
        serverPids: [...pids, broker.pid],
        agentPids: credentials.flatMap((c) => c.pids)
      }
    } satisfies BrokerFootprintResult
    progress(
      `broker footprint (${agents} agents): stdio ${stdio.servers} servers, ${stdio.rssMiB} MiB, ` +
        `${stdio.cpuSeconds} CPU s, start-up p50 ${stdio.startup.p50} / max ${stdio.startup.max} ms; broker ` +
        `${broker.side.servers} server, ${broker.side.rssMiB} MiB (+${broker.side.rssGrowthMiB} for the sessions), ` +
        `${broker.side.cpuSeconds} CPU s, session p50 ${broker.side.startup.p50} / max ${broker.side.startup.max} ms; ` +
        `memory ${result.ratios.memory}x, start-up ${result.ratios.startupP50}x`
    )
    return result
  }))
