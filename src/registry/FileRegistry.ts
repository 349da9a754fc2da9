/**
 * FileRegistry: the Registry over `<home>/TASK-…/AGENT_REGISTRY.json` files, one cross-process lock per home.
 *
 * A transaction is: in-process Semaphore, fcntl lock, read + decode, f, derive counts, encode, atomic replace, unlock.
 * A file that fails to decode is reported as RegistryCorrupt and never overwritten.
 *
 * Two things keep a transaction's cost independent of how many records the home holds:
 * - Decoded registries are cached by their exact file contents: a read whose bytes equal the cached text reuses the
 *   decoded value (a string comparison instead of a parse and a Schema decode). The key is the content itself, not a
 *   timestamp, so another process's write can never be mistaken for the cached one.
 * - `<home>/.spawnkit-active/` holds a marker per task that may hold slots. Invariant: every task with an active
 *   agent has a marker (a marker is created before a registry with active agents is written, and removed only after
 *   a registry with none is written), so the global count reads the marked tasks only, not every task ever run. A
 *   crash can leave a superfluous marker (a task with no active agent is counted as 0 anyway), never a missing one.
 *   Every write sets the marker first, so a writer that dies mid-write leaves its temp file in a marked task, where
 *   the reconciler (which reads the marked tasks only) finds it.
 *
 * Stored data is untrusted (agents can write these files): a file is decoded and validated on every read that is not
 * a cache hit of the exact same text, and a file whose `task_id` is not its directory's is RegistryCorrupt.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import {
  InvalidInput,
  ioFailure,
  RegistryCorrupt,
  RegistryIoError,
  TaskExists,
  TaskNotCorrupt,
  TaskNotFound
} from "../domain/Errors.js"
import { type AgentEvent, changeEvents, type EventDraft } from "../domain/Event.js"
import { TaskId } from "../domain/Ids.js"
import { activeCount, TaskRegistry, withDerivedFields } from "../domain/Task.js"
import { FaultInjection } from "../faults/FaultInjection.js"
import * as FileLock from "../host/FileLock.js"
import { activeMarkersDir, lockPath, quarantineDir, REGISTRY_FILE, registryPath, taskDir } from "../host/Workspace.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { writeAtomic } from "./AtomicFile.js"
import * as FileJournal from "./FileJournal.js"
import { journalPath } from "./FileJournal.js"
import {
  type ListOptions,
  pageOf,
  Registry,
  type RegistryTransaction,
  type Transition,
  type UnreadableTask
} from "./Registry.js"

const decodeTask = Schema.decodeUnknownEffect(TaskRegistry)
const encodeTask = Schema.encodeEffect(TaskRegistry)
const isTaskId = Schema.is(TaskId)

/** The smallest journal worth counting for retention. */
const COMPACT_MIN_BYTES = 1 << 20

const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The file-backed Registry layer. */
export const layer: Layer.Layer<
  Registry,
  RegistryIoError,
  SpawnkitConfig | FaultInjection | FileSystem.FileSystem | Path.Path
