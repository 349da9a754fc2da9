/**
 * Every MCP tool spawnkit serves, in the order tools/list shows them.
 */
import { CreateRealTask } from "./CreateRealTask.js"
import { DeployHeadlessAgent } from "./DeployHeadlessAgent.js"
import { GetAgentOutput } from "./GetAgentOutput.js"
import { GetGlobalStatus } from "./GetGlobalStatus.js"
import { GetRealTaskStatus } from "./GetRealTaskStatus.js"
import { KillRealAgent } from "./KillRealAgent.js"
import { ListAgentBranches } from "./ListAgentBranches.js"
import { ListTasks } from "./ListTasks.js"
import { ReportAgentFinding } from "./ReportAgentFinding.js"
import { ResumeAgent } from "./ResumeAgent.js"
import { SpawnChildAgent } from "./SpawnChildAgent.js"
import type { ToolDefinition } from "./Tool.js"
import { UpdateAgentProgress } from "./UpdateAgentProgress.js"
import { WaitForAgents } from "./WaitForAgents.js"

export type { ToolDefinition, ToolHints } from "./Tool.js"

/** Every tool spawnkit serves. */
export const tools: ReadonlyArray<ToolDefinition> = [
  CreateRealTask,
  DeployHeadlessAgent,
  SpawnChildAgent,
  GetRealTaskStatus,
  GetAgentOutput,
  KillRealAgent,
  ResumeAgent,
  WaitForAgents,
  UpdateAgentProgress,
  ReportAgentFinding,
  ListTasks,
  ListAgentBranches,
  GetGlobalStatus
]
