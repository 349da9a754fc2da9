/**
 * Exit files: the agent runner (bin/agent-run.sh) writes its agent's exit status to
 * `<home>/.spawnkit-exits/<task id>.<agent id>` (written in place; only its name matters) just before it exits, and the
 * supervisor records the exit when the file appears.
 *
 * Security: the agent runs as the same user and can write that directory, so an exit file is only a wake-up call,
 * never the truth. Its name must decode as a task id and an agent id; the status it holds is never read. The exit is
 * recorded through `recordExit`, which asks tmux whether the agent's pane is dead and reads its exit status from tmux,
 * and changes only a live record: a forged file for a live agent records nothing, a file naming a foreign or missing
 * task changes nothing, and a file processed twice (by two supervisors) records once.
 *
 * Invariant: handling one file never fails and never dies; whatever happens to it is logged, and supervision goes on.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { AgentId, TaskId } from "../domain/Ids.js"
import { processAlive } from "../host/Processes.js"
import { exitsDir } from "../host/Workspace.js"
import { type ExitRecord, recordExit } from "../lifecycle/ExitHook.js"

/** What an entry of the exits directory is, from its name alone. */
export type ExitFileName =
  | { readonly _tag: "Exit"; readonly taskId: TaskId; readonly agentId: AgentId }
  /** A runner's temp file or a supervisor's marker (names starting with `.`): not for the supervisor to touch. */
  | { readonly _tag: "Internal" }
  | { readonly _tag: "Invalid"; readonly reason: string }

/** Decode an exit file's name, `<task id>.<agent id>`, against the id schemas. Pure. */
export const parseExitFileName = (name: string): ExitFileName => {
  if (name.startsWith(".")) return { _tag: "Internal" }
  const dot = name.indexOf(".")
  if (dot === -1) return { _tag: "Invalid", reason: "expected <task id>.<agent id>" }
  const taskId = Schema.decodeUnknownOption(TaskId)(name.slice(0, dot))
  if (Option.isNone(taskId)) return { _tag: "Invalid", reason: "the part before the first '.' is no task id" }
  const agentId = Schema.decodeUnknownOption(AgentId)(name.slice(dot + 1))
  if (Option.isNone(agentId)) return { _tag: "Invalid", reason: "the part after the first '.' is no agent id" }
  return { _tag: "Exit", taskId: taskId.value, agentId: agentId.value }
}

/** The name of a supervisor's marker: the runner reads the process id after the last `.` (see bin/agent-run.sh). */
export const supervisorMarkerName = (token: string, pid: number) => `.supervisor.${token}.${pid}`

/** How long a file whose agent still looks alive is retried, and how often: the runner writes it just before exiting. */
export interface RetryPolicy {
  readonly every: Duration.Duration
  readonly for: Duration.Duration
}

/** The supervisor's retry: every 10 ms for up to 3 s (the pane dies milliseconds after the file appears). */
export const SUPERVISOR_RETRY: RetryPolicy = { every: Duration.millis(10), for: Duration.seconds(3) }

/** The reconciler's: one attempt; a file whose agent still looks alive is left while it is younger than this. */
export const LEFTOVER_GRACE = Duration.seconds(10)

/** What handling one exit file did. */
export type ExitFileOutcome =
  | { readonly _tag: "Ignored" }
  | { readonly _tag: "RemovedInvalid"; readonly reason: string }
  | { readonly _tag: "Handled"; readonly record: ExitRecord }
  | { readonly _tag: "Failed"; readonly error: string }

/** Remove a file; one already gone (another supervisor removed it) is fine, any other failure is logged. */
export const removeExitFile = (file: string) =>
  Effect.try({ try: () => Fs.unlinkSync(file), catch: (e) => e as NodeJS.ErrnoException }).pipe(
    Effect.catch((e) =>
      e.code === "ENOENT" ? Effect.void : Effect.logWarning(`supervisor: cannot remove ${file} (${e.message})`)
    )
  )

/** Record the exit, trying again while the pane still looks alive, within the policy's window. */
const recordWithRetry = (taskId: TaskId, agentId: AgentId, policy: RetryPolicy) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(policy.for)
    for (;;) {
      const record = yield* recordExit(taskId, agentId)
      if (record._tag !== "StillRunning" || (yield* Clock.currentTimeMillis) >= deadline) return record
      yield* Effect.sleep(policy.every)
    }
  })

