/**
 * Files an agent owns while it runs, apart from its log: its prompt file and its MCP configuration (which holds its
 * secret). Both go when the agent ends, is killed, or its spawn is rolled back.
 *
 * Invariant: they are removed before (or inside) the registry transaction that makes their record inactive, so a task
 * with no active record holds no agent files and the reconciler, which reads only the tasks that may hold slots,
 * finds every file a crash can leave.
 */
import * as Fs from "node:fs"
import * as Effect from "effect/Effect"
import type { AgentId, TaskId } from "../domain/Ids.js"
import { cliScript } from "../internal/paths.js"
import { mcpConfigPath, promptPath } from "../registry/Workspace.js"

/**
 * Remove an agent's prompt and MCP config files; a missing file is fine, other failures are logged. Synchronous
 * system calls: it also runs inside registry transactions, where a thread-pool round trip costs more than the unlink.
 */
export const removeAgentFiles = (home: string, taskId: TaskId, agentId: AgentId) =>
  Effect.forEach([promptPath(home, taskId, agentId), mcpConfigPath(home, taskId, agentId)], (file) =>
    Effect.try({ try: () => Fs.rmSync(file, { force: true }), catch: (e) => e }).pipe(
      Effect.catch((e) => Effect.logError(`could not remove ${file}: ${e instanceof Error ? e.message : String(e)}`))
    ), { discard: true })

/** The MCP client configuration that starts spawnkit's stdio server as this agent. */
export const agentMcpConfig = (identity: Readonly<Record<string, string>>) =>
  JSON.stringify(
    {
      mcpServers: {
        spawnkit: { type: "stdio", command: process.execPath, args: [cliScript, "serve"], env: identity }
      }
    },
    null,
    2
  )
