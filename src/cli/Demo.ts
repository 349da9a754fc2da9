/**
 * `spawnkit demo`: a tour on the custom engine, needing no agent CLI: create a task, spawn a small tree, show what
 * admission refuses and a queued spawn waiting for its slot, show the status tree; then a budget spent by agents
 * printing Claude Code's usage lines, stopped by the supervisor; then two agents in git worktrees of their own, one
 * committing; then kill everything and (unless --keep) remove the demo tasks and repository.
 */
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { isActiveStatus } from "../domain/Agent.js"
import type { AgentId, TaskId } from "../domain/Ids.js"
import type { SpawnResult } from "../domain/SpawnRequest.js"
import { Events, events } from "../events/Events.js"
import { usageAgentScript } from "../host/PackagePaths.js"
import { worktreePath } from "../host/Workspace.js"
import { kill } from "../lifecycle/Kill.js"
import { spawn as spawnAgent, type SpawnInput } from "../spawn/Spawner.js"
import { SpawnkitConfig, worktreesRoot } from "../SpawnkitConfig.js"
import { supervise } from "../supervisor/Supervisor.js"
import { createTask, status } from "../tasks/Tasks.js"
import { waitFor } from "../wait/Wait.js"
import { listWorktrees, settleTask } from "../worktree/Worktrees.js"
import { describeError, renderTask } from "./Output.js"
import { renderWorktrees } from "./Worktrees.js"

/** The demo agent: prints the prompt it got on stdin, then works (sleeps) until killed. */
export const DEMO_AGENT_COMMAND =
  `sh -c "echo '--- prompt received on stdin:'; cat; echo; echo '--- working'; exec sleep 300"`

/**
 * The same fifth spawn with `queue: true` waits for a slot instead; the newest agent is killed, its slot goes to the
 * spawn waiting in line (woken by the event journal), and `waitFor` confirms the end; then the journal is summed up.
 */
const queueTour = <E, R>(
  taskId: TaskId,
  spawn: (label: string, input: Omit<SpawnInput, "taskId">) => Effect.Effect<Option.Option<SpawnResult>, E, R>
) =>
  Effect.gen(function*() {
    const head = yield* Effect.flatMap(Events, (e) => e.head)
    const queued = yield* spawn("fifth agent again, with queue: true (waits for a slot)", {
      agentType: "extra",
      prompt: "One too many.",
      queue: true,
      queueTimeoutSeconds: 30
    }).pipe(Effect.forkChild)
    yield* events({ since: head, taskId, follow: true }).pipe(
      Stream.filter((e) => e.kind === "queued"),
      Stream.take(1),
      Stream.runDrain
    )
    const live = (yield* status(taskId)).agents.filter((a) => a.status === "running")
    const victim = live[live.length - 1]!
    yield* kill(taskId, victim.id, "making room")
    const ended = yield* waitFor({ taskId, agentIds: [victim.id], timeoutSeconds: 10 })
    yield* Console.log(`killed ${victim.id}; wait_for_agents says: ${ended.agents[0]?.status}`)
    yield* Fiber.join(queued)
    const journal = yield* Stream.runCollect(events({ since: head, taskId }))
    const kinds = journal.map((e) => e.kind).join(", ")
    yield* Console.log(`events journaled meanwhile (spawnkit events --task ${taskId}): ${kinds}`)
  })

