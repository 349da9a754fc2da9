/**
 * The Registry service: where tasks and agent records live, and the one transactional primitive that changes them.
 * FileRegistry implements it over JSON files (one host), PgRegistry over PostgreSQL (any number of hosts).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { InvalidInput, RegistryError, TaskExists, TaskNotCorrupt, TaskNotFound } from "../domain/Errors.js"
import type { EventDraft } from "../domain/Event.js"
import type { TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"

/** What a transaction sees: the task's registry and, on demand, the slots held across every task. */
export interface RegistryTransaction {
  readonly task: TaskRegistry
  /**
   * Slots held (reservations included) across all tasks, this one included, read under the same lock.
   * Invariant: a transition that adds slots reads this first; a backend may take its cross-task lock only then.
   */
  readonly globalActive: Effect.Effect<number, RegistryError>
}

/** The outcome of a transaction: a result, and the new registry to write (none: nothing is written). */
export interface Transition<A> {
  readonly result: A
  readonly next?: TaskRegistry
  /**
   * Events the diff of the records cannot see (reports). Status changes make their own events (`statusEvents`);
   * either kind is journalled in the transaction that writes `next`, and only if it writes one.
   */
  readonly events?: ReadonlyArray<EventDraft>
}

/** A task whose registry could not be read or decoded: reported and skipped by passes over many tasks, never written. */
export interface UnreadableTask {
  readonly task_id: TaskId
  /** The file, or the database row, that holds it. */
  readonly location: string
  readonly reason: string
}

/** Which tasks a listing covers. */
export interface ListOptions {
  /**
   * `active`: the tasks that may hold slots (reservations or live agents), read without touching finished tasks;
   * `all`: every task. Default `active`.
   */
  readonly scope?: "active" | "all"
  /** Only tasks whose id sorts after this one (the `next` of the previous page). */
  readonly after?: TaskId
  /** At most this many tasks (readable or not) in the page; default: all. */
  readonly limit?: number
}

/**
 * One page of a listing, in task id order (ids start with their creation time). Invariant (isolation per task): a
 * task that cannot be read is listed in `unreadable`, never fails the listing.
 */
export interface TaskPage {
  readonly tasks: ReadonlyArray<TaskRegistry>
  readonly unreadable: ReadonlyArray<UnreadableTask>
  /** The cursor of the next page; absent on the last one. */
  readonly next?: TaskId
}

/** Where a quarantined task's registry is kept, byte for byte. */
export interface Quarantined {
  readonly task_id: TaskId
  readonly kept_at: string
}

/** The registry contract. */
export class Registry extends Context.Service<Registry, {
  /** Create a task's registry; fails if the id is taken. */
  readonly createTask: (task: TaskRegistry) => Effect.Effect<void, RegistryError | InvalidInput | TaskExists>
  /**
   * Invariant: the one way to change a task. `f` runs on a consistent snapshot while every other change, in every
   * process, waits; its `next` registry (with counts re-derived) replaces the old one atomically before the lock is
   * released. If `f` fails, nothing is written.
   */
  readonly update: <A, E>(
    taskId: TaskId,
    f: (tx: RegistryTransaction) => Effect.Effect<Transition<A>, E>
  ) => Effect.Effect<A, E | RegistryError | TaskNotFound>
  /** Read one task's registry (no lock: files are replaced atomically). */
  readonly read: (taskId: TaskId) => Effect.Effect<TaskRegistry, RegistryError | TaskNotFound>
  /** A page of tasks; a task that cannot be read is reported in the page, never fails it. */
  readonly list: (options?: ListOptions) => Effect.Effect<TaskPage, RegistryError>
  /**
   * Set aside a task whose registry cannot be decoded: its registry is moved out of the registry, kept byte for byte,
   * and its slots stop counting. Refused (TaskNotCorrupt) for a task that decodes.
   */
  readonly quarantine: (taskId: TaskId) => Effect.Effect<Quarantined, RegistryError | TaskNotFound | TaskNotCorrupt>
  /** Tell the other hosts sharing this registry that this host is alive (a no-op where there is one host). */
  readonly heartbeat: Effect.Effect<void, RegistryError>
  /** Hosts whose lease ran out (no heartbeat for SPAWNKIT_HOST_LEASE_SECONDS); never this host; none for one host. */
  readonly expiredHosts: Effect.Effect<ReadonlySet<string>, RegistryError>
}>()("spawnkit/Registry") {}

/** Cut a sorted list of ids to one page: the ids after `after`, at most `limit`, and the cursor of the next page. */
export const pageOf = <Id extends string>(
  sortedIds: ReadonlyArray<Id>,
  options: ListOptions
): { readonly ids: ReadonlyArray<Id>; readonly next?: Id } => {
  const after: string | undefined = options.after
  const from = after === undefined ? sortedIds : sortedIds.filter((id: string) => id > after)
  const limit = options.limit
  if (limit === undefined || from.length <= limit) return { ids: from }
  const ids = from.slice(0, limit)
  return { ids, next: ids[ids.length - 1]! }
}
