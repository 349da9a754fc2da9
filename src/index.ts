/**
 * spawnkit's programmatic API: services, layers and the operations on tasks and agents, re-exported from the modules
 * that define them (the layers from the composition root, `Spawnkit.ts`).
 *
 * ```ts
 * import { Effect } from "effect"
 * import * as Spawnkit from "spawnkit"
 * const program = Effect.gen(function*() {
 *   const task = yield* Spawnkit.createTask({ description: "demo", max_concurrent: 4 })
 *   return yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "worker", prompt: "hello", engine: "custom" })
 * })
 * Effect.runPromise(program.pipe(Effect.provide(Spawnkit.layer())))
 * ```
 */
export { type Admission, type AdmissionRequest, type AdmissionSnapshot, decide } from "./admission/Admission.js"
export {
  budgetRefusal,
  type BudgetTarget,
  type Cap,
  overBudgetTargets,
  remainingUsd,
  spentUnder
} from "./budget/Budget.js"
export { formatSpend, type Spend, spendOf, type TaskSpend, type UsageReport, usageReport } from "./budget/Spend.js"
export * from "./domain/Agent.js"
export * from "./domain/Errors.js"
export { AgentEvent, type EventDraft, EventKind, statusEvents } from "./domain/Event.js"
export { BaseRef, baseRefProblem, branchOf, CommitId } from "./domain/GitRef.js"
export * from "./domain/Ids.js"
export * from "./domain/SpawnRequest.js"
export * from "./domain/Task.js"
export * from "./domain/Usage.js"
export { type EventQuery, Events, events } from "./events/Events.js"
export {
  FAULT_STEPS,
  FaultInjection,
  type FaultMode,
  type FaultStep,
  FILE_REGISTRY_FAULT_STEPS,
  PG_REGISTRY_FAULT_STEPS,
  SPAWN_FAULT_STEPS
} from "./faults/FaultInjection.js"
export { buildCommand, parseTemplate } from "./host/Engines.js"
export { Git, type Repository, type WorktreeState } from "./host/Git.js"
export { type NewSession, type PaneState, type SessionInfo, Tmux } from "./host/Tmux.js"
export { UsageWalls, type Wall } from "./host/UsageWalls.js"
export { type ExitRecord, ownerOfPane, recordExit } from "./lifecycle/ExitHook.js"
export { kill, type KillResult } from "./lifecycle/Kill.js"
export { DEFAULT_RESUME_PROMPT, resume, type ResumeInput, ResumeRequest } from "./lifecycle/Resume.js"
export { type Caller, CallerIdentity } from "./mcp/Caller.js"
export {
  type ListOptions,
  type Quarantined,
  Registry,
  type RegistryTransaction,
  type TaskPage,
  type Transition,
  type UnreadableTask
} from "./registry/Registry.js"
export { agentOutput, describeEvent, followOutput, type OutputEntry, OutputOptions } from "./reports/AgentOutput.js"
export { checkFilter, type LineFilter, makeLineFilter, MAX_FILTER_LENGTH } from "./reports/LineFilter.js"
export { Finding, ProgressReport, reportFinding, updateProgress } from "./reports/Reports.js"
export { DEFAULT_PROMPT_TEMPLATE, renderPrompt } from "./spawn/AgentPrompt.js"
export { Rollbacks } from "./spawn/Rollbacks.js"
export { spawn, type SpawnInput } from "./spawn/Spawner.js"
export {
  parseTmuxSocket,
  SpawnkitConfig,
  type SpawnkitSettings,
  type TmuxSocket,
  worktreesRoot
} from "./SpawnkitConfig.js"
export { parseExitFileName } from "./supervisor/ExitFiles.js"
export { type Metered, meterTask } from "./supervisor/Metering.js"
export { loadPrices, meterForever } from "./supervisor/MeterLoop.js"
export { CONFIRMATIONS, reconcile, type ReconcileReport, type Repair } from "./supervisor/Reconciler.js"
export { reconcileInterval, supervise, type SupervisorOptions } from "./supervisor/Supervisor.js"
export {
  createTask,
  listTasks,
  ListTasksOptions,
  type QuarantineResult,
  quarantineTask,
  status
} from "./tasks/Tasks.js"
export {
  DEFAULT_WAIT_SECONDS,
  MAX_WAIT_SECONDS,
  type OnProgress,
  type WaitedAgent,
  waitFor,
  WaitRequest,
  type WaitResult
} from "./wait/Wait.js"
/** The file journal's Events layer (over the file registry). */
export { layer as FileEventsLayer } from "./registry/FileEvents.js"
/** The file-backed registry layer. */
export { layer as FileRegistryLayer } from "./registry/FileRegistry.js"
/** The PostgreSQL-backed registry layer (needs SPAWNKIT_DATABASE_URL, or `databaseUrl` in the settings). */
export { describeDatabase, layer as PgRegistryLayer, SCHEMA_VERSION } from "./registry/PgRegistry.js"
export { faultsFromConfig, layer, registryFromConfig, type Services } from "./Spawnkit.js"
export { holdsWork, verdictOf, type WorktreeFacts } from "./worktree/Plan.js"
export {
  branchesOf,
  type BranchReport,
  listWorktrees,
  removeWorktree,
  settleAll,
  settleTask,
  type WorktreeOutcome,
  type WorktreeRow
} from "./worktree/Worktrees.js"
