/**
 * Events over PostgreSQL's `spawnkit_events` table. Sequence numbers are handed out under the head row's lock, held
 * to COMMIT, so they commit in order: a reader that has seen n has seen everything below n, and reading `seq > n`
 * never skips an event that commits later. Wake-ups come from one LISTEN connection per process (the writers'
 * `pg_notify` is delivered at their COMMIT), with a fallback look every second should a notification be lost.
 *
 * Rows are untrusted input: each is decoded against the event schema; one that fails is skipped with a warning.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import pg from "pg"
import type { RegistryError } from "../domain/Errors.js"
import { AgentEvent, type EventDraft } from "../domain/Event.js"
import { Events } from "../events/Events.js"
import { type Cursor, follow } from "../events/Follow.js"
import { makeWakeups } from "../events/Wakeups.js"

const decodeEvent = Schema.decodeUnknownOption(AgentEvent)

/** Rows one read takes. */
const PAGE = 1000
const FALLBACK_MS = 1000

/** Run a query as an Effect (errors already mapped by the registry's own helper). */
export type Query = <R extends pg.QueryResultRow>(
  operation: string,
  text: string,
  values?: ReadonlyArray<unknown>
) => Effect.Effect<pg.QueryResult<R>, RegistryError>

/** The Events service over a registry's pool; `listen` starts a LISTEN connection calling `signal` on each commit. */
export const make = (query: Query, listen: (signal: () => void) => () => void) =>
  Effect.gen(function*() {
    const wakeups = yield* makeWakeups(listen)
    const open = Effect.succeed<Cursor>({
      read: (after) =>
        Effect.gen(function*() {
          const rows = (yield* query<{ seq_text: string; doc: unknown }>(
            "read events",
            "SELECT seq::text AS seq_text, doc FROM spawnkit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            [after, PAGE]
          )).rows
          const oldest = (yield* query<{ seq: string | null }>(
            "read the oldest event",
            "SELECT min(seq)::text AS seq FROM spawnkit_events"
          )).rows[0]?.seq
          const events: Array<AgentEvent> = []
          for (const row of rows) {
            const decoded = decodeEvent(row.doc)
            if (decoded._tag === "Some" && String(decoded.value.seq) === row.seq_text) events.push(decoded.value)
            else yield* Effect.logWarning(`skipped event ${row.seq_text}: it does not decode as an event`)
          }
          // Rows that did not decode still move the cursor: a reader must not read them again and again.
          if (events.length === 0 && rows.length > 0) {
            return { events: [], more: true, skipTo: Number(rows[rows.length - 1]!.seq_text) }
          }
          return {
            events,
            ...(oldest !== null && oldest !== undefined ? { oldest: Number(oldest) } : {}),
            more: rows.length === PAGE
          }
        }),
      generation: wakeups.generation,
      wait: (generation) => wakeups.wait(generation, FALLBACK_MS)
    })
    const head = query<{ seq: string }>("read the event head", "SELECT seq::text AS seq FROM spawnkit_event_head")
      .pipe(Effect.map((r) => Number(r.rows[0]?.seq ?? 0)))
    return Events.of({ stream: (q) => follow(open, q), head })
  })

/** The channel PostgreSQL notifies on when events commit (payload: the newest sequence number). */
export const EVENTS_CHANNEL = "spawnkit_events"

/**
 * In a registry transaction: number its events after the head (locking the head row to COMMIT), insert them and
 * notify readers (delivered at COMMIT).
 */
export const append = (query: Query, drafts: ReadonlyArray<EventDraft>, retain: number) =>
  Effect.gen(function*() {
    if (drafts.length === 0) return
    const head = (yield* query<{ seq: string }>(
      "number events",
      "UPDATE spawnkit_event_head SET seq = seq + $1 WHERE id = 1 RETURNING seq",
      [drafts.length]
    )).rows[0]
    const last = Number(head?.seq ?? drafts.length)
    const first = last - drafts.length + 1
    const docs = drafts.map((d, i) => JSON.stringify({ ...d, seq: first + i }))
    yield* query(
      "journal events",
      `INSERT INTO spawnkit_events (seq, task_id, doc)
       SELECT $1::bigint + n - 1, $2, d::json FROM unnest($3::text[]) WITH ORDINALITY AS e(d, n)`,
      [first, drafts[0]!.task_id, docs]
    )
    yield* query("notify readers", "SELECT pg_notify($1, $2)", [EVENTS_CHANNEL, String(last)])
    // Retention: each time the head passes a thousand, events older than the newest SPAWNKIT_EVENTS_RETAIN go.
    if (Math.floor(last / 1000) !== Math.floor((first - 1) / 1000)) {
      yield* query("drop old events", "DELETE FROM spawnkit_events WHERE seq <= $1", [last - retain])
    }
  })

/** A LISTEN connection on `channel`, calling `signal` on every notification (and on a failure, so waiters look). */
export const listener = (url: string, name: string, channel = EVENTS_CHANNEL) => (signal: () => void) => {
  const client = new pg.Client({ connectionString: url, application_name: name })
  client.on("notification", signal)
  client.on("error", signal)
  client.connect().then(() => client.query(`LISTEN ${channel}`)).catch(signal)
  // Ending a connection that failed already has nothing left to report: the waiters' fallback covers it.
  return () => void client.end().catch(signal)
}
