/**
 * The supervisor's metering: it follows the logs of this host's agents as they grow and meters each change as it
 * lands (Metering.meterTask), so a line that spends a budget stops the tree it belongs to at once.
 *
 * - Each task that may hold live agents has its `logs/` directory watched (inotify through fs.watch): a write to any
 *   log there wakes the loop for that task. The event journal tells of each spawn (its task is watched from then on)
 *   and each end (the agent's log is read to its end).
 * - Every SPAWNKIT_METER_POLL_MS (default 1 s) the list of such tasks is read again (new tasks watched, finished ones
 *   metered a last time and let go), and every log is compared with the offset its record holds: whatever a lost
 *   wake-up missed is caught up there.
 * - Wake-ups that arrive while a task is being metered are folded into its next pass.
 *
 * Invariants: metering never fails the supervisor (a pass that fails is logged and the next one retries); it never
 * takes a lock unless a log grew past its record's offset or an ended agent's log is unread.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { type Agent, isLiveStatus } from "../domain/Agent.js"
import { InvalidConfiguration } from "../domain/Errors.js"
import { type AgentEvent, LIFECYCLE_KINDS } from "../domain/Event.js"
import type { TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { Events } from "../events/Events.js"
import { logPath, taskDir } from "../host/Workspace.js"
import { decodePriceFile, defaultPrices, type PriceTable } from "../metering/Prices.js"
import { Registry } from "../registry/Registry.js"
import type { Services } from "../Spawnkit.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { isMetered, meterTask } from "./Metering.js"

/** The price table: the built-in one, with SPAWNKIT_PRICES_FILE's entries over it when set. */
export const loadPrices: Effect.Effect<PriceTable, InvalidConfiguration, SpawnkitConfig> = Effect.gen(function*() {
  const config = yield* SpawnkitConfig
  if (Option.isNone(config.pricesFile)) return defaultPrices
  const file = config.pricesFile.value
  const text = yield* Effect.try({
    try: () => Fs.readFileSync(file, "utf8"),
    catch: (e) =>
      new InvalidConfiguration({
        variable: "SPAWNKIT_PRICES_FILE",
        reason: `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`
      })
  })
  const prices = decodePriceFile(text)
  if (prices._tag === "Failure") return yield* Effect.fail(prices.failure)
  return prices.success
})

/** Whether an agent of a snapshot has log bytes its record has not metered (a stat, no lock). */
const hasUnread = (home: string, taskId: TaskId, agent: Agent): boolean => {
  try {
    // Grown, or cut (shorter than what was read of it: see Metering).
    return Fs.statSync(logPath(home, taskId, agent.id)).size !== (agent.usage?.log_offset ?? 0)
  } catch {
    // No log: a live agent has nothing yet; an ended one is marked complete by its next pass.
    return !isLiveStatus(agent.status)
  }
}

/** Whether a task snapshot has metering to do. */
const needsMetering = (home: string, hostId: string, task: TaskRegistry): boolean =>
  task.agents.some((a) => isMetered(a, hostId) && hasUnread(home, task.task_id, a))

/** Every task that may hold live agents (all pages), and the ones that could not be read are skipped. */
const activeTasks = Effect.gen(function*() {
  const registry = yield* Registry
  const tasks: Array<TaskRegistry> = []
  let after: TaskId | undefined
  for (;;) {
    const page = yield* registry.list({ scope: "active", limit: 500, ...(after !== undefined ? { after } : {}) })
    tasks.push(...page.tasks)
    if (page.next === undefined) return tasks
    after = page.next
  }
})

/**
 * Follow the journal from its head, telling `on` of every lifecycle event; when the journal fails (or its events
 * expired under a slow reader), start again from the new head after a second (the poll covers the gap).
 */
