/**
 * The Registry service: where tasks and agent records live, and the one transactional primitive that changes them.
 * FileRegistry implements it over JSON files (one host), PgRegistry over PostgreSQL (any number of hosts).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { InvalidInput, RegistryError, TaskNotFound } from "../domain/Errors.js"
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
}

/** The registry contract. */
export class Registry extends Context.Service<Registry, {
  /** Create a task's registry; fails if the id is taken. */
  readonly createTask: (task: TaskRegistry) => Effect.Effect<void, RegistryError | InvalidInput>
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
  /** Read every task's registry. */
  readonly list: Effect.Effect<ReadonlyArray<TaskRegistry>, RegistryError>
  /** Tell the other hosts sharing this registry that this host is alive (a no-op where there is one host). */
  readonly heartbeat: Effect.Effect<void, RegistryError>
  /** Hosts whose lease ran out (no heartbeat for SPAWNKIT_HOST_LEASE_SECONDS); never this host; none for one host. */
  readonly expiredHosts: Effect.Effect<ReadonlySet<string>, RegistryError>
}>()("spawnkit/Registry") {}
