/**
 * The `spawnkit` command line: tasks, spawns, status, kill, the exit hook, the supervisor, the MCP server, a demo and
 * the benchmark.
 *
 * Every process spawnkit starts is a fresh CLI process (each command, each exit the tmux hook records, each agent's
 * stdio MCP server), so start-up is kept short: building the command tree loads only effect/cli and the domain's
 * literals, and each command imports the modules it runs when it runs (the MCP SDK only to serve, the benchmark only
 * for `bench`, the output filters only for `output`, and PostgreSQL only with a database URL, see Spawnkit.ts).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { CliOutput, Command, Flag } from "effect/cli"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Stdio from "effect/Stdio"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { Engine, Isolation, SandboxKind } from "../domain/Agent.js"
import { InvalidInput } from "../domain/Errors.js"
import { Priority, SpawnRequest } from "../domain/SpawnRequest.js"
import type { Services } from "../Spawnkit.js"
import { descriptionOf, intFlag, literalFlag, numberFlag, textFlag } from "./Flags.js"
import { invocationPresenter, PARTIAL_PASS, printJson, renderUnreadable, reportFailures } from "./Output.js"

const json = Flag.Boolean("json").pipe(
  Flag.withDescription("Print JSON (snake_case, as in the registry)"),
  Flag.withDefault(false)
)
const engines = Engine.literals
const spawnField = SpawnRequest.fields

/**
 * A command's modules, imported when the command runs. A module that cannot be loaded (a broken install) is a
 * defect, reported like any other.
 */
const load = <M>(module: () => Promise<M>): Effect.Effect<M> => Effect.promise(module)

/** spawnkit's composition root, loaded by the commands that need its services. */
const Spawnkit = load(() => import("../Spawnkit.js"))
const Tasks = load(() => import("../tasks/Tasks.js"))
const Kill = load(() => import("../lifecycle/Kill.js"))

/** Run one command's effect with spawnkit's layer, reporting any failure as the CLI does. */
const run = <A, E>(asJson: boolean, effect: Effect.Effect<A, E, Services>) =>
  reportFailures(asJson, Effect.flatMap(Spawnkit, (s) => effect.pipe(Effect.provide(s.layer()))))

/** An integer flag with a default (the benchmark's sizes). */
const intWithDefault = (name: string, description: string, value: number) =>
  Flag.Int(name).pipe(Flag.withDescription(description), Flag.withDefault(value))

/** A count flag that may be 0 (InvalidInput naming the flag when negative). */
const atLeastZero = (field: string, n: number) =>
  n >= 0 ? Effect.void : Effect.fail(new InvalidInput({ field, reason: `expected 0 or more, got ${n}` }))

const optionalInt = (name: string, description: string) =>
  Flag.Int(name).pipe(Flag.withDescription(description), Flag.optional)

const defined = <T extends Record<string, Option.Option<unknown>>>(fields: T) =>
  Object.fromEntries(
    Object.entries(fields).flatMap(([k, v]) => (Option.isSome(v) ? [[k, v.value]] : []))
  ) as { [K in keyof T]?: T[K] extends Option.Option<infer A> ? A : never }