const followLifecycle = (on: (event: AgentEvent) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const events = yield* Events
    for (;;) {
      const followed = yield* events.head.pipe(
        Effect.flatMap((head) =>
          events.stream({ since: head, follow: true }).pipe(
            // A new agent to watch, or an ended one whose log is to be read out.
            Stream.filter((e) => LIFECYCLE_KINDS.has(e.kind)),
            Stream.runForEach(on)
          )
        ),
        Effect.exit
      )
      if (Exit.isFailure(followed)) {
        yield* Effect.logWarning(
          `metering: the event journal failed (${Cause.pretty(followed.cause)}); following again`
        )
      }
      yield* Effect.sleep(Duration.seconds(1))
    }
  })

/** Run metering until interrupted; never fails. */
export const meterForever = (prices: PriceTable): Effect.Effect<never, never, Services> =>
  Effect.scoped(Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const woken = yield* Queue.unbounded<TaskId>()
    const watchers = new Map<TaskId, Fs.FSWatcher>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const watcher of watchers.values()) watcher.close()
      })
    )
    // A task's logs directory is made by its first spawn on this host; a task with none here (its agents run on
    // other hosts sharing the registry) has nothing to watch, and is looked at again by the next poll.
    const watch = (taskId: TaskId) => {
      const dir = NodePath.join(taskDir(config.home, taskId), "logs")
      try {
        const watcher = Fs.watch(dir, { persistent: false })
          .on("change", () => Queue.offerUnsafe(woken, taskId))
          .on("error", () => {
            // A watch lost (the task's directory removed): the poll meters the task and watches it again.
            watchers.get(taskId)?.close()
            watchers.delete(taskId)
          })
        watchers.set(taskId, watcher)
      } catch {
        // Not there (yet): the next poll tries again.
      }
    }
    const meter = (taskId: TaskId) =>
      meterTask(taskId, prices).pipe(
        Effect.tap((m) => (m.behind ? Queue.offer(woken, taskId) : Effect.void)),
        Effect.tap((m) =>
          Effect.forEach(m.stopped, (a) => Effect.logWarning(`metering: ${a.id} of ${taskId} stopped: ${a.reason}`))
        ),
        Effect.exit,
        Effect.flatMap((exit) =>
          Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
            ? Effect.logWarning(`metering ${taskId} failed: ${Cause.pretty(exit.cause)}`)
            : Effect.void
        )
      )
    /** Read the tasks again: watch new ones, meter what a snapshot shows unread, let go of finished ones. */
    const poll = Effect.gen(function*() {
      const tasks = yield* activeTasks
      const live = new Set<TaskId>()
      for (const task of tasks) {
        live.add(task.task_id)
        if (!watchers.has(task.task_id)) watch(task.task_id)
        if (needsMetering(config.home, config.hostId, task)) yield* meter(task.task_id)
      }
      for (const [taskId, watcher] of [...watchers]) {
        if (live.has(taskId)) continue
        // Its last agent ended since the last look: what its logs still hold is metered before it is let go.
        yield* meter(taskId)
        watcher.close()
        watchers.delete(taskId)
      }
    }).pipe(
      Effect.catch((e) => Effect.logWarning(`metering: cannot list the tasks (${e.message}); retrying`))
    )
    // The journal tells of each new agent and each end at once: a new task is watched from its first spawn, and an
    // agent that ended is metered to the end of its log, however short its life was.
    yield* Effect.forkScoped(followLifecycle((event) =>
      Effect.sync(() => {
        if (event.kind === "spawned" && !watchers.has(event.task_id)) watch(event.task_id)
        Queue.offerUnsafe(woken, event.task_id)
      })
    ))
    let nextPoll = 0
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      if (now >= nextPoll) {
        yield* poll
        nextPoll = now + config.meterPollMs
        continue
      }
      const first = yield* Queue.take(woken).pipe(Effect.timeoutOption(Duration.millis(nextPoll - now)))
      if (Option.isNone(first)) continue
      const due = new Set<TaskId>([first.value, ...(yield* Queue.clear(woken))])
      for (const taskId of due) yield* meter(taskId)
    }
  }))
