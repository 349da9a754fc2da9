/**
 * The Spawner: one spawn as a Scope, composed of named steps, each a resource of the scope:
 *
 *   reserve slot (Reserve.ts, a registry transaction) -> agent files (prompt, MCP config)
 *     -> [git worktree (src/worktree/Worktrees.ts), with isolation worktree] -> tmux session -> start-up check
 *     -> commit (Commit.ts, a registry transaction)
 *
 * Invariant: until the commit, any failure, defect or interruption releases everything in reverse order and the
 * registry ends as if the spawn never happened. At the commit, ownership of the prompt file and session passes to
 * the agent record (Handover.ts), so the releases stand down. A resume (src/lifecycle/Resume.ts) is this same spawn,
 * reserved for the agent it resumes and started with its CLI's resume command. Locks are held only inside the two transactions, never
 * while tmux starts the agent.
 *
 * A rollback that cannot be written (the registry is down) is not forgotten: it is retried in the background for as
 * long as the services live (Rollbacks), and the reconciler of this process, which knows the spawns it has in flight,
 * rolls back any reservation of its own whose spawn is over.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import type { Agent, Engine } from "../domain/Agent.js"
import { invalidInput } from "../domain/Decode.js"
import { AgentExitedAtStartup, InvalidInput } from "../domain/Errors.js"
import type { AgentId } from "../domain/Ids.js"
import { type SpawnInput, SpawnRequest } from "../domain/SpawnRequest.js"
import type { TaskRegistry } from "../domain/Task.js"
import { FaultInjection } from "../faults/FaultInjection.js"
import { CLI_STATE, sandboxArgv } from "../host/Sandbox.js"
import { tailLines } from "../host/Tail.js"
import { type NewSession, type PaneState, Tmux } from "../host/Tmux.js"
import { SpawnkitConfig, worktreesRoot } from "../SpawnkitConfig.js"
import { removeGeminiSettings, writeGeminiSettings } from "../worktree/GeminiSettings.js"
import { acquireWorktree } from "../worktree/Worktrees.js"
import { agentBrokerConfig, removeAgentFiles, writeAgentFiles } from "./AgentFiles.js"
import { agentCommand, agentEnvironment, type AgentPaths, agentPaths, agentSession } from "./AgentLaunch.js"
import { renderPrompt } from "./AgentPrompt.js"
import { EXIT_TAIL_LINES, spawnResultOf } from "./AgentRecords.js"
import { commitAgent } from "./Commit.js"
import * as Handover from "./Handover.js"
import { promptTemplate } from "./PromptTemplate.js"
import { reserveSlot, type ResumeOf } from "./Reserve.js"

const decodeRequest = Schema.decodeUnknownEffect(SpawnRequest)

export type { SpawnInput } from "../domain/SpawnRequest.js"

/**
 * Spawn one agent, or return the agent an idempotency key already names. Fails with a typed error and leaves
 * nothing behind when the request is invalid, rejected by admission, or any step fails or is interrupted.
 */
export const spawn = Effect.fn("Spawner.spawn")(function*(input: SpawnInput) {
  const { useTemplate = false, ...fields } = input
  const request = yield* decodeRequest(fields, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError(invalidInput)
  )
  return yield* Effect.scoped(spawnScoped(request, useTemplate))
})

/** A spawn that resumes an ended agent's conversation (see src/lifecycle/Resume.ts), from a decoded request. */
export const spawnResumed = (request: SpawnRequest, resume: ResumeOf) =>
  Effect.scoped(spawnScoped(request, false, resume))

/** The steps of one spawn, inside its scope; the fault-injection points sit between them. */
const spawnScoped = Effect.fnUntraced(function*(request: SpawnRequest, useTemplate: boolean, resume?: ResumeOf) {
  const config = yield* SpawnkitConfig
  const faults = yield* FaultInjection
  const taskId = request.taskId
  const handover = yield* Handover.make
  const reservation = yield* reserveSlot(request, handover, resume)
  if (reservation._tag === "Existing") return spawnResultOf(taskId, reservation.agent, true)
  const { agent, broker, engine, secret, task } = reservation
  yield* faults.point("after-reserve")

  const paths = agentPaths(config.home, taskId, agent.id)
  const env = agentEnvironment(config, taskId, agent.id, secret, paths.secret)
  const command = yield* Result.match(
    agentCommand(config, engine, agent, taskId, paths, reservation.maxBudgetUsd, resume?.sessionId, broker),
    {
      onFailure: Effect.fail,
      onSuccess: Effect.succeed
    }
  )
  const promptText = useTemplate ? yield* templatedPrompt(agent, task, request.prompt) : request.prompt
  yield* handover.guarded(
    removeAgentFiles(config.home, taskId, agent.id),
    writeAgentFiles(
      config.home,
      taskId,
      agentFiles(engine, paths, promptText, env.secretFileText, broker)
    )
  )
  yield* faults.point("after-prompt")
  const worktree = agent.worktree === undefined
    ? undefined
    : yield* acquireWorktree(handover, task, { ...agent, worktree: agent.worktree }, request.baseRef)
  if (engine === "gemini" && broker !== undefined && worktree !== undefined) {
    yield* handover.guarded(removeGeminiSettings(worktree.path), writeGeminiSettings(worktree.path, broker))
  }
  yield* faults.point("after-worktree")
  yield* faults.point("before-session")

  // Gemini CLI ignores a workspace's MCP servers in a folder it does not trust.
  const session = agentSession(config.home, task, agent.id, paths, command, {
    ...env,
    session: engine === "gemini" && broker !== undefined
      ? { ...env.session, GEMINI_CLI_TRUST_WORKSPACE: "true" }
      : env.session
  })
  const cwd = worktree?.path ?? session.cwd
  const confined = agent.sandbox === "bwrap"
    ? yield* sandboxed(session.command, { engine, cwd, repo: worktree?.repo, paths })
    : session.command
  const pane = yield* startSession(handover, { ...session, cwd, command: confined })
  yield* faults.point("after-session")
  yield* checkStarted(agent.id, pane, paths.log)
  yield* faults.point("after-check")

  const running = yield* handover.handOver(commitAgent(taskId, agent.id, agent.parent, worktree?.record))
  yield* faults.point("after-commit")
  return spawnResultOf(taskId, running, false)
})