const taskCreate = Command.make(
  "create",
  {
    description: Flag.String("description").pipe(Flag.withDescription("What the task is about")),
    maxConcurrent: optionalInt(
      "max-concurrent",
      "Agents holding a slot at once (default SPAWNKIT_MAX_CONCURRENT or 20)"
    ),
    maxAgents: optionalInt("max-agents", "Agents in the task's lifetime (default SPAWNKIT_MAX_AGENTS or 45)"),
    maxDepth: optionalInt("max-depth", "Deepest level of the agent tree (default SPAWNKIT_MAX_DEPTH or 5)"),
    maxChildren: optionalInt("max-children", "Active children one agent may have (default 20)"),
    timeout: optionalInt("timeout", "Stop each agent after this many seconds (timed_out)"),
    stallTimeout: optionalInt("stall-timeout", "Stop an agent with no new output for this many seconds (stalled)"),
    maxCostUsd: Flag.Finite("max-cost-usd").pipe(
      Flag.withDescription("Budget in USD of all the task's agents together (metered; spawns refused once spent)"),
      Flag.optional
    ),
    maxTokens: optionalInt("max-tokens", "Budget in tokens (of every kind) of all the task's agents together"),
    priority: Flag.Literals("priority", Priority.literals).pipe(
      Flag.withDescription("P0 (highest) to P4"),
      Flag.optional
    ),
    engine: Flag.Literals("engine", engines).pipe(Flag.withDescription("Default engine of the task"), Flag.optional),
    workingDirectory: Flag.String("working-directory").pipe(
      Flag.withDescription("The directory the agents work in (your project); default: the task's own directory"),
      Flag.optional
    ),
    isolation: Flag.Literals("isolation", Isolation.literals).pipe(
      Flag.withDescription(
        "worktree: each agent works in a git worktree of its own, on branch spawnkit/<agent id>, removed after it " +
          "ends unless it holds work (needs --working-directory in a git repository); default none"
      ),
      Flag.optional
    ),
    baseRef: Flag.String("base-ref").pipe(
      Flag.withDescription("With --isolation worktree: the branch, tag or commit agents' branches start from (HEAD)"),
      Flag.optional
    ),
    sandbox: Flag.Literals("sandbox", SandboxKind.literals).pipe(
      Flag.withDescription("bwrap: each agent runs in a bubblewrap sandbox (default none)"),
      Flag.optional
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { createTask } = yield* Tasks
        const task = yield* createTask({
          description: f.description,
          ...defined({
            max_concurrent: f.maxConcurrent,
            max_agents: f.maxAgents,
            max_depth: f.maxDepth,
            max_children_per_parent: f.maxChildren,
            timeout_seconds: f.timeout,
            stall_timeout_seconds: f.stallTimeout,
            max_cost_usd: f.maxCostUsd,
            max_tokens: f.maxTokens,
            priority: f.priority,
            engine: f.engine,
            working_directory: Option.map(f.workingDirectory, (dir) => NodePath.resolve(dir)),
            isolation: f.isolation,
            base_ref: f.baseRef,
            sandbox: f.sandbox
          })
        })
        yield* f.json ? printJson({ task_id: task.task_id, workspace: task.workspace }) : Console.log(task.task_id)
      })
    )
).pipe(Command.withDescription("Create a task and print its id"))

const taskQuarantine = Command.make(
  "quarantine",
  { task: Flag.String("task").pipe(Flag.withDescription("Id of the task whose registry cannot be decoded")), json },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { quarantineTask } = yield* Tasks
        const result = yield* quarantineTask(f.task)
        if (f.json) return yield* printJson(result)
        yield* Console.log(
          [
            `${result.task_id} set aside; its registry is kept at ${result.kept_at}`,
            `stopped ${result.stopped_sessions.length} session(s), removed ${result.removed_files.length} agent file(s); its slots are free`
          ].join("\n")
        )
      })
    )
).pipe(
  Command.withDescription(
    "Set aside a task whose registry cannot be decoded: keep its registry byte for byte, stop its sessions, free its slots"
  )
)

const task = Command.make("task").pipe(
  Command.withDescription("Manage tasks"),
  Command.withSubcommands([taskCreate, taskQuarantine])
)

const spawnCommand = Command.make(
  "spawn",
  {
    task: textFlag("task", spawnField.taskId),
    type: textFlag("type", spawnField.agentType),
    prompt: textFlag("prompt", spawnField.prompt),
    parent: textFlag("parent", spawnField.parent).pipe(Flag.optional),
    engine: literalFlag("engine", Engine, spawnField.engine).pipe(Flag.optional),
    idempotencyKey: textFlag("idempotency-key", spawnField.idempotencyKey).pipe(Flag.optional),
    timeout: intFlag("timeout", spawnField.timeoutSeconds).pipe(Flag.optional),
    stallTimeout: intFlag("stall-timeout", spawnField.stallTimeoutSeconds).pipe(Flag.optional),
    queue: Flag.Boolean("queue").pipe(Flag.withDescription(descriptionOf(spawnField.queue)), Flag.withDefault(false)),
    queueTimeout: intFlag("queue-timeout", spawnField.queueTimeoutSeconds).pipe(Flag.optional),
    maxCostUsd: numberFlag("max-cost-usd", spawnField.maxCostUsd).pipe(Flag.optional),
    maxTokens: intFlag("max-tokens", spawnField.maxTokens).pipe(Flag.optional),
    isolation: literalFlag("isolation", Isolation, spawnField.isolation).pipe(Flag.optional),
    baseRef: textFlag("base-ref", spawnField.baseRef).pipe(Flag.optional),
    sandbox: literalFlag("sandbox", SandboxKind, spawnField.sandbox).pipe(Flag.optional),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { spawn } = yield* load(() => import("../spawn/Spawner.js"))
        const result = yield* spawn({
          taskId: f.task,
          agentType: f.type,
          prompt: f.prompt,
          ...defined({
            parent: f.parent,
            engine: f.engine,
            idempotencyKey: f.idempotencyKey,
            timeoutSeconds: f.timeout,
            stallTimeoutSeconds: f.stallTimeout,
            queueTimeoutSeconds: f.queueTimeout,
            maxCostUsd: f.maxCostUsd,
            maxTokens: f.maxTokens,
            isolation: f.isolation,
            baseRef: f.baseRef,
            sandbox: f.sandbox
          }),
          ...(f.queue ? { queue: true } : {})
        })
        yield* f.json
          ? printJson(result)
          : Console.log(`${result.agent_id}  session ${result.tmux_session}${result.existing ? "  (existing)" : ""}`)
      })
    )
).pipe(Command.withDescription("Spawn an agent in a task"))

