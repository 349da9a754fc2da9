/**
 * A scenario's environment: a temporary directory (its spawnkit home and the socket of its own tmux server), the
 * environment variables its processes get, and spawnkit's layer on it. Acquired in the caller's scope and released
 * by it, in reverse: the tmux server is killed and its agents' processes waited for, then the directory removed.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Fs from "node:fs"
import { FaultInjection } from "../faults/FaultInjection.js"
import { exitsDir } from "../host/Workspace.js"
import { layer as spawnkitLayer, type Services } from "../Spawnkit.js"
import type { SpawnkitSettings } from "../SpawnkitConfig.js"
import { runCommand } from "./Exec.js"
import { benchFailed } from "./Scenario.js"

/** A database of one scenario on the benchmark's PostgreSQL server. */
export interface ScenarioDatabase {
  readonly name: string
  readonly url: string
}

/** Where a scenario runs. */
export interface ScenarioEnv {
  readonly dir: string
  readonly home: string
  readonly socket: string
  /** SPAWNKIT_* variables for the scenario's processes. */
  readonly env: Readonly<Record<string, string>>
  readonly database?: ScenarioDatabase
  /** spawnkit's services on this home, socket and database. */
  readonly layer: ReturnType<typeof spawnkitLayer>
}

/** The agent command as one shell-quoted string (SPAWNKIT_AGENT_COMMAND). */
const shellQuoted = (command: ReadonlyArray<string>) => command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")

/**
 * tmux's answer when there is no server to kill: the scenario never started one, or its last session just ended and
 * the server was exiting on its own as kill-server reached it.
 */
const NO_SERVER = /no server running|error connecting to|No such file or directory|server exited unexpectedly/
/** How often, and how long at most, the end of a killed server's processes is waited for. */
const EXIT_POLL = "20 millis"
const EXIT_WAIT = "10 seconds"

/**
 * The process groups of a tmux server: its own and its panes' (tmux starts each pane as a session leader, so its
 * agent and whatever the agent started share the pane's group). None when no server runs.
 */
const serverGroups = (socket: string) =>
  runCommand("tmux", ["-S", socket, "list-panes", "-a", "-F", "#{pid} #{pane_pid}"]).pipe(
    Effect.map((r) =>
      r.exitCode !== 0 ? [] : [...new Set(r.stdout.split(/\s+/).filter((n) => /^[1-9]\d*$/.test(n)).map(Number))]
    )
  )

/** Process groups with a live (non-zombie) member, from one read of the process table. */
const liveGroups = runCommand("ps", ["-e", "-o", "pgid=,stat="]).pipe(
  Effect.map((r) =>
    new Set(
      r.stdout.split("\n").map((l) => l.trim().split(/\s+/)).filter(([, stat]) =>
        stat !== undefined && !stat.startsWith("Z")
      )
        .map(([pgid]) => Number(pgid))
    )
  )
)

/** Wait until no process of these groups is left (zombies aside), for EXIT_WAIT at most. */
const groupsEnded = (groups: ReadonlyArray<number>) =>
  liveGroups.pipe(
    Effect.repeat({ until: (live) => !groups.some((g) => live.has(g)), schedule: Schedule.spaced(EXIT_POLL) }),
    Effect.timeoutOrElse({
      duration: EXIT_WAIT,
      orElse: () => Effect.logWarning(`processes of tmux groups ${groups.join(", ")} still run after kill-server`)
    })
  )

/** Kill the tmux server on `socket` and, with it, every agent it runs; return once their processes have ended. */
export const killTmuxServer = (socket: string) =>
  Effect.gen(function*() {
    const groups = yield* serverGroups(socket)
    const r = yield* runCommand("tmux", ["-S", socket, "kill-server"])
    if (r.exitCode !== 0 && !NO_SERVER.test(r.stderr)) {
      return yield* Effect.logWarning(`tmux kill-server on ${socket} failed (${r.exitCode}): ${r.stderr.trim()}`)
    }
    if (groups.length > 0) yield* groupsEnded(groups)
  }).pipe(Effect.catch((e) => Effect.logWarning(`tmux kill-server on ${socket} could not run: ${e.message}`)))

/**
 * A new environment for scenario `name`, released with the caller's scope; its agent command may be derived from its
 * directory (an agent script written there), and `settings` adds to spawnkit's settings in the environment's layer
 * (its processes' variables are not changed).
 */
export const scenarioEnv = Effect.fn("Bench.scenarioEnv")(function*(
  name: string,
  command: ReadonlyArray<string> | ((dir: string) => ReadonlyArray<string>),
  database?: ScenarioDatabase,
  settings: Partial<SpawnkitSettings> = {}
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: `spawnkit-bench-${name}-` }).pipe(
    Effect.mapError(benchFailed(`making the ${name} scenario's directory`))
  )
  const home = path.join(dir, "home")
  yield* fs.makeDirectory(home).pipe(Effect.mapError(benchFailed(`making the ${name} scenario's home`)))
  const socket = path.join(dir, "tmux.sock")
  // Registered after the directory, so it runs before the directory's removal.
  yield* Effect.addFinalizer(() => killTmuxServer(socket))
  const agentCommand = shellQuoted(typeof command === "function" ? command(dir) : command)
  const layer = spawnkitLayer({
    home,
    tmuxSocket: { _tag: "Path", path: socket },
    defaultEngine: "custom",
    agentCommand: Option.some(agentCommand),
    globalMaxConcurrent: 100_000,
    faultSpec: "",
    databaseUrl: database === undefined ? Option.none() : Option.some(Redacted.make(database.url)),
    ...settings
  }, FaultInjection.none)
  return {
    dir,
    home,
    socket,
    env: {
      SPAWNKIT_HOME: home,
      SPAWNKIT_TMUX_SOCKET: socket,
      SPAWNKIT_ENGINE: "custom",
      SPAWNKIT_AGENT_COMMAND: agentCommand,
      SPAWNKIT_GLOBAL_MAX_CONCURRENT: "100000",
      SPAWNKIT_RECONCILE_INTERVAL: "0",
      ...(database !== undefined ? { SPAWNKIT_DATABASE_URL: database.url } : {})
    },
    ...(database !== undefined ? { database } : {}),
    layer
  } satisfies ScenarioEnv
})

/** Run spawnkit operations against a scenario's home, socket and database. */
export const withSpawnkit = <A, E>(env: ScenarioEnv, effect: Effect.Effect<A, E, Services>) =>
  Effect.provide(effect, env.layer)

/** Wait until a supervisor has put its marker in the home's exits directory (it watches that directory from then on). */
export const supervisorStarted = (home: string) =>
  Effect.gen(function*() {
    const dir = exitsDir(home)
    while (!(Fs.existsSync(dir) && Fs.readdirSync(dir).some((n) => n.startsWith(".supervisor.")))) {
      yield* Effect.sleep(Duration.millis(10))
    }
  })