/**
 * The runner's command with the agent's own command moved into its sandbox (the runner stays outside: it feeds the
 * prompt, copies the output to the log and writes the exit file). The working directory must not expose spawnkit's
 * home: it is the agent's worktree, or a directory outside the home.
 */
const sandboxed = Effect.fnUntraced(function*(
  runnerCommand: ReadonlyArray<string>,
  at: {
    readonly engine: Engine
    readonly cwd: string
    /** The repository of its worktree, when isolated: its git directory stays writable (commits, refs). */
    readonly repo: string | undefined
    readonly paths: AgentPaths
  }
) {
  const config = yield* SpawnkitConfig
  const inHome = at.cwd === config.home || at.cwd.startsWith(config.home + NodePath.sep)
  if (inHome && at.repo === undefined) {
    return yield* new InvalidInput({
      field: "sandbox",
      reason: `the agent would work in ${at.cwd}, inside spawnkit's home, which its sandbox hides; give the task a ` +
        "working directory outside it, or isolation worktree"
    })
  }
  const userHome = Os.homedir()
  const socket = config.tmuxSocket._tag === "Path" ? [NodePath.dirname(config.tmuxSocket.path)] : []
  const worktrees = worktreesRoot(config)
  const split = runnerCommand.indexOf("--")
  const argv = sandboxArgv(
    {
      workDir: at.cwd,
      hide: [config.home, ...(worktrees.startsWith(config.home + NodePath.sep) ? [] : [worktrees]), ...socket],
      readOnly: at.engine === "claude" ? [at.paths.mcpConfig] : [],
      readWrite: [
        ...(at.repo !== undefined ? [NodePath.join(at.repo, ".git")] : []),
        ...(CLI_STATE[at.engine] ?? []).map((p) => NodePath.join(userHome, p)).filter((p) => Fs.existsSync(p))
      ],
      asRoot: process.getuid?.() === 0,
      bwrap: config.bwrapBin
    },
    runnerCommand.slice(split + 1)
  )
  return [...runnerCommand.slice(0, split + 1), ...argv]
})

/** The prompt wrapped in the agent prompt template (identity, mission, task context, how to report, limits). */
const templatedPrompt = (agent: Agent, task: TaskRegistry, mission: string) =>
  Effect.map(
    SpawnkitConfig.use((config) => promptTemplate(config.promptTemplate)),
    (template) =>
      renderPrompt(template, {
        agentId: agent.id,
        agentType: agent.type,
        parent: agent.parent,
        depth: agent.depth,
        mission,
        task
      })
  )

/**
 * The files to write: the prompt, the secret file the runner reads (and deletes), and for Claude Code its MCP
 * configuration: the host's broker, with the token taken from the agent's environment.
 */
const agentFiles = (
  engine: Engine,
  paths: AgentPaths,
  promptText: string,
  secretFileText: string,
  broker: string | undefined
) => ({
  prompt: paths.prompt,
  promptText,
  secret: { path: paths.secret, text: secretFileText },
  ...(engine === "claude" && broker !== undefined
    ? { mcpConfig: { path: paths.mcpConfig, text: agentBrokerConfig(broker) } }
    : {})
})

/**
 * The tmux session, tagged as spawnkit's own. Its release is registered before tmux is called: a call that fails or
 * is interrupted after creating the session must not leave it behind.
 */
const startSession = Effect.fnUntraced(function*(handover: Handover.Handover, spec: NewSession) {
  const tmux = yield* Tmux
  return yield* handover.guarded(
    tmux.killSession(spec.name).pipe(
      Effect.catch((e) => Effect.logError(`could not kill session ${spec.name}: ${e.message}`))
    ),
    tmux.newSession(spec)
  )
})

/**
 * The start-up check, without waiting: tmux reported the pane in the same call that created it. An agent that dies
 * later is recorded by the pane-died hook (see ExitHook.ts), also before the commit, which then fails.
 */
const checkStarted = (agentId: AgentId, pane: PaneState, log: string) =>
  pane.dead
    ? Effect.flatMap(
      tailLines(log, EXIT_TAIL_LINES).pipe(Effect.orElseSucceed(() => [])),
      (lastLines) => Effect.fail(new AgentExitedAtStartup({ agentId, exitCode: pane.exitCode ?? -1, lastLines }))
    )
    : Effect.void