const statusCommand = Command.make(
  "status",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Only this task"), Flag.optional),
    all: Flag.Boolean("all").pipe(
      Flag.withDescription("Every task, finished ones included (default: tasks with agents running or starting)"),
      Flag.withDefault(false)
    ),
    after: Flag.String("after").pipe(
      Flag.withDescription("Only tasks after this id (the next of a previous page)"),
      Flag.optional
    ),
    limit: optionalInt("limit", "At most this many tasks (a page; its next cursor is printed)"),
    watch: Flag.Boolean("watch").pipe(
      Flag.withDescription(
        "Show it again after every change (a spawn, an exit, a kill, ...) until Ctrl-C: redrawn in place on a " +
          "terminal, else one snapshot after another (with --json, one JSON document per line)"
      ),
      Flag.withDefault(false)
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { statusDocument, statusText } = yield* load(() => import("./Status.js"))
        const flags = { all: f.all, ...defined({ task: f.task, after: f.after, limit: f.limit }) }
        if (f.watch) {
          const { modeOf, stdoutTerminal, watchStatus } = yield* load(() => import("./StatusWatch.js"))
          return yield* watchStatus({
            render: f.json ? Effect.map(statusDocument(flags), (doc) => JSON.stringify(doc)) : statusText(flags),
            mode: modeOf(stdoutTerminal, f.json),
            terminal: stdoutTerminal,
            ...defined({ task: f.task })
          })
        }
        yield* f.json ? printJson(yield* statusDocument(flags)) : Console.log(yield* statusText(flags))
      })
    )
).pipe(Command.withDescription("Show tasks and their agent trees"))

const usageCommand = Command.make(
  "usage",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Only this task"), Flag.optional),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { listTasks, status } = yield* Tasks
        const { renderUsage, usageReport } = yield* load(() => import("./Usage.js"))
        const { UsageWalls } = yield* load(() => import("../host/UsageWalls.js"))
        const page = Option.isSome(f.task)
          ? { tasks: [yield* status(f.task.value)], unreadable: [] }
          : yield* listTasks({ scope: "all" })
        const nowMs = yield* Clock.currentTimeMillis
        const walls = yield* (yield* UsageWalls).active(nowMs)
        const report = { ...usageReport(page.tasks), usage_limits: walls, unreadable: page.unreadable }
        if (f.json) return yield* printJson(report)
        yield* Console.log([renderUsage(report, nowMs), ...renderUnreadable(page.unreadable)].join("\n\n"))
      })
    )
).pipe(
  Command.withDescription(
    "What agents spent (tokens by kind, cost in USD; ~ marks an estimate), per task, engine and agent type, with totals"
  )
)

const outputCommand = Command.make(
  "output",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Task id")),
    agent: Flag.String("agent").pipe(Flag.withDescription("Agent id")),
    tail: Flag.Int("tail").pipe(Flag.withDescription("Last N lines (default 100)"), Flag.optional),
    filter: Flag.String("filter").pipe(
      Flag.withDescription("Only lines matching this regular expression (RE2 syntax: no backreferences or lookaround)"),
      Flag.optional
    ),
    format: Flag.Literals("format", ["text", "jsonl", "parsed"]).pipe(
      Flag.withDescription("text, jsonl, or parsed (Claude stream-json as readable events)"),
      Flag.optional
    ),
    follow: Flag.Boolean("follow").pipe(
      Flag.withDescription(
        "After the tail, keep printing new lines (filtered and formatted the same way) until the agent ends (Ctrl-C stops)"
      ),
      Flag.withDefault(false)
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { agentOutput, followOutput } = yield* load(() => import("../reports/AgentOutput.js"))
        const options = defined({ tail: f.tail, filter: f.filter, format: f.format })
        if (f.follow) {
          // One line per entry; with --json, one JSON object per line ({ "line" } or, for jsonl, { "event" }).
          return yield* followOutput(f.task, f.agent, options, (entry) =>
            Console.log(f.json ? JSON.stringify(entry) : "line" in entry ? entry.line : JSON.stringify(entry.event)))
        }
        const result = yield* agentOutput(f.task, f.agent, options)
        yield* f.json
          ? printJson(result)
          : Console.log(typeof result.output === "string" ? result.output : JSON.stringify(result.output, null, 2))
      })
    )
).pipe(Command.withDescription("Show the tail of an agent's output log"))