const tour = Effect.gen(function*() {
  const task = yield* createTask({ description: "spawnkit demo", max_concurrent: 4, max_depth: 3 })
  const taskId = task.task_id
  yield* Console.log(`created ${taskId} (max_concurrent 4, max_depth 3) in ${task.workspace}\n`)

  const spawn = (label: string, input: Omit<SpawnInput, "taskId">) =>
    spawnAgent({ taskId, engine: "custom", ...input }).pipe(
      Effect.tap((r) =>
        Console.log(`spawn ${label}: ${r.agent_id}${r.existing ? " (existing, not spawned again)" : ""}`)
      ),
      Effect.tapError((e) =>
        Console.log(`spawn ${label}: refused [${describeError(e).tag}] ${describeError(e).message}`)
      ),
      Effect.option
    )

  const lead = yield* spawn("lead", { agentType: "lead", prompt: "Plan the work; $(touch /tmp/never) stays literal." })
  if (Option.isNone(lead)) return taskId
  const parent = lead.value.agent_id
  yield* spawn("child A", { agentType: "researcher", prompt: "Read the code base.", parent, idempotencyKey: "child-a" })
  yield* spawn("child A again, same idempotency key", {
    agentType: "researcher",
    prompt: "Read the code base.",
    parent,
    idempotencyKey: "child-a"
  })
  const childB = yield* spawn("child B", { agentType: "researcher", prompt: "Read the tests.", parent })
  yield* spawn("child B twin (same parent, type, prompt)", {
    agentType: "researcher",
    prompt: "Read the tests.",
    parent
  })
  if (Option.isSome(childB)) {
    const grand = yield* spawn("grandchild", {
      agentType: "checker",
      prompt: "Check one test.",
      parent: childB.value.agent_id
    })
    if (Option.isSome(grand)) {
      yield* spawn("great-grandchild (depth 4 > max_depth 3)", {
        agentType: "checker",
        prompt: "Too deep.",
        parent: grand.value.agent_id
      })
    }
  }
  yield* spawn("fifth agent (max_concurrent 4)", { agentType: "extra", prompt: "One too many." })
  yield* queueTour(taskId, spawn)

  const state = yield* status(taskId)
  yield* Console.log("\n" + renderTask(state, yield* Clock.currentTimeMillis) + "\n")
  const log = state.agents.find((a) => a.id === parent)?.tracked_files?.log_file
  if (log !== undefined) {
    const fs = yield* FileSystem.FileSystem
    // The agent writes its log on its own schedule: give it up to two seconds to say it is working.
    const text = yield* fs.readFileString(log).pipe(
      Effect.flatMap((t) => (t.includes("--- working") ? Effect.succeed(t) : Effect.fail("not yet"))),
      Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 40 }),
      Effect.orElseSucceed(() => "(no output yet)")
    )
    yield* Console.log(`output of ${parent} so far:\n${text.trim()}\n`)
  }
  return taskId
})

/** A word of a command template, quoted so that a path with spaces stays one word. */
const quoted = (word: string) => (word.includes("'") ? JSON.stringify(word) : `'${word}'`)

/** Tokens the budget tour's task may spend. */
const DEMO_BUDGET_TOKENS = 3000

/**
 * A budget: a task capped at DEMO_BUDGET_TOKENS tokens, two agents printing Claude Code's usage lines (the usage
 * agent, declared SPAWNKIT_AGENT_FORMAT=claude), metered by a supervisor running in this process: both are stopped
 * `over_budget` by the line that spends the cap, and the next spawn is refused with BudgetExceeded.
 */
const budgetTour = Effect.scoped(Effect.gen(function*() {
  const config = yield* SpawnkitConfig
  yield* Console.log("\n--- a budget, metered from the agents' own output")
  yield* Effect.forkScoped(supervise({ reconcileEvery: Duration.zero }))
  const task = yield* createTask({ description: "spawnkit demo: a budget", max_tokens: DEMO_BUDGET_TOKENS })
  const taskId = task.task_id
  yield* Console.log(`created ${taskId} with max_tokens ${DEMO_BUDGET_TOKENS}`)
  const spender = [process.execPath, usageAgentScript, "--every", "100", "--output", "250"].map(quoted).join(" ")
  const spending = { ...config, agentCommand: Option.some(spender), agentFormat: "claude" as const }
  const spawnSpender = (type: string) =>
    spawnAgent({ taskId, engine: "custom", agentType: type, prompt: "Spend tokens." }).pipe(
      Effect.provideService(SpawnkitConfig, spending)
    )
  const ids: Array<AgentId> = []
  for (const type of ["spender-a", "spender-b"]) {
    const agent = yield* spawnSpender(type)
    ids.push(agent.agent_id as AgentId)
    yield* Console.log(`spawn ${type}: ${agent.agent_id} (prints 250 output tokens every 0.1 s, as Claude Code would)`)
  }
  const ended = yield* waitFor({ taskId, agentIds: ids, timeoutSeconds: 60 })
  for (const agent of ended.agents) yield* Console.log(`${agent.agent_id}: ${agent.status} (${agent.reason ?? ""})`)
  yield* spawnSpender("spender-c").pipe(
    Effect.flatMap((r) => Console.log(`spawn spender-c: ${r.agent_id}`)),
    Effect.catch((e) => Console.log(`spawn spender-c: refused [${describeError(e).tag}] ${describeError(e).message}`))
  )
  yield* Console.log("\n" + renderTask(yield* status(taskId), yield* Clock.currentTimeMillis))
  return taskId
}))

