/**
 * spawnkit's configuration, read once from environment variables (through effect/Config) with documented defaults.
 * A value that does not decode is refused as InvalidConfiguration naming its variable.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Os from "node:os"
import * as NodePath from "node:path"
import type { Engine } from "./domain/Agent.js"
import { InvalidConfiguration } from "./domain/Errors.js"
import { DEFAULT_LIMITS } from "./domain/Task.js"
import { OutputFormat } from "./domain/Usage.js"
import { parseFaultSpec } from "./faults/FaultInjection.js"

/** Where tmux's server lives: a socket name (`tmux -L`) or a socket path (`tmux -S`). */
export type TmuxSocket = { readonly _tag: "Name"; readonly name: string } | {
  readonly _tag: "Path"
  readonly path: string
}

/** Resolved configuration. */
export interface SpawnkitSettings {
  /** Workspace root holding `TASK-*` directories (SPAWNKIT_HOME, default `./.agent-workspace`), absolute. */
  readonly home: string
  /** spawnkit's own tmux server (SPAWNKIT_TMUX_SOCKET, default the name `spawnkit`). */
  readonly tmuxSocket: TmuxSocket
  /** The tmux binary (SPAWNKIT_TMUX_BIN, default `tmux` on PATH). */
  readonly tmuxBin: string
  /** The bubblewrap binary of sandboxed agents (SPAWNKIT_BWRAP_BIN, default `bwrap` on PATH). */
  readonly bwrapBin: string
  /** Command template of the custom engine (SPAWNKIT_AGENT_COMMAND), if set. */
  readonly agentCommand: Option.Option<string>
  /**
   * The custom engine's command to resume a conversation (SPAWNKIT_AGENT_RESUME_COMMAND), with `{session_id}` for the
   * conversation's id and the same other placeholders as SPAWNKIT_AGENT_COMMAND; the custom engine cannot resume
   * without it.
   */
  readonly agentResumeCommand: Option.Option<string>
  /**
   * Where agents' git worktrees are made, `<dir>/<task id>/<agent id>` (SPAWNKIT_WORKTREES_DIR, default
   * `<home>/.spawnkit-worktrees`): see worktreesRoot.
   */
  readonly worktreesDir: Option.Option<string>
  /**
   * Which output format the custom engine's agents print, so they are metered like the real CLIs
   * (SPAWNKIT_AGENT_FORMAT: claude, codex, gemini or none, default none).
   */
  readonly agentFormat: OutputFormat
  /** A JSON file of model prices overriding or extending the built-in table (SPAWNKIT_PRICES_FILE), if set. */
  readonly pricesFile: Option.Option<string>
  /**
   * How often the supervisor looks at its agents' logs when no change woke it, in ms (SPAWNKIT_METER_POLL_MS, default
   * 1000). Log writes wake it at once (inotify); this is the fallback.
   */
  readonly meterPollMs: number
  /** Engine used when neither the spawn nor the task names one (SPAWNKIT_ENGINE, default `claude`). */
  readonly defaultEngine: Engine
  /** A file replacing the agent prompt template of the MCP tools (SPAWNKIT_PROMPT_TEMPLATE), if set. */
  readonly promptTemplate: Option.Option<string>
  /** Model passed to Claude Code (SPAWNKIT_CLAUDE_MODEL), if set. */
  readonly claudeModel: Option.Option<string>
  /** Agents holding a slot across all tasks of this home (SPAWNKIT_GLOBAL_MAX_CONCURRENT, default 100). */
  readonly globalMaxConcurrent: number
  /** Defaults for new tasks (SPAWNKIT_MAX_CONCURRENT 20, SPAWNKIT_MAX_AGENTS 45, SPAWNKIT_MAX_DEPTH 5). */
  readonly taskDefaults: {
    readonly max_concurrent: number
    readonly max_agents: number
    readonly max_depth: number
    readonly max_children_per_parent: number
    readonly max_spawns_per_minute: number
  }
  /** After SIGTERM to an agent's process group, how long before SIGKILL (SPAWNKIT_KILL_GRACE_MS, default 3000). */
  readonly killGraceMs: number
  /** This host's id, recorded on reservations and agent records (SPAWNKIT_HOST_ID, default the host name). */
  readonly hostId: string
  /**
   * PostgreSQL connection URL (SPAWNKIT_DATABASE_URL). Set: the registry lives in PostgreSQL and may be shared by
   * several hosts; unset: the file registry under `home`.
   */
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  /** Connections in this process's PostgreSQL pool (SPAWNKIT_DATABASE_POOL_SIZE, default 10). */
  readonly databasePoolSize: number
  /**
   * Seconds a host stays alive in a shared registry without a heartbeat (SPAWNKIT_HOST_LEASE_SECONDS, default 60);
   * after that, other hosts release its reservations.
   */
  readonly hostLeaseSeconds: number
  /**
   * Seconds after which a reservation belongs to a spawn that is over, whatever its owner
   * (SPAWNKIT_SPAWN_DEADLINE_SECONDS, default 120): the reconciler rolls it back even while its owner process lives.
   */
  readonly spawnDeadlineSeconds: number
  /**
   * Events the journal keeps (SPAWNKIT_EVENTS_RETAIN, default 100000): older ones are dropped when the journal holds
   * twice as many; a reader asking for dropped events is told so (EventsExpired), never given a gap silently.
   */
  readonly eventsRetain: number
  /**
   * How long an output filter may spend matching one batch of log lines before it is stopped and refused
   * (SPAWNKIT_FILTER_TIMEOUT_MS, default 10000).
   */
  readonly filterTimeoutMs: number
  /** Test-only fault injection spec (SPAWNKIT_FAULT); empty in normal use. */
  readonly faultSpec: string
}

