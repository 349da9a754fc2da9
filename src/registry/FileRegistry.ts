/**
 * FileRegistry: the Registry over `<home>/TASK-…/AGENT_REGISTRY.json` files, one cross-process lock per home.
 *
 * A transaction is: in-process Semaphore, fcntl lock, read + decode, f, derive counts, encode, atomic replace, unlock.
 * A file that fails to decode is reported as RegistryCorrupt and never overwritten.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Path from "effect/Path"
import * as Schema from "effect/Schema"
import { InvalidInput, RegistryCorrupt, RegistryIoError, TaskNotFound } from "../domain/Errors.js"
import { TaskId } from "../domain/Ids.js"
import { activeCount, TaskRegistry, withDerivedFields } from "../domain/Task.js"
import { FaultInjection } from "../faults/FaultInjection.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { writeAtomic } from "./AtomicFile.js"
import * as FileLock from "./FileLock.js"
import { Registry, type RegistryTransaction } from "./Registry.js"
import { lockPath, REGISTRY_FILE, registryPath, taskDir } from "./Workspace.js"

const decodeTask = Schema.decodeUnknownEffect(TaskRegistry)
const encodeTask = Schema.encodeEffect(TaskRegistry)
const isTaskId = Schema.is(TaskId)

const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The file-backed Registry layer. */
export const layer: Layer.Layer<
  Registry,
  RegistryIoError,
  SpawnkitConfig | FaultInjection | FileSystem.FileSystem | Path.Path
> = Layer.effect(
  Registry,
  Effect.gen(function*() {
    const { home } = yield* SpawnkitConfig
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const faults = yield* FaultInjection
    yield* fs.makeDirectory(home, { recursive: true }).pipe(
      Effect.mapError((e) => new RegistryIoError({ path: home, operation: "create directory", reason: e.message }))
    )
    const lock = yield* FileLock.make(lockPath(home))

    const readFile = (taskId: TaskId) => {
      const file = registryPath(home, taskId)
      return fs.readFileString(file).pipe(
        Effect.mapError((e): TaskNotFound | RegistryIoError =>
          e.reason._tag === "NotFound"
            ? new TaskNotFound({ taskId })
            : new RegistryIoError({ path: file, operation: "read", reason: e.message })
        ),
        Effect.flatMap((text) =>
          Effect.try({
            try: () => JSON.parse(text) as unknown,
            catch: (e) => new RegistryCorrupt({ path: file, reason: `invalid JSON: ${reasonOf(e)}` })
          })
        ),
        Effect.flatMap((json) =>
          decodeTask(json, { errors: "all" }).pipe(
            Effect.mapError((e) => new RegistryCorrupt({ path: file, reason: e.message }))
          )
        )
      )
    }

    const writeFile = (task: TaskRegistry) =>
      Effect.gen(function*() {
        const file = registryPath(home, task.task_id as TaskId)
        const encoded = yield* encodeTask(task).pipe(
          Effect.mapError((e) => new RegistryIoError({ path: file, operation: "encode", reason: e.message }))
        )
        yield* writeAtomic(file, JSON.stringify(encoded, null, 2) + "\n", faults).pipe(
          Effect.provideService(FileSystem.FileSystem, fs),
          Effect.provideService(Path.Path, path)
        )
      })

    const taskIds = fs.readDirectory(home).pipe(
      Effect.mapError((e) => new RegistryIoError({ path: home, operation: "list", reason: e.message })),
      Effect.map((names) => names.filter((name): name is TaskId => isTaskId(name)).sort())
    )

    const list = Effect.gen(function*() {
      const ids = yield* taskIds
      const tasks = yield* Effect.forEach(ids, (id) =>
        readFile(id).pipe(
          // A directory without a registry file yet (being created) is not a task.
          Effect.map((t): TaskRegistry | undefined => t),
          Effect.catchTag("TaskNotFound", () => Effect.succeed(undefined))
        ))
      return tasks.filter((t): t is TaskRegistry => t !== undefined)
    })

    const globalActiveBesides = (current: TaskRegistry) =>
      list.pipe(
        Effect.map((tasks) =>
          tasks.reduce(
            (n, t) => (t.task_id === current.task_id ? n : n + activeCount(t.agents)),
            activeCount(current.agents)
          )
        )
      )

    const update = <A, E>(
      taskId: TaskId,
      f: (tx: RegistryTransaction) => Effect.Effect<{ readonly result: A; readonly next?: TaskRegistry }, E>
    ) =>
      lock.withLock(
        Effect.gen(function*() {
          const task = yield* readFile(taskId)
          const transition = yield* f({ task, globalActive: globalActiveBesides(task) })
          if (transition.next !== undefined) {
            yield* writeFile(withDerivedFields({ ...transition.next, task_id: task.task_id }))
          }
          return transition.result
        })
      ).pipe(Effect.withSpan("Registry.update", { attributes: { taskId } }))

    const createTask = (task: TaskRegistry) =>
      lock.withLock(
        Effect.gen(function*() {
          if (!isTaskId(task.task_id)) {
            return yield* new InvalidInput({ field: "task_id", reason: `${JSON.stringify(task.task_id)} is not a task id` })
          }
          const dir = taskDir(home, task.task_id)
          if (yield* fs.exists(path.join(dir, REGISTRY_FILE)).pipe(Effect.orElseSucceed(() => false))) {
            return yield* new InvalidInput({ field: "task_id", reason: `task ${task.task_id} already exists` })
          }
          yield* Effect.forEach([dir, path.join(dir, "prompts"), path.join(dir, "logs")], (d) =>
            fs.makeDirectory(d, { recursive: true }).pipe(
              Effect.mapError((e) => new RegistryIoError({ path: d, operation: "create directory", reason: e.message }))
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
      heartbeat: Effect.void,
      expiredHosts: Effect.succeed(new Set<string>())
    })
  })
)