/** A throwaway git repository with one commit, for the worktree tour (git as the user has it, no hooks run). */
const demoRepository = Effect.sync(() => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-demo-repo-"))
  const git = (...args: ReadonlyArray<string>) =>
    execFileSync("git", ["-c", "core.hooksPath=/dev/null", "-C", dir, ...args], { stdio: "ignore" })
  git("init", "-q")
  Fs.writeFileSync(NodePath.join(dir, "README.md"), "a project the demo agents work on\n")
  git("add", "README.md")
  git("-c", "user.name=spawnkit demo", "-c", "user.email=demo@example.invalid", "commit", "-qm", "Start")
  return dir
})

/** The worktree tour's agent: commits a file when its prompt says "commit", else does nothing; then ends. */
const WORKTREE_AGENT = `sh -c "if grep -q commit; then echo fixed > fix.txt && git add fix.txt && ` +
  `git -c user.name=agent -c user.email=agent@example.invalid commit -qm 'Fix the parser'; fi"`

/**
 * Worktrees: a task with isolation worktree over a throwaway repository; two agents, each in its own worktree on its
 * own branch, one committing and one doing nothing. Once both ended, the clean worktree is gone with its branch and the
 * one holding a commit is kept for a person to merge.
 */
const worktreeTour = Effect.gen(function*() {
  const config = yield* SpawnkitConfig
  yield* Console.log("\n--- a git worktree per agent")
  const repo = yield* demoRepository
  const task = yield* createTask({
    description: "spawnkit demo: worktrees",
    working_directory: repo,
    isolation: "worktree"
  })
  const taskId = task.task_id
  yield* Console.log(`created ${taskId} over the repository ${repo}, isolation worktree`)
  const committing = { ...config, agentCommand: Option.some(WORKTREE_AGENT) }
  const ids: Array<AgentId> = []
  for (const [type, prompt] of [["fixer", "Fix the parser and commit."], ["reader", "Only read."]] as const) {
    const agent = yield* spawnAgent({ taskId, engine: "custom", agentType: type, prompt }).pipe(
      Effect.provideService(SpawnkitConfig, committing)
    )
    ids.push(agent.agent_id as AgentId)
    yield* Console.log(`spawn ${type}: ${agent.agent_id} on branch spawnkit/${agent.agent_id}`)
  }
  yield* waitFor({ taskId, agentIds: ids, timeoutSeconds: 30 })
  yield* settleTask(taskId)
  for (const agent of (yield* status(taskId)).agents) {
    yield* Console.log(`${agent.id}: ${agent.status}; worktree ${agent.worktree?.state ?? "none"}`)
  }
  yield* Console.log(renderWorktrees(yield* listWorktrees(taskId)))
  yield* Console.log(`merge it: git -C ${repo} merge spawnkit/${ids[0]}`)
  return { taskId, repo }
})

/** Run the demo; with `keep`, the demo tasks' directories stay for inspection. */
export const runDemo = (keep: boolean) =>
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const fs = yield* FileSystem.FileSystem
    const taskIds = [yield* tour, yield* budgetTour]
    const worktrees = yield* worktreeTour
    taskIds.push(worktrees.taskId)
    for (const taskId of taskIds) {
      for (const agent of (yield* status(taskId)).agents) {
        if (isActiveStatus(agent.status)) yield* kill(taskId, agent.id, "demo finished")
      }
    }
    const after = yield* status(taskIds[0]!)
    yield* Console.log("\nafter cleanup:\n" + renderTask(after, yield* Clock.currentTimeMillis))
    for (const taskId of taskIds) {
      if (keep) {
        yield* Console.log(`\nkept ${config.home}/${taskId}`)
      } else {
        yield* fs.remove(`${config.home}/${taskId}`, { recursive: true })
        yield* Console.log(`removed ${config.home}/${taskId}`)
      }
    }
    if (keep) {
      yield* Console.log(`kept the demo repository ${worktrees.repo} and its worktrees`)
    } else {
      yield* fs.remove(worktreePath(worktreesRoot(config), worktrees.taskId, "" as AgentId), { recursive: true })
      yield* fs.remove(worktrees.repo, { recursive: true })
      yield* Console.log(`removed the demo repository ${worktrees.repo} and its worktrees`)
    }
    if (!keep) yield* Console.log("no agent or session is left running.")
  })
