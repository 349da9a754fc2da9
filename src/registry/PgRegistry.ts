/**
 * PgRegistry: the Registry in PostgreSQL, shared by every host whose SPAWNKIT_DATABASE_URL names the same database.
 *
 * A task is one row of `spawnkit_tasks`: its registry document (the same JSON as AGENT_REGISTRY.json) and
 * `active_slots`, the slots its records hold, written from the records in the same statement. A transaction is:
 *
 *   BEGIN; lock the task's row (FOR UPDATE); decode; [lock the admission row (FOR UPDATE); sum active_slots];
 *   f; derive counts; UPDATE; COMMIT          (any failure, defect or interruption: ROLLBACK, nothing written)
 *
 * Why row locks in READ COMMITTED, and not SERIALIZABLE or advisory locks: `f` runs exactly once on a snapshot no
 * one else can change until the commit, so an admission decision is never retried or replayed (a retried `f` would
 * repeat its side effects) and contention queues instead of aborting. Row locks are transaction-scoped: COMMIT,
 * ROLLBACK or a dropped connection (a SIGKILLed host) frees them, they behave the same behind a transaction-mode
 * pooler, and, unlike advisory lock keys, they cannot collide with another application's locks in the database.
 *
 * Invariant (lock order): the task row first, then the single admission row, taken only by transitions that read
 * `globalActive` (admissions) or add slots. Every such transition is serialized with every other across all hosts, so
 * the global count is read and changed under one lock; transitions that only end or commit agents of different tasks
 * run in parallel. No transaction holds two task rows, so no cycle, and no deadlock, is possible.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import pg from "pg"
import {
  InvalidInput,
  ioFailure,
  RegistryCorrupt,
  RegistryDatabaseError,
  RegistryIoError,
  TaskExists,
  TaskNotCorrupt,
  TaskNotFound
} from "../domain/Errors.js"
import { changeEvents } from "../domain/Event.js"
import { TaskId } from "../domain/Ids.js"
import { activeCount, TaskRegistry, withDerivedFields } from "../domain/Task.js"
import { Events } from "../events/Events.js"
import { FaultInjection } from "../faults/FaultInjection.js"
import { taskDir } from "../host/Workspace.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import * as PgEvents from "./PgEvents.js"
import {
  type ListOptions,
  Registry,
  type RegistryTransaction,
  type TaskPage,
  type Transition,
  type UnreadableTask
} from "./Registry.js"

const decodeTask = Schema.decodeUnknownEffect(TaskRegistry)
const encodeTask = Schema.encodeEffect(TaskRegistry)
const isTaskId = Schema.is(TaskId)

/** The schema version this code writes; a database at a newer version is refused. */
export const SCHEMA_VERSION = 3

/**
 * Migrations, in order: version n's statements run once, in one transaction, on a database at version n - 1.
 * `doc` is `json`, not `jsonb`: it keeps the document exactly as written (key order included), as the file does.
 */