const reconcileCommand = Command.make(
  "reconcile",
  {
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("Report what would be repaired; change nothing"),
      Flag.withDefault(false)
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { reconcile } = yield* load(() => import("../supervisor/Reconciler.js"))
        const report = yield* reconcile({ dryRun: f.dryRun })
        // Exit status 2: a partial pass (a task could not be read; every other task was reconciled).
        if (report.partial) process.exitCode = PARTIAL_PASS
        if (f.json) return yield* printJson(report)
        if (report.repairs.length === 0) yield* Console.log("nothing to repair")
        for (const r of report.repairs) {
          yield* Console.log(`${f.dryRun ? "would " : ""}${r.kind.replaceAll("_", " ")}: ${r.target} (${r.reason})`)
        }
        for (const r of report.failed) {
          yield* Console.log(`failed to ${r.kind.replaceAll("_", " ")}: ${r.target} (${r.error})`)
        }
        for (const line of renderUnreadable(report.unreadable)) yield* Console.log(line)
      })
    )
).pipe(Command.withDescription("Repair what a crash left: stale reservations, orphan sessions and files, lost agents"))

const killCommand = Command.make(
  "kill",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Task id")),
    agent: Flag.String("agent").pipe(Flag.withDescription("Agent id")),
    reason: Flag.String("reason").pipe(Flag.withDescription("Why (recorded)"), Flag.optional),
    cascade: Flag.Boolean("cascade").pipe(
      Flag.withDescription("Also kill every agent below it"),
      Flag.withDefault(false)
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { kill } = yield* Kill
        const result = yield* kill(f.task, f.agent, Option.getOrUndefined(f.reason), { cascade: f.cascade })
        yield* f.json
          ? printJson(result)
          : Console.log(
            [`${result.agent_id}: ${result.status}`, ...result.cascaded.map((id) => `${id}: killed`)].join("\n")
          )
      })
    )
).pipe(Command.withDescription("Kill an agent (its process group and session); idempotent"))

const Watch = load(() => import("./Watch.js"))

const resumeCommand = Command.make(
  "resume",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Task id")),
    agent: Flag.String("agent").pipe(
      Flag.withDescription("The ended agent (failed, killed, lost, timed_out, stalled, over_budget) to resume")
    ),
    prompt: Flag.String("prompt").pipe(
      Flag.withDescription("What to tell it (default: continue where you stopped)"),
      Flag.optional
    ),
    idempotencyKey: textFlag("idempotency-key", spawnField.idempotencyKey).pipe(Flag.optional),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { resume } = yield* load(() => import("../lifecycle/Resume.js"))
        const result = yield* resume({
          taskId: f.task,
          agentId: f.agent,
          ...defined({ prompt: f.prompt, idempotencyKey: f.idempotencyKey })
        })
        yield* f.json
          ? printJson(result)
          : Console.log(
            `${result.agent_id}  session ${result.tmux_session}  resumes ${result.resumed_from}` +
              (result.existing ? "  (existing)" : "")
          )
      })
    )
).pipe(
  Command.withDescription(
    "Resume an ended agent's conversation in a new agent (same type, parent and worktree) with its CLI's resume"
  )
)

const worktreeList = Command.make(
  "list",
  { task: Flag.String("task").pipe(Flag.withDescription("Only this task"), Flag.optional), json },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { listCommand } = yield* load(() => import("./Worktrees.js"))
        yield* listCommand(Option.getOrUndefined(f.task), f.json)
      })
    )
).pipe(Command.withDescription("List agents' worktrees: agent, status, branch, path, commits ahead/behind, dirty"))

