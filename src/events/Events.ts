/**
 * The Events service: read and follow the event journal of a home (the file journal, or PostgreSQL's event table).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { RegistryError } from "../domain/Errors.js"
import type { AgentEvent } from "../domain/Event.js"
import type { TaskId } from "../domain/Ids.js"

/** Which events a reader wants. */
export interface EventQuery {
  /** Only events after this sequence number (default 0: from the oldest one retained). */
  readonly since?: number
  /** Only this task's events. */
  readonly taskId?: TaskId
  /** Keep the stream open and emit events as they commit (default false: end at the newest committed event). */
  readonly follow?: boolean
}

/** The events contract. */
export class Events extends Context.Service<Events, {
  /** Events in sequence order, each exactly once. */
  readonly stream: (query?: EventQuery) => Stream.Stream<AgentEvent, RegistryError>
  /** The newest committed sequence number (0 when none). */
  readonly head: Effect.Effect<number, RegistryError>
}>()("spawnkit/Events") {}
