/**
 * The Tmux service: the only module that runs tmux. Always on spawnkit's own server (`-L name` or `-S path`), never
 * the user's default one; always argv, never a shell string built from input.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { execFile } from "node:child_process"
import { InvalidInput, TmuxError } from "../domain/Errors.js"
import type { SessionName } from "../domain/Ids.js"
import { SpawnkitConfig, type TmuxSocket } from "../SpawnkitConfig.js"

/** What tmux reports about a session's (single) pane. */
export interface PaneState {
  readonly paneId: string
  readonly panePid: number
  readonly dead: boolean
  /** Exit status of a dead pane; 128 + signal number when a signal ended it. */
  readonly exitCode: number | undefined
}

/** A session to create: its command runs directly (execvp), with the given environment and ownership tags. */
export interface NewSession {
  readonly name: SessionName
  readonly cwd: string
  readonly command: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  /** Stored as tmux user options `@<key>`; they mark the session as spawnkit's own. */
  readonly tags: Readonly<Record<string, string>>
  /** Global environment of spawnkit's server, which its hooks run with, (re)set with the session in one tmux call. */
  readonly serverEnv?: Readonly<Record<string, string>>
  /** Global hooks of spawnkit's server (e.g. `pane-died`), (re)installed with the session in one tmux call. */
  readonly hooks?: Readonly<Record<string, string>>
}

/** A session on spawnkit's server with its ownership tags. */
export interface SessionInfo {
  readonly name: string
  readonly tags: Readonly<Record<string, string>>
}

/** A session with its tags and the state of its first pane. */
export interface SessionPane extends SessionInfo {
  readonly pane: PaneState | undefined
}

/** Tag keys spawnkit sets on every session it creates. */
export const TAG_KEYS = ["spawnkit_task", "spawnkit_agent", "spawnkit_home"] as const

const SEP = "\u001f"
const PANE_FIELDS_LIST = ["#{pane_id}", "#{pane_pid}", "#{pane_dead}", "#{pane_dead_status}", "#{pane_dead_signal}"]
const PANE_FIELDS = PANE_FIELDS_LIST.length
const PANE_FORMAT = PANE_FIELDS_LIST.join(SEP)

const parsePane = (line: string): PaneState | undefined => {
  const [paneId, pid, dead, status, signal] = line.trim().split(SEP)
  // Security: a pane must have an id and a real process id; a blank answer must never become pid 0 (a signal to
  // process group 0 is a signal to our own group).
  if (paneId === undefined || !/^%\d+$/.test(paneId) || pid === undefined || !/^[1-9]\d*$/.test(pid)) return undefined
  const isDead = dead === "1"
  const exitCode = !isDead
    ? undefined
    : status !== undefined && status !== ""
    ? Number(status)
    : signal !== undefined && signal !== ""
    ? 128 + Number(signal)
    : undefined
  return { paneId, panePid: Number(pid), dead: isDead, exitCode }
}

/** Arguments that select spawnkit's server. */
export const socketArgs = (socket: TmuxSocket): ReadonlyArray<string> =>
  socket._tag === "Name" ? ["-L", socket.name] : ["-S", socket.path]

// Security: tmux splits its argv into commands at ";" (and at an argument ending in "\;"), so such an argument
// would run as a second tmux command. No legitimate agent argument looks like that.
const checkArgv = (argv: ReadonlyArray<string>) =>
  argv.every((a) => a !== ";" && !a.endsWith("\\;") && !a.includes("\0"))
    ? Effect.void
    : Effect.fail(new InvalidInput({ field: "command", reason: "an argument is ';', ends in '\\;' or contains NUL" }))

/**
 * What tmux answers for a session or pane that does not exist. "no current target" is tmux's answer (3.3) to any
 * command with a target on a server that has no session left but still runs: while a job of it (the pane-died hook's
 * `agent-exited`, which may have just removed the last session) or a client is still there.
 */
const NO_SESSION =
  /can't find session|no server running|error connecting to|session not found|can't find pane|no current target/

/**
 * A client that connected to a server in the middle of shutting down (its last session had just ended). Asked again,
 * tmux answers for the server that follows: none (no session), or a new one. An answer that stays this way is an error.
 */
const SERVER_EXITING = /server exited unexpectedly/
const serverExitRetry = {
  while: (e: TmuxError) => SERVER_EXITING.test(e.stderr),
  schedule: Schedule.spaced("20 millis"),
  times: 3
}