const worktreeRemove = Command.make(
  "remove",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Task id")),
    agent: Flag.String("agent").pipe(Flag.withDescription("The agent whose worktree to remove")),
    force: Flag.Boolean("force").pipe(
      Flag.withDescription("Remove it even if it holds work (its commits and changes are lost)"),
      Flag.withDefault(false)
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { removeCommand } = yield* load(() => import("./Worktrees.js"))
        yield* removeCommand(f.task, f.agent, f.force, f.json)
      })
    )
).pipe(
  Command.withDescription("Remove an ended agent's worktree and its branch (refused if it holds work, unless --force)")
)

const worktreePrune = Command.make(
  "prune",
  { json },
  (f) =>
    run(
      f.json,
      Effect.gen(function*() {
        const { pruneCommand } = yield* load(() => import("./Worktrees.js"))
        yield* pruneCommand(f.json)
      })
    )
).pipe(
  Command.withDescription(
    "Remove the worktrees of ended agents that hold no work; list the ones that do (never removed)"
  )
)

const worktree = Command.make("worktree").pipe(
  Command.withDescription("Agents' git worktrees (isolation worktree)"),
  Command.withSubcommands([worktreeList, worktreeRemove, worktreePrune])
)

const waitCommand = Command.make(
  "wait",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Task id")),
    agent: Flag.String("agent").pipe(Flag.withDescription("An agent to wait for (repeat for more)"), Flag.atLeast(0)),
    parent: Flag.String("parent").pipe(
      Flag.withDescription("Wait for every agent below this one (default: the whole task)"),
      Flag.optional
    ),
    any: Flag.Boolean("any").pipe(
      Flag.withDescription("Return when one of them has ended (default: when all have)"),
      Flag.withDefault(false)
    ),
    timeout: Flag.Finite("timeout").pipe(
      Flag.withDescription("Seconds to wait at most (default 300, at most 3600); exit status 75 when reached"),
      Flag.optional
    ),
    json
  },
  (f) =>
    run(
      f.json,
      Effect.flatMap(Watch, (w) =>
        w.waitCommand({
          task: f.task,
          agents: f.agent,
          any: f.any,
          json: f.json,
          ...defined({ parent: f.parent, timeout: f.timeout })
        }))
    )
).pipe(Command.withDescription("Wait until agents end (all, or --any); exit 0, or 75 when the timeout comes first"))

const eventsCommand = Command.make(
  "events",
  {
    task: Flag.String("task").pipe(Flag.withDescription("Only this task's events"), Flag.optional),
    since: optionalInt("since", "Only events after this sequence number"),
    follow: Flag.Boolean("follow").pipe(
      Flag.withDescription("Keep printing events as they happen, until interrupted"),
      Flag.withDefault(false)
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print JSON lines (the only format: accepted for symmetry)"),
      Flag.withDefault(true)
    )
  },
  (f) =>
    run(
      true,
      Effect.flatMap(Watch, (w) => w.eventsCommand({ follow: f.follow, ...defined({ task: f.task, since: f.since }) }))
    )
).pipe(Command.withDescription("Print agents' state changes as JSON lines, each with its sequence number"))

const agentExited = Command.make(
  "agent-exited",
  {
    pane: Flag.String("pane").pipe(Flag.withDescription("tmux pane id (%N)")),
    socket: Flag.String("socket").pipe(Flag.withDescription("tmux socket path"))
  },
  (f) =>
    reportFailures(
      false,
      Effect.gen(function*() {
        const [{ layer }, { ownerOfPane, recordExit }, { parseTmuxSocket }] = yield* Effect.all([
          Spawnkit,
          load(() => import("../lifecycle/ExitHook.js")),
          load(() => import("../SpawnkitConfig.js"))
        ])
        // The hook runs with the tmux server's environment, which may carry a test's SPAWNKIT_FAULT: never inject here.
        const tmuxOnly = layer({ tmuxSocket: parseTmuxSocket(f.socket), faultSpec: "" })
        const owner = yield* ownerOfPane(f.pane).pipe(Effect.provide(tmuxOnly))
        if (Option.isNone(owner)) return
        const { home, taskId, agentId } = owner.value
        // A home removed since the agent started has nothing left to record (and must not be recreated).
        if (!(yield* FileSystem.FileSystem.use((fs) => fs.exists(home)))) return
        yield* recordExit(taskId, agentId).pipe(
          Effect.provide(layer({ home, tmuxSocket: parseTmuxSocket(f.socket), faultSpec: "" }))
        )
      })
    )
).pipe(Command.withDescription("Record an agent's exit (run by spawnkit's tmux pane-died hook)"))