/** Parse SPAWNKIT_TMUX_SOCKET: a value with `/` is a socket path, anything else a socket name. */
export const parseTmuxSocket = (value: string): TmuxSocket =>
  value.includes("/") ? { _tag: "Path", path: NodePath.resolve(value) } : { _tag: "Name", name: value }

const positiveInt = (name: string, fallback: number) =>
  Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), name).pipe(Config.withDefault(fallback))

/** The Config description of every setting. */
export const settingsConfig: Config.Config<SpawnkitSettings> = Config.all({
  home: Config.String("SPAWNKIT_HOME").pipe(Config.withDefault("./.agent-workspace")),
  tmuxSocket: Config.schema(
    Schema.String.check(
      Schema.isPattern(/^[A-Za-z0-9_./-]{1,200}$/, {
        message: "Expected a tmux socket name or path made of letters, digits and _ . / -"
      })
    ),
    "SPAWNKIT_TMUX_SOCKET"
  ).pipe(Config.withDefault("spawnkit")),
  tmuxBin: Config.String("SPAWNKIT_TMUX_BIN").pipe(Config.withDefault("tmux")),
  bwrapBin: Config.NonEmptyString("SPAWNKIT_BWRAP_BIN").pipe(Config.withDefault("bwrap")),
  agentCommand: Config.option(Config.NonEmptyString("SPAWNKIT_AGENT_COMMAND")),
  agentResumeCommand: Config.option(Config.NonEmptyString("SPAWNKIT_AGENT_RESUME_COMMAND")),
  worktreesDir: Config.option(Config.NonEmptyString("SPAWNKIT_WORKTREES_DIR")),
  agentFormat: Config.schema(OutputFormat, "SPAWNKIT_AGENT_FORMAT").pipe(Config.withDefault("none" as const)),
  pricesFile: Config.option(Config.NonEmptyString("SPAWNKIT_PRICES_FILE")),
  meterPollMs: positiveInt("SPAWNKIT_METER_POLL_MS", 1000),
  defaultEngine: Config.Literals(["claude", "codex", "gemini", "custom"], "SPAWNKIT_ENGINE").pipe(
    Config.withDefault("claude" as const)
  ),
  claudeModel: Config.option(Config.NonEmptyString("SPAWNKIT_CLAUDE_MODEL")),
  promptTemplate: Config.option(Config.NonEmptyString("SPAWNKIT_PROMPT_TEMPLATE")),
  globalMaxConcurrent: positiveInt("SPAWNKIT_GLOBAL_MAX_CONCURRENT", 100),
  maxConcurrent: positiveInt("SPAWNKIT_MAX_CONCURRENT", DEFAULT_LIMITS.max_concurrent),
  maxAgents: positiveInt("SPAWNKIT_MAX_AGENTS", DEFAULT_LIMITS.max_agents),
  maxDepth: positiveInt("SPAWNKIT_MAX_DEPTH", DEFAULT_LIMITS.max_depth),
  maxChildren: positiveInt("SPAWNKIT_MAX_CHILDREN_PER_PARENT", DEFAULT_LIMITS.max_children_per_parent),
  maxSpawnsPerMinute: positiveInt("SPAWNKIT_MAX_SPAWNS_PER_MINUTE", DEFAULT_LIMITS.max_spawns_per_minute),
  hostId: Config.schema(
    Schema.String.check(
      Schema.isPattern(/^[A-Za-z0-9_.-]{1,128}$/, { message: "Expected a host id made of letters, digits and _ . -" })
    ),
    "SPAWNKIT_HOST_ID"
  ).pipe(Config.withDefault(Os.hostname())),
  databaseUrl: Config.option(Config.NonEmptyString("SPAWNKIT_DATABASE_URL")),
  databasePoolSize: positiveInt("SPAWNKIT_DATABASE_POOL_SIZE", 10),
  hostLeaseSeconds: positiveInt("SPAWNKIT_HOST_LEASE_SECONDS", 60),
  killGraceMs: Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), "SPAWNKIT_KILL_GRACE_MS").pipe(
    Config.withDefault(3000)
  ),
  spawnDeadlineSeconds: positiveInt("SPAWNKIT_SPAWN_DEADLINE_SECONDS", 120),
  eventsRetain: positiveInt("SPAWNKIT_EVENTS_RETAIN", 100_000),
  filterTimeoutMs: positiveInt("SPAWNKIT_FILTER_TIMEOUT_MS", 10_000),
  faultSpec: Config.schema(
    Schema.String.check(
      Schema.makeFilter((spec: string) =>
        Result.match(parseFaultSpec(spec), { onFailure: (e) => e.reason, onSuccess: () => true })
      )
    ),
    "SPAWNKIT_FAULT"
  ).pipe(Config.withDefault(""))
}).pipe(
  Config.map((c) => ({
    home: NodePath.resolve(c.home),
    tmuxSocket: parseTmuxSocket(c.tmuxSocket),
    tmuxBin: c.tmuxBin,
    bwrapBin: c.bwrapBin,
    agentCommand: c.agentCommand,
    agentResumeCommand: c.agentResumeCommand,
    worktreesDir: Option.map(c.worktreesDir, (dir) => NodePath.resolve(dir)),
    agentFormat: c.agentFormat,
    pricesFile: Option.map(c.pricesFile, (file) => NodePath.resolve(file)),
    meterPollMs: c.meterPollMs,
    defaultEngine: c.defaultEngine,
    claudeModel: c.claudeModel,
    promptTemplate: c.promptTemplate,
    globalMaxConcurrent: c.globalMaxConcurrent,
    taskDefaults: {
      max_concurrent: c.maxConcurrent,
      max_agents: c.maxAgents,
      max_depth: c.maxDepth,
      max_children_per_parent: c.maxChildren,
      max_spawns_per_minute: c.maxSpawnsPerMinute
    },
    hostId: c.hostId,
    databaseUrl: Option.map(c.databaseUrl, Redacted.make),
    databasePoolSize: c.databasePoolSize,
    hostLeaseSeconds: c.hostLeaseSeconds,
    killGraceMs: c.killGraceMs,
    spawnDeadlineSeconds: c.spawnDeadlineSeconds,
    eventsRetain: c.eventsRetain,
    filterTimeoutMs: c.filterTimeoutMs,
    faultSpec: c.faultSpec
  }))
)

