/**
 * What an agent is started with, as pure builders: its environment (identity, secret, where the registry is), its
 * command line, the paths of its files and the tmux session that runs it. No I/O.
 *
 * Security: the command reaches tmux as argv after the agent runner, never as a shell string; every path and tag is
 * derived from validated ids.
 */
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Result from "effect/Result"
import type { Agent, Engine } from "../domain/Agent.js"
import { formatAgentToken } from "../domain/AgentToken.js"
import type { InvalidConfiguration } from "../domain/Errors.js"
import { type AgentId, sessionNameOf, type TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { buildCommand } from "../host/Engines.js"
import { agentRunner } from "../host/PackagePaths.js"
import type { NewSession } from "../host/Tmux.js"
import { exitHooks } from "../host/TmuxHooks.js"
import { exitFilePath, logPath, mcpConfigPath, promptPath, secretPath, taskDir } from "../host/Workspace.js"
import type { SpawnkitSettings } from "../SpawnkitConfig.js"

/**
 * An agent's files: its prompt (read on stdin), its log, (claude) its MCP configuration, and the exit file its runner
 * writes when it ends (a wake-up call for the supervisor; see src/supervisor/ExitFiles.ts).
 */
export interface AgentPaths {
  readonly prompt: string
  /** Its secret, read and deleted by its runner before the agent starts. */
  readonly secret: string
  readonly log: string
  readonly mcpConfig: string
  readonly exitFile: string
}

/** The paths of an agent's files in its task's directory. */
export const agentPaths = (home: string, taskId: TaskId, agentId: AgentId): AgentPaths => ({
  prompt: promptPath(home, taskId, agentId),
  secret: secretPath(home, taskId, agentId),
  log: logPath(home, taskId, agentId),
  mcpConfig: mcpConfigPath(home, taskId, agentId),
  exitFile: exitFilePath(home, taskId, agentId)
})

/** An agent's environment, in three parts. */
export interface AgentEnvironment {
  /**
   * What its tmux session is given: its home, tmux socket, task and id, and where the runner finds its secret and
   * token (SPAWNKIT_AGENT_SECRET_FILE). Never a secret: any client of spawnkit's tmux socket can read a session's
   * environment. Nor the registry's location: the agent reaches spawnkit through the host's broker.
   */
  readonly session: Readonly<Record<string, string>>
  /**
   * What the secret file holds, one per line: the secret (SPAWNKIT_AGENT_SECRET) and the bearer token
   * (SPAWNKIT_AGENT_TOKEN), which the runner exports to the agent alone.
   */
  readonly secretFileText: string
  /** The registry's location alone, for tmux's server (its hooks record the agent's exit). */
  readonly registry: Readonly<Record<string, string>>
}

/** The environment an agent runs with. */
export const agentEnvironment = (
  settings: Pick<SpawnkitSettings, "home" | "tmuxSocket" | "databaseUrl" | "hostId">,
  taskId: TaskId,
  agentId: AgentId,
  secret: string,
  secretFile: string
): AgentEnvironment => {
  const registry: Record<string, string> = Option.match(settings.databaseUrl, {
    onNone: () => ({}),
    onSome: (url) => ({ SPAWNKIT_DATABASE_URL: Redacted.value(url), SPAWNKIT_HOST_ID: settings.hostId })
  })
  const socket = settings.tmuxSocket._tag === "Name" ? settings.tmuxSocket.name : settings.tmuxSocket.path
  return {
    session: {
      SPAWNKIT_HOME: settings.home,
      SPAWNKIT_TMUX_SOCKET: socket,
      SPAWNKIT_TASK_ID: taskId,
      SPAWNKIT_AGENT_ID: agentId,
      SPAWNKIT_AGENT_SECRET_FILE: secretFile
    },
    secretFileText: `${secret}\n${formatAgentToken(taskId, agentId, secret)}\n`,
    registry
  }
}

/** The engine's command line for an agent (InvalidConfiguration for an unusable custom template). */
export const agentCommand = (
  settings: Pick<SpawnkitSettings, "claudeModel" | "agentCommand" | "agentResumeCommand">,
  engine: Engine,
  agent: Agent,
  taskId: TaskId,
  paths: AgentPaths,
  maxBudgetUsd?: number,
  resumeSessionId?: string,
  brokerUrl?: string
): Result.Result<ReadonlyArray<string>, InvalidConfiguration> =>
  buildCommand(engine, {
    agentId: agent.id,
    taskId,
    promptFile: paths.prompt,
    logFile: paths.log,
    claudeModel: Option.getOrUndefined(settings.claudeModel),
    claudeSessionId: agent.claude_session_id,
    mcpConfigFile: engine === "claude" && brokerUrl !== undefined ? paths.mcpConfig : undefined,
    brokerUrl,
    customTemplate: Option.getOrUndefined(settings.agentCommand),
    customResumeTemplate: Option.getOrUndefined(settings.agentResumeCommand),
    sessionId: agent.session_id,
    resumeSessionId,
    maxBudgetUsd
  })

/**
 * The tmux session that runs an agent: the agent runner (prompt on stdin, output to the log, exit file at the end)
 * then the command, in the task's working directory, tagged as this home's own, with the exit hooks installed.
 */
export const agentSession = (
  home: string,
  task: TaskRegistry,
  agentId: AgentId,
  paths: AgentPaths,
  command: ReadonlyArray<string>,
  env: AgentEnvironment
): NewSession => ({
  name: sessionNameOf(agentId),
  cwd: task.working_directory ?? taskDir(home, task.task_id),
  command: [agentRunner, paths.prompt, paths.log, paths.exitFile, "--", ...command],
  env: env.session,
  tags: { spawnkit_task: task.task_id, spawnkit_agent: agentId, spawnkit_home: home },
  serverEnv: env.registry,
  hooks: exitHooks
})