const superviseCommand = Command.make(
  "supervise",
  {},
  () => reportFailures(false, Effect.flatMap(load(() => import("../mcp/Serve.js")), (m) => m.superviseForever))
).pipe(
  Command.withDescription(
    "Supervise this home until SIGINT/SIGTERM: record agent exits as they happen, reconcile every SPAWNKIT_RECONCILE_INTERVAL s, and serve agents' MCP calls (the host's broker)"
  )
)

const serve = Command.make(
  "serve",
  {
    http: Flag.Boolean("http").pipe(
      Flag.withDescription("Serve Streamable HTTP instead of stdio"),
      Flag.withDefault(false)
    ),
    host: Flag.String("host").pipe(
      Flag.withDescription("HTTP address (default SPAWNKIT_HTTP_HOST or 127.0.0.1)"),
      Flag.optional
    ),
    port: Flag.Int("port").pipe(
      Flag.withDescription("HTTP port (default SPAWNKIT_HTTP_PORT or 7777; 0 picks one)"),
      Flag.optional
    ),
    token: Flag.String("token").pipe(
      Flag.withDescription("Bearer token HTTP clients must send (default SPAWNKIT_HTTP_TOKEN); required off loopback"),
      Flag.optional
    )
  },
  (f) =>
    reportFailures(
      false,
      f.http
        ? Effect.gen(function*() {
          const [{ httpSettingsConfig }, { serveHttpForever }] = yield* Effect.all([
            load(() => import("../mcp/HttpConfig.js")),
            load(() => import("../mcp/Serve.js"))
          ])
          const env = yield* httpSettingsConfig
          yield* serveHttpForever({
            ...env,
            host: Option.getOrElse(f.host, () => env.host),
            port: Option.getOrElse(f.port, () => env.port),
            token: Option.getOrUndefined(Option.orElse(f.token, () => Option.fromUndefinedOr(env.token)))
          })
        })
        : Effect.flatMap(load(() => import("../mcp/Serve.js")), (m) => m.serveStdio)
    )
).pipe(Command.withDescription("Run the MCP server (stdio by default, --http for Streamable HTTP)"))

const demo = Command.make(
  "demo",
  { keep: Flag.Boolean("keep").pipe(Flag.withDescription("Keep the demo task's files"), Flag.withDefault(false)) },
  (f) =>
    Effect.gen(function*() {
      const [{ layer }, { DEMO_AGENT_COMMAND, runDemo }, { SpawnkitConfig }] = yield* Effect.all([
        Spawnkit,
        load(() => import("./Demo.js")),
        load(() => import("../SpawnkitConfig.js"))
      ])
      const config = yield* SpawnkitConfig.pipe(Effect.provide(SpawnkitConfig.layer))
      const agentCommand = Option.orElse(config.agentCommand, () => Option.some(DEMO_AGENT_COMMAND))
      return yield* reportFailures(false, runDemo(f.keep).pipe(Effect.provide(layer({ agentCommand }))))
    }).pipe((e) => reportFailures(false, e))
).pipe(Command.withDescription("Create a task, spawn a small agent tree with the custom engine, show it, clean up"))

/** Most agents of the broker-footprint measurement (its FOOTPRINT_MAX_AGENTS; the CLI does not load the bench to say). */
const FOOTPRINT_MAX_AGENTS = 100
/** Agents of the broker-footprint measurement when `--only` names it and `--footprint-agents` is not given. */
const FOOTPRINT_DEFAULT_AGENTS = 20

/** The broker footprint's agents: as given, else the default when `--only` selects it (it never runs unasked). */
const footprintAgentsOf = (given: Option.Option<number>, only: ReadonlyArray<string>) =>
  Option.getOrElse(given, () => (only.some((x) => "broker-footprint".includes(x)) ? FOOTPRINT_DEFAULT_AGENTS : 0))

/** The benchmark's sizes, checked in this order: InvalidInput naming the first flag out of its range. */
const checkBenchSizes = (sizes: {
  readonly positive: Readonly<Record<string, number>>
  readonly startupRounds: number
  readonly footprintAgents: number
  readonly atLeastZero: Readonly<Record<string, number>>
}) =>
  Effect.gen(function*() {
    for (const [field, n] of Object.entries(sizes.positive)) {
      if (n < 1) return yield* new InvalidInput({ field, reason: `expected a positive integer, got ${n}` })
    }
    if (sizes.startupRounds < 0 || sizes.startupRounds > 45) {
      return yield* new InvalidInput({
        field: "startup-rounds",
        reason: `expected 0 to 45, got ${sizes.startupRounds}`
      })
    }
    if (sizes.footprintAgents < 0 || sizes.footprintAgents > FOOTPRINT_MAX_AGENTS) {
      return yield* new InvalidInput({
        field: "footprint-agents",
        reason: `expected 0 to ${FOOTPRINT_MAX_AGENTS}, got ${sizes.footprintAgents}`
      })
    }
    for (const [field, n] of Object.entries(sizes.atLeastZero)) yield* atLeastZero(field, n)
  })

