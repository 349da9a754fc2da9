/**
 * One way to read a journal as a Stream, whatever stores it: a source hands out committed events after a cursor and
 * says when waiting is worth it; the stream filters, advances the cursor and waits for changes only while following.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { EventsExpired, type RegistryError } from "../domain/Errors.js"
import type { AgentEvent } from "../domain/Event.js"
import type { EventQuery } from "./Events.js"

/** What a source read after a cursor. */
export interface Page {
  /** Committed events after the cursor, in order (possibly not all of them: read again). */
  readonly events: ReadonlyArray<AgentEvent>
  /** The oldest sequence number the source still keeps (undefined: none kept yet). */
  readonly oldest?: number
  /** Something may commit any moment (a batch waits for its commit): look again soon rather than wait for a wake-up. */
  readonly soon?: boolean
  /** The source has more to read right now. */
  readonly more?: boolean
  /** Records after the cursor up to here were unreadable and skipped: move the cursor past them. */
  readonly skipTo?: number
}

/** A journal reader's state, made per stream. */
export interface Cursor {
  readonly read: (after: number) => Effect.Effect<Page, RegistryError>
  /** The wake-up generation, taken before a read. */
  readonly generation: Effect.Effect<number>
  /** Wait until the journal may have changed since `generation` (briefly when `soon`; else up to a fallback). */
  readonly wait: (generation: number, soon: boolean) => Effect.Effect<void>
}

/** The stream of a query over a cursor made fresh for it. */
export const follow = (
  open: Effect.Effect<Cursor, RegistryError>,
  query: EventQuery = {}
): Stream.Stream<AgentEvent, RegistryError | EventsExpired> =>
  Stream.unwrap(Effect.map(open, (cursor) => {
    const since = query.since ?? 0
    let first = true
    return Stream.paginate(since, (after: number) =>
      Effect.gen(function*() {
        const generation = yield* cursor.generation
        const page = yield* cursor.read(after)
        if (first && query.since !== undefined && page.oldest !== undefined && page.oldest > since + 1) {
          return yield* new EventsExpired({ since, oldest: page.oldest })
        }
        first = false
        if (page.events.length === 0) {
          if (page.more === true) return [[], Option.some(page.skipTo ?? after)] as const
          if (query.follow !== true) return [[], Option.none<number>()] as const
          yield* cursor.wait(generation, page.soon === true)
          return [[], Option.some(after)] as const
        }
        const last = page.events[page.events.length - 1]!.seq
        const mine = query.taskId === undefined ? page.events : page.events.filter((e) => e.task_id === query.taskId)
        return [mine, Option.some(last)] as const
      }))
  }))
