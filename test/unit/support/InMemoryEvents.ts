/**
 * An in-memory Events service for unit tests only (the real journal lives with the registry): events appended by the
 * test are numbered 1, 2, …; `stream` ends at the newest event, or with `follow` keeps emitting appended ones.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type { AgentEvent, EventDraft } from "../../../src/domain/Event.js"
import { Events } from "../../../src/events/Events.js"

/** A journal a test appends to, and its Events layer. */
export const makeInMemoryEvents = Effect.gen(function*() {
  const journal: Array<AgentEvent> = []
  const appended = yield* PubSub.unbounded<AgentEvent>()
  const append = (draft: EventDraft) =>
    Effect.gen(function*() {
      const event = { ...draft, seq: journal.length + 1 } as AgentEvent
      journal.push(event)
      yield* PubSub.publish(appended, event)
      return event
    })
  const service = Events.of({
    head: Effect.sync(() => journal.length),
    stream: (query = {}) => {
      const wanted = (e: AgentEvent) =>
        e.seq > (query.since ?? 0) && (query.taskId === undefined || e.task_id === query.taskId)
      if (query.follow !== true) return Stream.suspend(() => Stream.fromIterable(journal.filter(wanted)))
      // Subscribed before the snapshot is taken, so no event falls between the two.
      return Stream.unwrap(Effect.gen(function*() {
        const live = yield* PubSub.subscribe(appended)
        const past = journal.filter(wanted)
        const last = past.at(-1)?.seq ?? query.since ?? 0
        return Stream.concat(
          Stream.fromIterable(past),
          Stream.fromSubscription(live).pipe(Stream.filter((e) => wanted(e) && e.seq > last))
        )
      }))
    }
  })
  return { append, layer: Layer.succeed(Events, service) }
})
