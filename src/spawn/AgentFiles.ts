/**
 * Files an agent owns while it runs, apart from its log: its prompt file and its MCP configuration (which holds its
 * secret). Both go when the agent ends, is killed, or its spawn is rolled back.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import type { AgentId, TaskId } from "../domain/Ids.js"
import { cliScript } from "../internal/paths.js"
import { mcpConfigPath, promptPath } from "../registry/Workspace.js"

/** Remove an agent's prompt and MCP config files; a missing file is fine, other failures are logged. */
export const removeAgentFiles = (home: string, taskId: TaskId, agentId: AgentId) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    for (const file of [promptPath(home, taskId, agentId), mcpConfigPath(home, taskId, agentId)]) {
      yield* fs.remove(file, { force: true }).pipe(
        Effect.catch((e) => Effect.logError(`could not remove ${file}: ${e.message}`))
      )
    }
  })

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