/** The benchmark's progress on stderr: on a terminal, each transient line overwritten by the next; else only the others. */
const benchProgress = (interactive: boolean) => (text: string, transient: boolean) => {
  if (interactive) process.stderr.write(`\r\x1b[2K${text}${transient ? "" : "\n"}`)
  else if (!transient) process.stderr.write(text + "\n")
}

const bench = Command.make(
  "bench",
  {
    processes: intWithDefault("processes", "Concurrent processes (default 8)", 8),
    spawns: intWithDefault("spawns", "Spawns per process, one after another (default 25)", 25),
    tasks: intWithDefault("tasks", "Tasks of the many-tasks scenario (default 8)", 8),
    growth: Flag.String("growth").pipe(
      Flag.withDescription(
        "Records already in the registry, comma-separated, one growth scenario each (default 10,1000,10000)"
      ),
      Flag.withDefault("10,1000,10000")
    ),
    growthSpawns: intWithDefault("growth-spawns", "Sequential spawns per growth scenario (default 40)", 40),
    homeFinished: intWithDefault(
      "home-finished",
      "Finished tasks added to the home-size measurement's home (default 20000; 0 skips it)",
      20_000
    ),
    homeActive: intWithDefault(
      "home-active",
      "Active tasks (one live agent each) of the home-size measurement (default 20)",
      20
    ),
    only: Flag.String("only").pipe(
      Flag.withDescription("Only scenarios whose name contains one of these (comma-separated); the floor always runs"),
      Flag.withDefault("")
    ),
    startupRounds: Flag.Int("startup-rounds").pipe(
      Flag.withDescription(
        "Rounds of the start-up scenario: CLI start, spawn and idle server memory (default 0: skipped)"
      ),
      Flag.withDefault(0)
    ),
    exits: intWithDefault(
      "exits",
      "Agents exiting in the exit-latency measurement, per mode: supervisor and pane-died hook (default 100; 0 skips it)",
      100
    ),
    exitBatch: intWithDefault("exit-batch", "Agents of the exit-latency measurement let go at once (default 10)", 10),
    budgetRounds: intWithDefault(
      "budget-rounds",
      "Rounds of the budget-stop measurement per registry: a tree of 8 agents stopped at a 40,000-token task cap (default 5; 0 skips it)",
      5
    ),
    worktreeRounds: intWithDefault(
      "worktree-rounds",
      "Rounds of the worktree-spawn measurement: 8 spawns without and 8 with a git worktree each, the latter killed and their worktrees removed (default 3; 0 skips it)",
      3
    ),
    footprintAgents: optionalInt(
      "footprint-agents",
      `Agents of the broker-footprint measurement: a stdio spawnkit serve each, then one serve --http broker for all, memory and start-up compared (default ${FOOTPRINT_DEFAULT_AGENTS} when --only names broker-footprint, else skipped; at most ${FOOTPRINT_MAX_AGENTS}; 0 skips it)`
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print the results, targets and files as JSON"),
      Flag.withDefault(false)
    ),
    out: Flag.String("out").pipe(
      Flag.withDescription("Directory for the results (default benchmarks/results)"),
      Flag.withDefault("benchmarks/results")
    ),
    postgres: Flag.String("postgres").pipe(
      Flag.withDescription(
        "PostgreSQL for the -pg scenarios: a server URL (each scenario gets a new database), auto (a throwaway cluster when PostgreSQL is installed) or off (default auto)"
      ),
      Flag.withDefault("auto")
    )
  },
  (f) =>
    reportFailures(
      f.json,
      Effect.gen(function*() {
        const only = f.only === "" ? [] : f.only.split(",").map((x) => x.trim())
        const footprintAgents = footprintAgentsOf(f.footprintAgents, only)
        yield* checkBenchSizes({
          positive: {
            processes: f.processes,
            spawns: f.spawns,
            tasks: f.tasks,
            "growth-spawns": f.growthSpawns,
            "home-active": f.homeActive,
            "exit-batch": f.exitBatch
          },
          startupRounds: f.startupRounds,
          footprintAgents,
          atLeastZero: {
            "home-finished": f.homeFinished,
            exits: f.exits,
            "budget-rounds": f.budgetRounds,
            "worktree-rounds": f.worktreeRounds
          }
        })
        const growth = f.growth === "" ? [] : f.growth.split(",").map((x) => Number(x.trim()))
        if (growth.some((n) => !Number.isInteger(n) || n < 0)) {
          return yield* new InvalidInput({
            field: "growth",
            reason: `expected record counts like 10,1000, got ${f.growth}`
          })
        }
        if (f.postgres !== "auto" && f.postgres !== "off" && !/^postgres(ql)?:\/\//.test(f.postgres)) {
          return yield* new InvalidInput({
            field: "postgres",
            reason: "expected auto, off or a postgresql:// URL"
          })
        }
        const [{ runBench }, { checkTargets, writeResults }] = yield* Effect.all([
          load(() => import("../bench/Bench.js")),
          load(() => import("../bench/Report.js"))
        ])
        const options = {
          processes: f.processes,
          spawns: f.spawns,
          tasks: f.tasks,
          growth,
          growthSpawns: f.growthSpawns,
          homeFinished: f.homeFinished,
          homeActive: f.homeActive,
          command: ["sleep", "3600"],
          outDir: f.out,
          postgres: f.postgres,
          startupRounds: f.startupRounds,
          exits: f.exits,
          exitBatch: f.exitBatch,
          budgetRounds: f.budgetRounds,
          worktreeRounds: f.worktreeRounds,
          footprintAgents,
          only,
          progress: benchProgress(process.stderr.isTTY === true)
        }
        const bench = yield* runBench(options)
        const checks = checkTargets(bench)
        const { progress: _, ...recorded } = options
        const written = yield* writeResults(f.out, bench, checks, bench.notes, {
          ...recorded,
          postgres: f.postgres === "auto" || f.postgres === "off" ? f.postgres : "url"
        })
        if (f.json) {
          // Every measurement that ran (results, homeSize, notes, startup, ..., brokerFootprint), then the targets.
          yield* printJson({ ...bench, targets: checks, files: [written.json, written.md] })
        } else yield* Console.log(`${written.text}\nwritten: ${written.json}\n         ${written.md}`)
      })
    )
).pipe(
  Command.withDescription("Run the benchmark scenarios side by side and write benchmarks/results/<timestamp>.{json,md}")
)