/** The Tmux service. */
export class Tmux extends Context.Service<Tmux, {
  /** Create a detached session running `command`, tag it, and report its pane at once (no waiting). */
  readonly newSession: (spec: NewSession) => Effect.Effect<PaneState, TmuxError | InvalidInput>
  /** The pane of a session, or None when the session does not exist. */
  readonly paneState: (name: SessionName) => Effect.Effect<Option.Option<PaneState>, TmuxError>
  /** The tags of the session that holds a pane (`%N`), or None when it is gone. */
  readonly tagsOfPane: (paneId: string) => Effect.Effect<Option.Option<Readonly<Record<string, string>>>, TmuxError>
  /** Kill a session; a session that does not exist is not an error. */
  readonly killSession: (name: SessionName) => Effect.Effect<void, TmuxError>
  /** Every session on spawnkit's server with its tags (none when the server is not running). */
  readonly listSessions: Effect.Effect<ReadonlyArray<SessionInfo>, TmuxError>
  /** Every session with its tags and its first pane's state, in one tmux call (none when the server is not running). */
  readonly listPanes: Effect.Effect<ReadonlyArray<SessionPane>, TmuxError>
}>()("spawnkit/Tmux") {
  /** The real tmux, on the configured socket. */
  static readonly layer: Layer.Layer<Tmux, never, SpawnkitConfig> = Layer
    .effect(
      Tmux,
      Effect.gen(function*() {
        const config = yield* SpawnkitConfig
        // -u: treat this client as UTF-8 whatever the locale. Without it, a process with no UTF-8 LANG/LC_* (e.g. a
        // stdio MCP server started with an MCP client's minimal environment) gets every control character (the
        // field separator) and non-ASCII byte of `-p`/`-F` output replaced by "_", and parsing the output fails.
        const base = ["-u", ...socketArgs(config.tmuxSocket)]

        // Node's execFile rather than effect/process: tmux is on the spawn path, and per call it cost 1.5 ms of CPU here
        // against 3.2 ms through the effect/process spawner and its output streams (README, "Benchmarks").
        const exec = (args: ReadonlyArray<string>) =>
          Effect.callback<{ readonly stdout: string; readonly stderr: string; readonly exitCode: number }, TmuxError>(
            (resume, signal) => {
              const options = { encoding: "utf8" as const, signal, maxBuffer: 64 * 1024 * 1024 }
              execFile(config.tmuxBin, [...base, ...args], options, (error, stdout, stderr) => {
                if (error === null) return resume(Effect.succeed({ stdout, stderr, exitCode: 0 }))
                const code = (error as NodeJS.ErrnoException & { code?: unknown }).code
                resume(
                  typeof code === "number"
                    ? Effect.succeed({ stdout, stderr, exitCode: code })
                    : Effect.fail(new TmuxError({ args: [...args], exitCode: -1, stderr: error.message }))
                )
              })
            }
          )

        // Every call: one that met the server on its way out is made again (see SERVER_EXITING).
        const run = (args: ReadonlyArray<string>) =>
          exec(args).pipe(
            Effect.flatMap((r) =>
              r.exitCode !== 0 && SERVER_EXITING.test(r.stderr)
                ? Effect.fail(new TmuxError({ args: [...args], ...r }))
                : Effect.succeed(r)
            ),
            Effect.retry(serverExitRetry)
          )

        const runOk = (args: ReadonlyArray<string>) =>
          run(args).pipe(
            Effect.flatMap((r) =>
              r.exitCode === 0 ? Effect.succeed(r.stdout) : Effect.fail(new TmuxError({ args: [...args], ...r }))
            )
          )

        /** Run, mapping "no such session/server" to None. */
        const runOptional = (args: ReadonlyArray<string>) =>
          run(args).pipe(
            Effect.flatMap((r) =>
              r.exitCode === 0
                ? Effect.succeed(Option.some(r.stdout))
                : NO_SESSION.test(r.stderr)
                ? Effect.succeed(Option.none<string>())
                : Effect.fail(new TmuxError({ args: [...args], ...r }))
            )
          )

        const newSession = Effect.fn("Tmux.newSession")(function*(spec: NewSession) {
          if (spec.command.length < 2) {
            // tmux hands a single-argument command to `sh -c`; spawnkit always passes several arguments.
            return yield* new InvalidInput({ field: "command", reason: "expected a program and its arguments" })
          }
          const envArgs = Object.entries(spec.env).flatMap(([k, v]) => ["-e", `${k}=${v}`])
          const tagArgs = Object.entries(spec.tags).flatMap((
            [k, v]
          ) => [";", "set-option", "-t", `=${spec.name}:`, `@${k}`, v])
          const hookArgs = Object.entries(spec.hooks ?? {}).flatMap(([hook, cmd]) => ["set-hook", "-g", hook, cmd, ";"])
          const serverEnvArgs = Object.entries(spec.serverEnv ?? {}).flatMap((
            [k, v]
          ) => ["set-environment", "-g", k, v, ";"])
          const args = [
            "start-server",
            ";",
            // remain-on-exit keeps a dead pane, so its exit status can be read after the process ends.
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            ...serverEnvArgs,
            ...hookArgs,
            "new-session",
            "-d",
            "-s",
            spec.name,
            "-c",
            spec.cwd,
            "-x",
            "200",
            "-y",
            "50",
            ...envArgs,
            "--",
            ...spec.command,
            ...tagArgs,
            ";",
            "display-message",
            "-p",
            "-t",
            `=${spec.name}:`,
            PANE_FORMAT
          ]
          yield* checkArgv([
            ...spec.command,
            ...envArgs,
            ...Object.entries(spec.serverEnv ?? {}).flat(),
            ...Object.values(spec.tags),
            spec.cwd
          ])
          // A spawn that starts just as the previous last session ends can meet the server on its way out: `run` makes
          // the call again, on a server it starts itself (a session it might have created went with the server).
          const out = yield* runOk(args)
          const pane = parsePane(out.trim().split("\n").pop() ?? "")
          if (pane === undefined) {
            return yield* new TmuxError({ args, exitCode: 0, stderr: `unexpected output: ${out}` })
          }
          return pane
        })

        // list-panes, not display-message: tmux 3.3's display-message answers a missing target with blank values
        // and exit status 0, where list-panes fails with "can't find session".
        const paneState = (name: SessionName) =>
          runOptional(["list-panes", "-t", `=${name}:`, "-F", PANE_FORMAT]).pipe(
            Effect.map(Option.flatMap((out) => Option.fromUndefinedOr(parsePane(out.split("\n")[0] ?? ""))))
          )

        const tagFormat = TAG_KEYS.map((k) => `#{@${k}}`).join(SEP)
        const tagsFrom = (fields: ReadonlyArray<string>) =>
          Object.fromEntries(TAG_KEYS.map((k, i) => [k, fields[i] ?? ""]).filter(([, v]) => v !== ""))

        const tagsOfPane = (paneId: string) =>
          /^%[0-9]+$/.test(paneId)
            ? runOptional(["list-panes", "-t", paneId, "-F", ["#{pane_id}", tagFormat].join(SEP)]).pipe(
              Effect.map(Option.flatMap((out) => {
                const line = out.split("\n").find((l) => l.startsWith(paneId + SEP))
                return line === undefined ? Option.none() : Option.some(tagsFrom(line.split(SEP).slice(1)))
              }))
            )
            : Effect.succeed(Option.none())

        const killSession = (name: SessionName) => runOptional(["kill-session", "-t", `=${name}`]).pipe(Effect.asVoid)

        const listSessions = runOptional(["list-sessions", "-F", ["#{session_name}", tagFormat].join(SEP)]).pipe(
          Effect.map(Option.match({
            onNone: () => [],
            onSome: (out) =>
              out.split("\n").filter((l) => l.length > 0).map((line) => {
                const [name = "", ...fields] = line.split(SEP)
                return { name, tags: tagsFrom(fields) }
              })
          }))
        )

        const listPanes = runOptional(["list-panes", "-a", "-F", ["#{session_name}", PANE_FORMAT, tagFormat].join(SEP)])
          .pipe(
            Effect.map(Option.match({
              onNone: (): ReadonlyArray<SessionPane> => [],
              onSome: (out) => {
                const bySession = new Map<string, SessionPane>()
                for (const line of out.split("\n")) {
                  if (line.length === 0) continue
                  const [name = "", ...fields] = line.split(SEP)
                  if (bySession.has(name)) continue
                  const paneFields = fields.slice(0, PANE_FIELDS)
                  bySession.set(name, {
                    name,
                    pane: parsePane(paneFields.join(SEP)),
                    tags: tagsFrom(fields.slice(PANE_FIELDS))
                  })
                }
                return [...bySession.values()]
              }
            }))
          )

        return Tmux.of({ newSession, paneState, tagsOfPane, killSession, listSessions, listPanes })
      })
    )
}