const MIGRATIONS: ReadonlyArray<ReadonlyArray<string>> = [
  [
    `CREATE TABLE spawnkit_tasks (
      task_id text PRIMARY KEY,
      doc json NOT NULL,
      active_slots integer NOT NULL CHECK (active_slots >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    // One row whose lock serializes every transition that reads or adds to the global slot count.
    `CREATE TABLE spawnkit_admission (id integer PRIMARY KEY CHECK (id = 1))`,
    `INSERT INTO spawnkit_admission (id) VALUES (1)`,
    // A host is alive while its heartbeat is younger than the lease; times are the database's, never a host's clock.
    `CREATE TABLE spawnkit_hosts (
      host_id text PRIMARY KEY,
      pid integer NOT NULL,
      last_seen timestamptz NOT NULL
    )`
  ],
  [
    // Registries set aside by `spawnkit task quarantine` (they did not decode), kept as they were for inspection.
    `CREATE TABLE spawnkit_quarantine (
      task_id text NOT NULL,
      doc json NOT NULL,
      active_slots integer NOT NULL,
      quarantined_at timestamptz NOT NULL DEFAULT now()
    )`,
    // Listing the tasks that may hold slots reads these rows only, not every task ever run.
    `CREATE INDEX spawnkit_tasks_active ON spawnkit_tasks (task_id) WHERE active_slots > 0`
  ],
  [
    // The event journal: one row per event, written in the transaction of the change it tells of.
    `CREATE TABLE spawnkit_events (
      seq bigint PRIMARY KEY,
      task_id text NOT NULL,
      doc json NOT NULL
    )`,
    `CREATE INDEX spawnkit_events_task ON spawnkit_events (task_id, seq)`,
    // The newest sequence number. Its row lock, held to COMMIT, makes sequence numbers gap-free and commit-ordered:
    // a reader that has seen n has seen every event below n (a sequence would hand out numbers out of commit order).
    `CREATE TABLE spawnkit_event_head (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL)`,
    `INSERT INTO spawnkit_event_head (id, seq) VALUES (1, 0)`
  ]
]

/** Key of the transaction-scoped advisory lock that serializes migrations (the tables to lock may not exist yet). */
const MIGRATION_LOCK_KEY = "7301452903318811"

/** A connection URL with its password left out, for messages. */
export const describeDatabase = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "the database of SPAWNKIT_DATABASE_URL"
  }
}

type Queryable = Pick<pg.PoolClient, "query">

/** The PostgreSQL-backed Registry layer; fails when SPAWNKIT_DATABASE_URL is unset or the database unreachable. */
export const layer: Layer.Layer<
  Registry | Events,
  RegistryDatabaseError,
  SpawnkitConfig | FaultInjection | FileSystem.FileSystem | Path.Path
> = Layer.effectContext(
  Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const faults = yield* FaultInjection
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (Option.isNone(config.databaseUrl)) {
      return yield* new RegistryDatabaseError({
        database: "(none)",
        operation: "connect",
        reason: "SPAWNKIT_DATABASE_URL is not set"
      })
    }
    const url = Redacted.value(config.databaseUrl.value)
    const database = describeDatabase(url)
    const dbError = (operation: string) => (cause: unknown) =>
      new RegistryDatabaseError({
        database,
        operation,
        reason: cause instanceof Error ? cause.message : String(cause),
        ...(cause instanceof pg.DatabaseError && cause.code !== undefined ? { code: cause.code } : {})
      })

    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({
          connectionString: url,
          max: config.databasePoolSize,
          application_name: `spawnkit ${config.hostId}`,
          // A transaction left idle longer than a host's lease belongs to a process as good as gone: end it, so its
          // row locks do not stop every other host.
          idle_in_transaction_session_timeout: config.hostLeaseSeconds * 1000
        })
        // An idle connection the server drops is replaced on next use; it must not crash the process.
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) => Effect.promise(() => pool.end())
    )

    const query = <R extends pg.QueryResultRow>(
      client: Queryable,
      operation: string,
      text: string,
      values: ReadonlyArray<unknown> = []
    ) => Effect.tryPromise({ try: () => client.query<R>(text, [...values]), catch: dbError(operation) })

    /**
     * Run `body` in one transaction on one pooled connection: COMMIT if it succeeds, ROLLBACK on any failure, defect
     * or interruption. A connection whose ROLLBACK fails is discarded, never returned to the pool mid-transaction.
     */
    const transaction = <A, E>(body: (client: pg.PoolClient) => Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.tryPromise({ try: () => pool.connect(), catch: dbError("connect") }),
        (client) =>
          Effect.gen(function*() {
            yield* query(client, "begin a transaction", "BEGIN")
            const result = yield* body(client)
            yield* query(client, "commit", "COMMIT")
            return result
          }),
        (client, exit) =>
          Exit.isSuccess(exit)
            ? Effect.sync(() => client.release())
            : Effect.promise(() =>
              client.query("ROLLBACK").then(
                () => client.release(),
                (e: Error) => client.release(e)
              )
            )
      )

    const migrate = transaction((client) =>
      Effect.gen(function*() {
        yield* query(client, "lock the schema", "SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY])
        yield* query(
          client,
          "create the schema table",
          "CREATE TABLE IF NOT EXISTS spawnkit_schema (version integer NOT NULL)"
        )
        const current = (yield* query<{ version: number }>(
          client,
          "read the schema version",
          "SELECT coalesce(max(version), 0)::integer AS version FROM spawnkit_schema"
        )).rows[0]?.version ?? 0
        if (current > SCHEMA_VERSION) {
          return yield* new RegistryDatabaseError({
            database,
            operation: "use the schema",
            reason: `the database is at schema version ${current}, newer than this spawnkit's ${SCHEMA_VERSION}; ` +
              "upgrade spawnkit on this host"
          })
        }
        for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
          for (const statement of MIGRATIONS[version - 1]!) {
            yield* query(client, `migrate to schema version ${version}`, statement)
          }
          yield* query(client, "record the schema version", "INSERT INTO spawnkit_schema (version) VALUES ($1)", [
            version
          ])
        }
      })
    )
    yield* migrate

    const where = (taskId: string) => `${database} (spawnkit_tasks ${taskId})`

    const decodeRow = (taskId: string, doc: unknown) =>
      decodeTask(doc, { errors: "all" }).pipe(
        Effect.mapError((e) => new RegistryCorrupt({ path: where(taskId), reason: e.message, taskId })),
        Effect.filterOrFail(
          (task) => task.task_id === taskId,
          (task) =>
            new RegistryCorrupt({
              path: where(taskId),
              reason: `its task_id ${JSON.stringify(task.task_id)} is not its row's ${taskId}`,
              taskId
            })
        )
      )

    const encodeRow = (task: TaskRegistry) =>
      encodeTask(task).pipe(
        Effect.map((encoded) => JSON.stringify(encoded)),
        Effect.mapError((e) =>
          new RegistryIoError({ path: where(task.task_id), operation: "encode", reason: e.message })
        )
      )

    const read = (taskId: TaskId) =>
      query<{ doc: unknown }>(pool, "read a task", "SELECT doc FROM spawnkit_tasks WHERE task_id = $1", [taskId]).pipe(
        Effect.flatMap((r): Effect.Effect<TaskRegistry, TaskNotFound | RegistryCorrupt> =>
          r.rows[0] === undefined ? Effect.fail(new TaskNotFound({ taskId })) : decodeRow(taskId, r.rows[0].doc)
        )
      )

    const list = (options: ListOptions = {}) =>
      Effect.gen(function*() {
        const active = (options.scope ?? "active") === "active"
        // One row more than the page, to know whether another page follows.
        const rows = (yield* query<{ task_id: string; doc: unknown }>(
          pool,
          "list tasks",
          `SELECT task_id, doc FROM spawnkit_tasks
           WHERE ($1::text IS NULL OR task_id > $1) AND (NOT $2 OR active_slots > 0)
           ORDER BY task_id LIMIT $3`,
          [options.after ?? null, active, options.limit === undefined ? null : options.limit + 1]
        )).rows
        const pageRows = options.limit === undefined ? rows : rows.slice(0, options.limit)
        const tasks: Array<TaskRegistry> = []
        const unreadable: Array<UnreadableTask> = []
        for (const row of pageRows) {
          if (!isTaskId(row.task_id)) {
            unreadable.push({ task_id: row.task_id as TaskId, location: where(row.task_id), reason: "not a task id" })
            continue
          }
          yield* decodeRow(row.task_id, row.doc).pipe(
            Effect.match({
              onSuccess: (task) => void tasks.push(task),
              onFailure: (e) =>
                void unreadable.push({ task_id: row.task_id as TaskId, location: e.path, reason: e.reason })
            })
          )
        }
        const last = pageRows[pageRows.length - 1]
        return {
          tasks,
          unreadable,
          ...(rows.length > pageRows.length && last !== undefined ? { next: last.task_id as TaskId } : {})
        } satisfies TaskPage
      })

    // The row moves to spawnkit_quarantine as it is (its `json` keeps the text), and the admission lock is held while
    // its slots leave the global count.
    const quarantine = (taskId: TaskId) =>
      transaction((client) =>
        Effect.gen(function*() {
          const row = (yield* query<{ doc: unknown }>(
            client,
            "lock a task",
            "SELECT doc FROM spawnkit_tasks WHERE task_id = $1 FOR UPDATE",
            [taskId]
          )).rows[0]
          if (row === undefined) return yield* new TaskNotFound({ taskId })
          const decodes = yield* decodeRow(taskId, row.doc).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
          if (decodes) {
            return yield* new TaskNotCorrupt({ taskId })
          }
          yield* query(client, "lock admission", "SELECT id FROM spawnkit_admission WHERE id = 1 FOR UPDATE")
          yield* query(
            client,
            "quarantine a task",
            `INSERT INTO spawnkit_quarantine (task_id, doc, active_slots)
             SELECT task_id, doc, active_slots FROM spawnkit_tasks WHERE task_id = $1`,
            [taskId]
          )
          yield* query(client, "remove a quarantined task", "DELETE FROM spawnkit_tasks WHERE task_id = $1", [taskId])
          return { task_id: taskId, kept_at: `${database} (spawnkit_quarantine ${taskId})` }
        })
      )

    const update = <A, E>(taskId: TaskId, f: (tx: RegistryTransaction) => Effect.Effect<Transition<A>, E>) =>
      Effect.gen(function*() {
        let written = false
        const result = yield* transaction((client) =>
          Effect.gen(function*() {
            const row = (yield* query<{ doc: unknown }>(
              client,
              "lock a task",
              "SELECT doc FROM spawnkit_tasks WHERE task_id = $1 FOR UPDATE",
              [taskId]
            )).rows[0]
            if (row === undefined) return yield* new TaskNotFound({ taskId })
            const task = yield* decodeRow(taskId, row.doc)
            let admissionLocked = false
            const lockAdmission = Effect.suspend(() =>
              admissionLocked
                ? Effect.void
                : query(client, "lock admission", "SELECT id FROM spawnkit_admission WHERE id = 1 FOR UPDATE").pipe(
                  Effect.tap(() => Effect.sync(() => (admissionLocked = true)))
                )
            )
            const globalActive = lockAdmission.pipe(
              Effect.andThen(
                query<{ slots: number }>(
                  client,
                  "count slots",
                  "SELECT coalesce(sum(active_slots), 0)::integer AS slots FROM spawnkit_tasks WHERE task_id <> $1",
                  [taskId]
                )
              ),
              Effect.map((r) => (r.rows[0]?.slots ?? 0) + activeCount(task.agents))
            )
            const transition = yield* f({ task, globalActive })
            if (transition.next === undefined) return transition.result
            const next = withDerivedFields({ ...transition.next, task_id: task.task_id })
            // The global count only grows under the admission lock, whoever the caller is.
            if (next.active_count > activeCount(task.agents)) yield* lockAdmission
            yield* query(
              client,
              "write a task",
              "UPDATE spawnkit_tasks SET doc = $2::json, active_slots = $3, updated_at = now() WHERE task_id = $1",
              [taskId, yield* encodeRow(next), next.active_count]
            )
            const at = new Date(yield* Clock.currentTimeMillis).toISOString()
            yield* PgEvents.append(
              (operation, text, values) => query(client, operation, text, values),
              [...changeEvents(task, next, at), ...(transition.events ?? [])],
              config.eventsRetain
            )
            yield* faults.point("registry-before-commit")
            written = true
            return transition.result
          })
        )
        // The write is durable from here on, even if the caller is told otherwise (as after a file's rename).
        if (written) yield* faults.point("registry-after-commit")
        return result
      }).pipe(Effect.withSpan("Registry.update", { attributes: { taskId, backend: "postgresql" } }))

    const createTask = (task: TaskRegistry) =>
      Effect.gen(function*() {
        if (!isTaskId(task.task_id)) {
          return yield* new InvalidInput({
            field: "task_id",
            reason: `${JSON.stringify(task.task_id)} is not a task id`
          })
        }
        const derived = withDerivedFields(task)
        const inserted = yield* query(
          pool,
          "create a task",
          "INSERT INTO spawnkit_tasks (task_id, doc, active_slots) VALUES ($1, $2::json, $3) ON CONFLICT (task_id) DO NOTHING",
          [task.task_id, yield* encodeRow(derived), derived.active_count]
        )
        if (inserted.rowCount === 0) {
          return yield* new TaskExists({ taskId: task.task_id })
        }
        // This host's working directories of the task (prompts, logs); other hosts make theirs when they spawn.
        const dir = taskDir(config.home, task.task_id)
        yield* Effect.forEach([dir, path.join(dir, "prompts"), path.join(dir, "logs")], (d) =>
          fs.makeDirectory(d, { recursive: true }).pipe(
            Effect.mapError((e) =>
              new RegistryIoError({ path: d, operation: "create directory", ...ioFailure(e) })
            )
          ))
      })

    const heartbeat = query(
      pool,
      "record this host's heartbeat",
      `INSERT INTO spawnkit_hosts (host_id, pid, last_seen) VALUES ($1, $2, now())
       ON CONFLICT (host_id) DO UPDATE SET pid = excluded.pid, last_seen = now()`,
      [config.hostId, process.pid]
    ).pipe(Effect.asVoid)

    const expiredHosts = query<{ host_id: string }>(
      pool,
      "read expired hosts",
      "SELECT host_id FROM spawnkit_hosts WHERE host_id <> $1 AND last_seen < now() - make_interval(secs => $2)",
      [config.hostId, config.hostLeaseSeconds]
    ).pipe(Effect.map((r) => new Set(r.rows.map((row) => row.host_id))))

    // This host is alive while any of its spawnkit processes runs: each beats at start and then three times a lease.
    yield* heartbeat
    yield* heartbeat.pipe(
      Effect.catch((e) => Effect.logWarning(`heartbeat failed: ${e.message}`)),
      Effect.repeat(Schedule.spaced(Duration.seconds(config.hostLeaseSeconds / 3))),
      Effect.forkScoped
    )

    const events = yield* PgEvents.make(
      (operation, text, values) => query(pool, operation, text, values === undefined ? undefined : [...values]),
      PgEvents.listener(url, `spawnkit ${config.hostId} events`)
    )
    return Context.make(Registry, Registry.of({ createTask, update, read, list, quarantine, heartbeat, expiredHosts }))
      .pipe(Context.add(Events, events))
  })
)