> = Layer.effect(
  Registry,
  Effect.gen(function*() {
    const { eventsRetain, home } = yield* SpawnkitConfig
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const faults = yield* FaultInjection
    const scope = yield* Effect.scope
    const markers = activeMarkersDir(home)
    const ioError = (file: string, operation: string) => (e: unknown) =>
      new RegistryIoError({ path: file, operation, ...ioFailure(e) })

    /**
     * Decoded registries by file, with the exact text they were decoded from (or written as). Only tasks holding
     * slots are kept (the ones transactions and the global count read), so a long-lived process does not keep every
     * finished task it ever listed.
     */
    const cache = new Map<string, { readonly text: string; readonly task: TaskRegistry }>()
    const remember = (file: string, text: string, task: TaskRegistry) => {
      if (activeCount(task.agents) > 0) cache.set(file, { text, task })
      else cache.delete(file)
    }

    const decodeText = (taskId: TaskId, file: string, text: string) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (e) => new RegistryCorrupt({ path: file, reason: `invalid JSON: ${reasonOf(e)}`, taskId })
      }).pipe(
        Effect.flatMap((json) =>
          decodeTask(json, { errors: "all" }).pipe(
            Effect.mapError((e) => new RegistryCorrupt({ path: file, reason: e.message, taskId }))
          )
        ),
        Effect.filterOrFail(
          (task) => task.task_id === taskId,
          (task) =>
            new RegistryCorrupt({
              path: file,
              reason: `its task_id ${JSON.stringify(task.task_id)} is not its directory's ${taskId}`,
              taskId
            })
        )
      )

    const readFile = (taskId: TaskId) => {
      const file = registryPath(home, taskId)
      return Effect.try({
        try: () => Fs.readFileSync(file, "utf8"),
        catch: (e): TaskNotFound | RegistryIoError =>
          (e as NodeJS.ErrnoException).code === "ENOENT" ? new TaskNotFound({ taskId }) : ioError(file, "read")(e)
      }).pipe(
        Effect.flatMap((text) => {
          const cached = cache.get(file)
          if (cached !== undefined && cached.text === text) return Effect.succeed(cached.task)
          return decodeText(taskId, file, text).pipe(
            Effect.tap((task) => Effect.sync(() => remember(file, text, task)))
          )
        })
      )
    }

    const markerOf = (taskId: string) => NodePath.join(markers, taskId)
    const setMarker = (taskId: string) =>
      Effect.try({
        try: () => Fs.writeFileSync(markerOf(taskId), "", { flag: "a" }),
        catch: ioError(markerOf(taskId), "create")
      })
    const clearMarker = (taskId: string) =>
      Effect.try({
        try: () => Fs.rmSync(markerOf(taskId), { force: true }),
        catch: ioError(markerOf(taskId), "remove")
      })

    const writeFile = (task: TaskRegistry) =>
      Effect.gen(function*() {
        const file = registryPath(home, task.task_id as TaskId)
        const encoded = yield* encodeTask(task).pipe(Effect.mapError(ioError(file, "encode")))
        const text = JSON.stringify(encoded, null, 2) + "\n"
        const active = activeCount(task.agents) > 0
        yield* setMarker(task.task_id)
        // Until the replace is known to be complete, the cache must not answer for this file.
        cache.delete(file)
        yield* writeAtomic(file, text, faults)
        remember(file, text, task)
        if (!active) yield* clearMarker(task.task_id)
      })

    const listIds = (dir: string) =>
      Effect.try({ try: () => Fs.readdirSync(dir), catch: ioError(dir, "list") }).pipe(
        Effect.map((names) => names.filter((name): name is TaskId => isTaskId(name)).sort())
      )

    /** The tasks of the home: none when it does not exist (nothing has been written to it yet). */
    const taskIds = Effect.suspend(
      () => (Fs.existsSync(home) ? listIds(home) : Effect.succeed<ReadonlyArray<TaskId>>([]))
    )

    const list = (options: ListOptions = {}) =>
      Effect.gen(function*() {
        const active = (options.scope ?? "active") === "active"
        // Until this process's first change rebuilds them (see `withLock`), a home may have no markers: the tasks that
        // may hold slots are then found among all of them, read only, as the rebuild would find them (readable tasks
        // with active agents here, undecodable ones in `unreadable`).
        const page = pageOf(yield* (active && Fs.existsSync(markers) ? listIds(markers) : taskIds), options)
        const tasks: Array<TaskRegistry> = []
        const unreadable: Array<UnreadableTask> = []
        for (const id of page.ids) {
          const task = yield* readFile(id).pipe(
            Effect.map((t): TaskRegistry | undefined => t),
            // A directory without a registry file yet (being created), or a marker left by a crash, is not a task.
            Effect.catchTag("TaskNotFound", () => Effect.succeed(undefined)),
            Effect.catchTags({
              RegistryCorrupt: (e) =>
                Effect.sync(() => void unreadable.push({ task_id: id, location: e.path, reason: e.reason })),
              RegistryIoError: (e) =>
                Effect.sync(() =>
                  void unreadable.push({ task_id: id, location: e.path, reason: `${e.operation}: ${e.reason}` })
                )
            })
          )
          if (task !== undefined && (!active || activeCount(task.agents) > 0)) tasks.push(task)
        }
        return { tasks, unreadable, ...(page.next !== undefined ? { next: page.next } : {}) }
      })

    // A home from before the markers (or one whose marker directory is gone) gets them rebuilt from every registry,
    // under the lock, before this process changes anything: built aside, then renamed into place.
    const rebuildMarkers = (lock: FileLock.FileLock) =>
      lock.withLock(
        Effect.gen(function*() {
          if (Fs.existsSync(markers)) return
          const staging = `${markers}.tmp-${process.pid}`
          yield* Effect.try({
            try: () => {
              // Staging directories are only made under the lock: any left is from a process that died building one.
              for (const name of Fs.readdirSync(home)) {
                if (name.startsWith(`${NodePath.basename(markers)}.tmp-`)) {
                  Fs.rmSync(NodePath.join(home, name), { recursive: true, force: true })
                }
              }
              Fs.mkdirSync(staging)
            },
            catch: ioError(staging, "create directory")
          })
          for (const id of yield* listIds(home)) {
            // A registry that cannot be decoded is marked: its slots are unknown, so it must stay in the global count
            // (where it fails the transaction with RegistryCorrupt, as before the markers existed).
            const active = yield* readFile(id).pipe(
              Effect.map((task) => activeCount(task.agents) > 0),
              Effect.catchTags({
                TaskNotFound: () => Effect.succeed(false),
                RegistryCorrupt: () => Effect.succeed(true)
              })
            )
            if (active) {
              yield* Effect.try({
                try: () => Fs.writeFileSync(NodePath.join(staging, id), ""),
                catch: ioError(staging, "create marker in")
              })
            }
          }
          yield* Effect.try({ try: () => Fs.renameSync(staging, markers), catch: ioError(markers, "create") })
        })
      )

    /**
     * The home, its lock file and its markers are made by this process's first change, not when the layer is built:
     * a process that only reads (status, output, `reconcile --dry-run`, a pass with nothing to repair) leaves a home
     * exactly as it found it, and a missing home missing. Every write happens under the lock, so taking the lock is
     * the one place to make them; a first attempt that fails is tried again by the next change.
     */
    let opened: FileLock.FileLock | undefined
    const opening = yield* Semaphore.make(1)
    const open = Effect.gen(function*() {
      yield* fs.makeDirectory(home, { recursive: true }).pipe(
        Effect.mapError((e) => new RegistryIoError({ path: home, operation: "create directory", ...ioFailure(e) }))
      )
      // The lock file stays open for the layer's life, not the first change's.
      const lock = yield* FileLock.make(lockPath(home)).pipe(Scope.provide(scope))
      yield* rebuildMarkers(lock)
      opened = lock
      return lock
    })
    const current = (orElse: Effect.Effect<FileLock.FileLock, RegistryIoError>) =>
      Effect.suspend(() => (opened !== undefined ? Effect.succeed(opened) : orElse))
    const theLock = current(opening.withPermits(1)(current(open)))
    const lock = {
      withLock: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flatMap(theLock, (l) => l.withLock(effect))
    }

    // The registry file moves out of the task directory (same file system: a rename, so its bytes stay exactly as
    // they were) into the quarantine directory, and the task's marker goes: its slots stop counting.
    const quarantine = (taskId: TaskId) =>
      lock.withLock(
        Effect.gen(function*() {
          const decoded = yield* readFile(taskId).pipe(
            Effect.as(true),
            Effect.catchTag("RegistryCorrupt", () => Effect.succeed(false))
          )
          if (decoded) {
            return yield* new TaskNotCorrupt({ taskId })
          }
          const file = registryPath(home, taskId)
          const dir = quarantineDir(home)
          const keptAt = NodePath.join(dir, `${taskId}.${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
          yield* Effect.try({
            try: () => {
              Fs.mkdirSync(dir, { recursive: true })
              Fs.renameSync(file, keptAt)
            },
            catch: ioError(file, "move into quarantine")
          })
          cache.delete(file)
          yield* clearMarker(taskId)
          return { task_id: taskId, kept_at: keptAt }
        })
      )

    /** Slots held across the home: the current task's, plus those of every other marked task (read under the lock). */
    const globalActiveBesides = (current: TaskRegistry) =>
      Effect.gen(function*() {
        let n = activeCount(current.agents)
        for (const id of yield* listIds(markers)) {
          if (id === current.task_id) continue
          const other = yield* readFile(id).pipe(Effect.catchTag("TaskNotFound", () => Effect.succeed(undefined)))
          if (other !== undefined) n += activeCount(other.agents)
        }
        return n
      })

    const journal = journalPath(home)
    /** The journal's size at which this process next counts its events for retention. */
    let compactAt = COMPACT_MIN_BYTES
    const writeJournal = (file: string, text: string) => writeAtomic(file, text, faults)
    /** The journal's head as this process last left it (its size tells whether anyone wrote since). */
    let known: FileJournal.Head | undefined
    /** Whether a batch's change committed: its task's registry holds its sequence number (unreadable: it did not). */
    const batchCommitted = FileJournal.committedIn(readFile)
    const journalSize = Effect.try({
      try: () => (Fs.existsSync(journal) ? Fs.statSync(journal).size : 0),
      catch: ioError(journal, "stat")
    })
    const journalHead = Effect.flatMap(
      journalSize,
      (size) =>
        known !== undefined && known.size === size ? Effect.succeed(known) : FileJournal.settle(journal, batchCommitted)
    )

    /**
     * Write a transition's registry with its events: batch (durable), registry (the commit point), mark. If the
     * registry write fails, the batch goes unless the registry shows the write landed after all.
     */
    const writeWithEvents = (task: TaskRegistry, drafts: ReadonlyArray<EventDraft>) =>
      Effect.gen(function*() {
        const head = yield* journalHead
        known = undefined
        const tx = head.seq + drafts.length
        const events = drafts.map((d, i) => ({ ...d, seq: head.seq + i + 1 }))
        const size = yield* FileJournal.appendBatch(journal, {
          tx,
          events: events as [AgentEvent, ...Array<AgentEvent>]
        })
        yield* writeFile({ ...task, event_seq: tx }).pipe(
          Effect.onError(() =>
            batchCommitted({ tx, events: events as [AgentEvent, ...Array<AgentEvent>] }).pipe(
              Effect.flatMap((landed) => (landed ? Effect.void : FileJournal.cutBack(journal, size))),
              Effect.catch((e) =>
                Effect.logWarning(`journal batch ${tx} left for the next change to settle: ${e.message}`)
              )
            )
          )
        )
        yield* FileJournal.appendMark(journal, tx).pipe(
          Effect.andThen(journalSize),
          Effect.flatMap((size) =>
            size < compactAt ? Effect.succeed(size) : FileJournal.compact(journal, eventsRetain, writeJournal)
          ),
          Effect.tap((size) =>
            Effect.sync(() => {
              known = { seq: tx, size }
              compactAt = Math.max(size * 2, COMPACT_MIN_BYTES)
            })
          ),
          Effect.catch((e) =>
            Effect.logWarning(`journal mark ${tx} not written (the next change settles it): ${e.message}`)
          )
        )
      }).pipe(Effect.uninterruptible)

    const update = <A, E>(
      taskId: TaskId,
      f: (tx: RegistryTransaction) => Effect.Effect<Transition<A>, E>
    ) =>
      lock.withLock(
        Effect.gen(function*() {
          const task = yield* readFile(taskId)
          const transition = yield* f({ task, globalActive: globalActiveBesides(task) })
          if (transition.next === undefined) return transition.result
          const next = withDerivedFields({ ...transition.next, task_id: task.task_id })
          const at = new Date(yield* Clock.currentTimeMillis).toISOString()
          const drafts = [...changeEvents(task, next, at), ...(transition.events ?? [])]
          if (drafts.length === 0) yield* writeFile(next)
          else yield* writeWithEvents(next, drafts)
          return transition.result
        })
      ).pipe(Effect.withSpan("Registry.update", { attributes: { taskId } }))

    const createTask = (task: TaskRegistry) =>
      lock.withLock(
        Effect.gen(function*() {
          if (!isTaskId(task.task_id)) {
            return yield* new InvalidInput({
              field: "task_id",
              reason: `${JSON.stringify(task.task_id)} is not a task id`
            })
          }
          const dir = taskDir(home, task.task_id)
          if (yield* fs.exists(path.join(dir, REGISTRY_FILE)).pipe(Effect.orElseSucceed(() => false))) {
            return yield* new TaskExists({ taskId: task.task_id })
          }
          yield* Effect.forEach([dir, path.join(dir, "prompts"), path.join(dir, "logs")], (d) =>
            fs.makeDirectory(d, { recursive: true }).pipe(
              Effect.mapError((e) =>
                new RegistryIoError({ path: d, operation: "create directory", ...ioFailure(e) })
              )
            ))
          yield* writeFile(withDerivedFields(task))
        })
      )

    // One home is one host's: nobody else holds leases on it.
    return Registry.of({
      createTask,
      update,
      read: readFile,
      list,
      quarantine,
      heartbeat: Effect.void,
      expiredHosts: Effect.succeed(new Set<string>())
    })
  })
)