/** The directory agents' worktrees are made in: SPAWNKIT_WORKTREES_DIR, else `<home>/.spawnkit-worktrees`. */
export const worktreesRoot = (settings: Pick<SpawnkitSettings, "home" | "worktreesDir">): string =>
  Option.getOrElse(settings.worktreesDir, () => NodePath.join(settings.home, ".spawnkit-worktrees"))

const issuesOf = SchemaIssue.makeFormatterStandardSchemaV1()

/** A configuration value that cannot be read or decoded, as InvalidConfiguration naming its variable. */
export const invalidConfiguration = (error: Config.ConfigError): InvalidConfiguration => {
  if (error.cause._tag === "SchemaError") {
    const issues = issuesOf(error.cause.issue).issues
    const first = issues[0]
    if (first !== undefined && first.path !== undefined && first.path.length > 0) {
      return new InvalidConfiguration({
        variable: first.path.map(String).join("."),
        reason: issues.map((i) => i.message).join("; ")
      })
    }
  }
  return new InvalidConfiguration({ variable: "SPAWNKIT_*", reason: error.message })
}

/** The settings from the environment (or whatever ConfigProvider is installed). */
export const loadSettings: Effect.Effect<SpawnkitSettings, InvalidConfiguration> = Effect.mapError(
  settingsConfig,
  invalidConfiguration
)

/** The configuration service. */
export class SpawnkitConfig extends Context.Service<SpawnkitConfig, SpawnkitSettings>()("spawnkit/SpawnkitConfig") {
  /** Configuration from the environment (or whatever ConfigProvider is installed). */
  static readonly layer = Layer.effect(SpawnkitConfig, loadSettings)

  /** Configuration from the environment with some settings overridden (tests, embedding). */
  static readonly layerWith = (overrides: Partial<SpawnkitSettings>) =>
    Layer.effect(SpawnkitConfig, loadSettings.pipe(Effect.map((s) => ({ ...s, ...overrides }))))
}