/**
 * Handle one entry of the exits directory: record the exit it announces (retrying per `policy` while the pane looks
 * alive) and remove the file once the record is settled (Recorded, NotOurs, or still running when the window is
 * over: a forged file). Invalid names are logged and removed. A failure (tmux or the registry did not answer) leaves
 * the file for the next pass. With `keepYoung`, a file of a still-running agent younger than it is left in place.
 */
export const handleExitFile = (
  home: string,
  name: string,
  policy: RetryPolicy,
  keepYoung?: Duration.Duration
): Effect.Effect<ExitFileOutcome, never, Effect.Services<ReturnType<typeof recordExit>>> =>
  Effect.gen(function*() {
    const file = NodePath.join(exitsDir(home), name)
    const parsed = parseExitFileName(name)
    if (parsed._tag === "Internal") return { _tag: "Ignored" } satisfies ExitFileOutcome
    if (parsed._tag === "Invalid") {
      yield* Effect.logWarning(`supervisor: removed ${file}: not an exit file (${parsed.reason})`)
      yield* removeExitFile(file)
      return { _tag: "RemovedInvalid", reason: parsed.reason } satisfies ExitFileOutcome
    }
    // Already handled (by this supervisor on an earlier event, or by another one): nothing to ask tmux.
    if (!Fs.existsSync(file)) return { _tag: "Ignored" } satisfies ExitFileOutcome
    const record = yield* recordWithRetry(parsed.taskId, parsed.agentId, policy).pipe(
      // A task that does not exist here: a foreign or forged file, nothing to record.
      Effect.catchTag("TaskNotFound", () => Effect.succeed<ExitRecord>({ _tag: "NotOurs" }))
    )
    if (record._tag === "StillRunning") {
      if (keepYoung !== undefined && (yield* youngerThan(file, keepYoung))) return { _tag: "Ignored" } as const
      yield* Effect.logWarning(`supervisor: removed ${file}: its agent's pane is still alive (a forged exit file?)`)
    }
    yield* removeExitFile(file)
    return { _tag: "Handled", record } satisfies ExitFileOutcome
  }).pipe(
    Effect.catchCause((cause) =>
      Effect.logWarning(`supervisor: exit file ${name} left for the next pass: ${Cause.pretty(cause)}`).pipe(
        Effect.as<ExitFileOutcome>({ _tag: "Failed", error: Cause.pretty(cause) })
      )
    )
  )

/** Whether a file was modified less than `age` ago (a file already gone is not young). */
const youngerThan = (file: string, age: Duration.Duration) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const mtime = yield* Effect.try(() => Fs.statSync(file).mtimeMs).pipe(Effect.option)
    return Option.isSome(mtime) && now - mtime.value < Duration.toMillis(age)
  })

/** Whether a supervisor of this home is alive: a marker `.supervisor.<token>.<pid>` of a live process. */
export const supervisorAlive = (names: ReadonlyArray<string>): boolean =>
  names.some((name) => {
    const pid = /^\.supervisor\.[^.]+\.(\d+)$/.exec(name)?.[1]
    return pid !== undefined && processAlive(Number(pid))
  })

/** The names in the exits directory (none when it does not exist; a listing failure is logged). */
export const exitFileNames = (home: string) =>
  Effect.try({ try: () => Fs.readdirSync(exitsDir(home)), catch: (e) => e as NodeJS.ErrnoException }).pipe(
    Effect.catch((e) =>
      e.code === "ENOENT"
        ? Effect.succeed<ReadonlyArray<string>>([])
        : Effect.logWarning(`supervisor: cannot list ${exitsDir(home)} (${e.message})`).pipe(
          Effect.as<ReadonlyArray<string>>([])
        )
    )
  )

/**
 * Handle the exit files left in the directory (no supervisor ran, or it stopped): one attempt each; a file whose
 * agent still looks alive is left while it is young (a supervisor may be retrying it), removed when older.
 */
export const sweepExitFiles = (home: string) =>
  Effect.gen(function*() {
    const names = yield* exitFileNames(home)
    return yield* Effect.forEach(
      names,
      (name) => handleExitFile(home, name, { every: Duration.zero, for: Duration.zero }, LEFTOVER_GRACE)
    )
  })