const root = Command.make("spawnkit").pipe(
  Command.withDescription("Resource-safe spawning and supervision of headless coding agents in tmux"),
  Command.withSubcommands([
    task,
    spawnCommand,
    statusCommand,
    usageCommand,
    outputCommand,
    killCommand,
    resumeCommand,
    worktree,
    waitCommand,
    eventsCommand,
    reconcileCommand,
    superviseCommand,
    serve,
    demo,
    bench,
    agentExited
  ])
)

// runMain interrupts the program on SIGINT and SIGTERM alike and reports either as 130; a process stopped by a
// signal conventionally exits with 128 + the signal's number (SIGTERM: 143), so the first signal is remembered.
let stoppedBy: NodeJS.Signals | undefined
const remember = (signal: NodeJS.Signals) => {
  stoppedBy ??= signal
}
process.once("SIGINT", remember)
process.once("SIGTERM", remember)
/** What runMain's default teardown exits with when the program was interrupted. */
const INTERRUPTED = 130
const teardown: Runtime.Teardown = (exit, onExit) =>
  Runtime.defaultTeardown(exit, (code) => {
    process.off("SIGINT", remember)
    process.off("SIGTERM", remember)
    onExit(code === INTERRUPTED && stoppedBy !== undefined ? 128 + Os.constants.signals[stoppedBy] : code)
  })

// Command.run, with a presenter of its own for invocations that do not parse: it needs argv (is --json there?), so
// argv is read first and handed to both. Logs go to stderr: stdout carries command output (and, for the MCP server,
// the protocol).
Stdio.Stdio.use((stdio) => stdio.args).pipe(
  Effect.flatMap((argv) =>
    Command.runWith(root, { version: "0.1.0" })(argv).pipe(
      Effect.provide(CliOutput.layerPresenter(invocationPresenter(argv)))
    )
  ),
  Effect.provide(NodeServices.layer),
  Effect.provideService(Logger.LogToStderr, true),
  NodeRuntime.runMain({ disableErrorReporting: true, teardown })
)
