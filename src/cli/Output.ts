/**
 * CLI output: JSON for scripts (`--json`), short readable text for people; errors as `{ "error": { tag, message } }`.
 */
import * as Cause from "effect/Cause"
import { CliOutput } from "effect/cli"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { formatCaps, formatSpend, spendOf } from "../budget/Spend.js"
import { type Agent, isActiveStatus } from "../domain/Agent.js"
import type { TaskRegistry } from "../domain/Task.js"
import type { UnreadableTask } from "../registry/Registry.js"

/** Tag and message of any failure a command can end with. */
export const describeError = (error: unknown): { readonly tag: string; readonly message: string } => {
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : "Error"
    const message = "message" in error && typeof error.message === "string" ? error.message : String(error)
    return { tag, message }
  }
  return { tag: "Error", message: String(error) }
}

/** Exit status of a command refused because of its configuration (sysexits' EX_CONFIG). */
export const CONFIGURATION_ERROR = 78

/** Exit status of a server that could not listen on its address (sysexits' EX_UNAVAILABLE). */
export const UNAVAILABLE = 69

/**
 * The exit status a failure ends a command with: bad configuration (InvalidConfiguration) 78, an address the server
 * cannot listen on (ServerBindFailed) 69, anything else 1.
 */
export const exitStatusOf = (tag: string): number =>
  tag === "InvalidConfiguration" ? CONFIGURATION_ERROR : tag === "ServerBindFailed" ? UNAVAILABLE : 1

/**
 * Run a command's effect: print its failure (JSON on stdout with --json, text on stderr otherwise) and set the exit
 * code its tag calls for (exitStatusOf). Interruption is left to the runtime.
 */
export const reportFailures = <A, E, R>(json: boolean, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const failure = Cause.findErrorOption(cause)
      const error = failure._tag === "Some" ? describeError(failure.value) : {
        tag: "Defect",
        message: Cause.pretty(cause)
      }
      return Effect.sync(() => {
        process.exitCode = exitStatusOf(error.tag)
      }).pipe(
        Effect.andThen(
          json ? Console.log(JSON.stringify({ error })) : Console.error(`error [${error.tag}]: ${error.message}`)
        )
      )
    })
  )

/** Exit status of a reconcile pass that could not read some task (every other task was reconciled). */
export const PARTIAL_PASS = 2

/** Tasks that could not be read, as a person reads them: what, where, why, and the way out. */
export const renderUnreadable = (unreadable: ReadonlyArray<UnreadableTask>): ReadonlyArray<string> =>
  unreadable.map((u) =>
    `unreadable task ${u.task_id} (${u.location}): ${u.reason}\n  left untouched; repair it, or set it aside: ` +
    `spawnkit task quarantine --task ${u.task_id}`
  )

/** Whether argv asks for JSON: the last of `--json`, `--json=VALUE` and `--no-json` decides, as the flag parser does. */
export const jsonRequested = (argv: ReadonlyArray<string>): boolean => {
  let asJson = false
  for (const arg of argv) {
    if (arg === "--") break
    if (arg === "--json") asJson = true
    else if (arg === "--no-json") asJson = false
    else if (arg.startsWith("--json=")) asJson = ["true", "1", "y", "yes", "on"].includes(arg.slice(7).toLowerCase())
  }
  return asJson
}

/**
 * How the CLI presents an invocation it cannot parse (a bad, missing or unknown flag): in place of effect/cli's help
 * text, the documented error, `{ "error": { "tag": "InvalidInput", "message" } }` on stdout when the command has
 * `--json` and argv asks for it, else one `error [InvalidInput]: …` line on stderr. The run still fails, so the
 * process exits non-zero. Help asked for (`--help`) and the version are presented as effect/cli does.
 */
export const invocationPresenter = (argv: ReadonlyArray<string>): CliOutput.Presenter => ({
  present: (event) => {
    if (event._tag !== "InvalidInvocation") return CliOutput.defaultPresenter.present(event)
    const command = event.commandPath.join(" ")
    const problems = event.errors.map((e) => e.message.replace(/\s*\n\s*/g, " ").trim().replace(/\.$/, ""))
    const message = `${problems.join("; ")}. Fix the command line (see ${command} --help); nothing was changed.`
    const hasJson = event.helpDoc.flags.some((f) => f.name === "json")
    return hasJson && jsonRequested(argv)
      ? Console.log(JSON.stringify({ error: { tag: "InvalidInput", message } }))
      : Console.error(`error [InvalidInput]: ${message}`)
  }
})

/** Print a value as JSON. */
export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

const age = (iso: string, nowMs: number) => {
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000))
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`
}

const agentLine = (a: Agent, nowMs: number, work?: ReadonlyMap<string, string>) => {
  const parts = [`${a.id}`, `[${a.status}]`, a.type, `age ${age(a.started_at, nowMs)}`]
  if (a.worktree !== undefined && a.worktree.state !== "removed") {
    const held = work?.get(a.id)
    parts.push(`branch spawnkit/${a.worktree.id}${held !== undefined ? ` (${held})` : ""}`)
  }
  if (a.resumed_from !== undefined) parts.push(`resumes ${a.resumed_from}`)
  if (a.usage !== undefined) parts.push(formatSpend(spendOf([a])))
  if (a.budget !== undefined) parts.push(`budget ${formatCaps(a.budget)}`)
  if (a.exit !== undefined) parts.push(`exit ${a.exit.exit_code}`)
  if (a.reason !== undefined) parts.push(`(${a.reason})`)
  return parts.join("  ")
}

/**
 * A task and its agents as an indented tree. `work` says, per agent id, what its worktree holds now ("2 ahead,
 * dirty"), as git reported it.
 */
export const renderTask = (task: TaskRegistry, nowMs: number, work?: ReadonlyMap<string, string>): string => {
  const lines = [
    `${task.task_id}  ${task.task_description}`,
    `  active ${task.active_count}/${task.max_concurrent}  total ${task.total_spawned}/${task.max_agents}  max depth ${task.max_depth}`
  ]
  const capped = task.max_cost_usd !== undefined || task.max_tokens !== undefined
  if (capped || task.agents.some((a) => a.usage !== undefined)) {
    lines.push(`  spent ${formatSpend(spendOf(task.agents))}${capped ? `  of budget ${formatCaps(task)}` : ""}`)
  }
  const children = new Map<string, Array<Agent>>()
  for (const a of task.agents) children.set(a.parent, [...(children.get(a.parent) ?? []), a])
  const walk = (parent: string, indent: string) => {
    for (const a of children.get(parent) ?? []) {
      lines.push(`${indent}${isActiveStatus(a.status) ? "●" : "○"} ${agentLine(a, nowMs, work)}`)
      walk(a.id, indent + "    ")
    }
  }
  walk("orchestrator", "  ")
  const waiting = (task.queue ?? []).filter((e) => Date.parse(e.deadline) > nowMs)
  if (waiting.length > 0) lines.push(`  queued ${waiting.length}: waiting for a slot, oldest first`)
  waiting.forEach((e, i) =>
    lines.push(`    ${i + 1}. ${e.id}  ${e.type}  parent ${e.parent}  waiting ${age(e.queued_at, nowMs)}`)
  )
  const known = new Set(task.agents.map((a) => a.id))
  for (const a of task.agents) {
    if (a.parent !== "orchestrator" && !known.has(a.parent)) lines.push(`  ? ${agentLine(a, nowMs, work)}`)
  }
  return lines.join("\n")
}
