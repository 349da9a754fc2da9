/**
 * Usage-limit walls: an engine whose provider told one of this host's agents that a rate or usage limit is reached
 * (until a reset time) is walled off until then. New spawns on it are refused with UsageLimited and the time left,
 * so an orchestrator backs off instead of spawning into the wall; other engines are unaffected.
 *
 * Walls live in `<home>/.spawnkit-usage-limits.jsonl` (a home is one host's), one JSON line per report, appended with
 * one write. The file is read on each spawn only when it changed (its size and time are compared first).
 *
 * Security: agents can write the home, so every line is decoded as untrusted input: a line that does not decode is
 * skipped (it walls nothing), and no wall reaches further than SEVEN_DAYS past its report. The worst a forged line can
 * do is delay spawns on one engine of this host, which an agent able to write the home can do in other ways too.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { Engine, Timestamp } from "../domain/Agent.js"
import { UsageLimited } from "../domain/Errors.js"
import { AgentId, HostId, TaskId } from "../domain/Ids.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"

/** A wall never reaches further than this past now. */
export const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000

/** The file's name in the home. */
export const WALLS_FILE = ".spawnkit-usage-limits.jsonl"

/** The walls file grows by a line a report; past this size, the next report rewrites it with the walls still up. */
const COMPACT_BYTES = 256 * 1024

/** One reported wall, as stored. */
export const Wall = Schema.Struct({
  engine: Engine,
  host: HostId,
  resets_at: Timestamp,
  reason: Schema.String.check(Schema.isMaxLength(500)),
  task_id: Schema.optionalKey(TaskId),
  agent_id: Schema.optionalKey(AgentId),
  at: Timestamp
})
/** @see Wall */
export type Wall = typeof Wall.Type

const decodeWall = Schema.decodeUnknownOption(Schema.fromJsonString(Wall))

/** The walls of a file's text: each line that decodes; the rest are skipped. Pure. */
export const parseWalls = (text: string): ReadonlyArray<Wall> =>
  text.split("\n").flatMap((line) => (line.trim() === "" ? [] : Option.toArray(decodeWall(line))))

/**
 * The wall an engine of a host is behind at `nowMs`: the latest reset among its walls still up (a wall whose reset
 * is more than SEVEN_DAYS_MS past its report counts only that far). Pure.
 */
export const wallFor = (
  walls: ReadonlyArray<Wall>,
  engine: string,
  host: string,
  nowMs: number
): { readonly resetsAtMs: number; readonly wall: Wall } | undefined => {
  let found: { readonly resetsAtMs: number; readonly wall: Wall } | undefined
  for (const wall of walls) {
    if (wall.engine !== engine || wall.host !== host) continue
    const resetsAtMs = Math.min(Date.parse(wall.resets_at), Date.parse(wall.at) + SEVEN_DAYS_MS)
    if (resetsAtMs > nowMs && (found === undefined || resetsAtMs > found.resetsAtMs)) found = { resetsAtMs, wall }
  }
  return found
}

/**
 * Append a wall's line with one write; past COMPACT_BYTES, rewrite the file with the walls still up (`kept`) and this
 * one instead. A report appended meanwhile by another process may then be lost: a wall is a hint to back off, and
 * the next report of the limit brings it back.
 */
const appendWall = (file: string, line: string, kept: () => ReadonlyArray<Wall>) => {
  let size = 0
  try {
    size = Fs.statSync(file).size
  } catch {
    // No file yet.
  }
  if (size <= COMPACT_BYTES) return Fs.appendFileSync(file, line, { mode: 0o600 })
  const temp = `${file}.tmp-${process.pid}`
  Fs.writeFileSync(temp, kept().map((w) => JSON.stringify(w) + "\n").join("") + line, { mode: 0o600 })
  Fs.renameSync(temp, file)
}

/** The walls of this host. */
export class UsageWalls extends Context.Service<UsageWalls, {
  /** The refusal for a spawn on `engine` at `nowMs`, when the engine is behind a wall; undefined when it is not. */
  readonly check: (engine: string, nowMs: number) => Effect.Effect<UsageLimited | undefined>
  /** Fail with the refusal `check` gives, if any. */
  readonly refuseIfWalled: (engine: string, nowMs: number) => Effect.Effect<void, UsageLimited>
  /** Record a wall reported by an agent's output (a failure to write it is logged: it is a hint, not a record). */
  readonly record: (wall: Omit<Wall, "host">) => Effect.Effect<void>
  /** The walls up at `nowMs`, one per engine (the latest reset). */
  readonly active: (nowMs: number) => Effect.Effect<ReadonlyArray<Wall>>
}>()("spawnkit/UsageWalls") {
  static readonly layer: Layer.Layer<UsageWalls, never, SpawnkitConfig> = Layer.effect(
    UsageWalls,
    Effect.gen(function*() {
      const config = yield* SpawnkitConfig
      const file = NodePath.join(config.home, WALLS_FILE)
      let cached: { readonly key: string; readonly walls: ReadonlyArray<Wall> } = { key: "", walls: [] }
      /** The walls on file, read again only when its size or time changed. */
      const load = () => {
        let stat: Fs.Stats
        try {
          stat = Fs.statSync(file)
        } catch {
          return []
        }
        const key = `${stat.size}:${stat.mtimeMs}:${stat.ino}`
        if (key !== cached.key) {
          let text = ""
          try {
            text = Fs.readFileSync(file, "utf8")
          } catch {
            return cached.walls
          }
          cached = { key, walls: parseWalls(text) }
        }
        return cached.walls
      }
      const activeAt = (nowMs: number) => {
        const walls = load()
        const out: Array<Wall> = []
        for (const engine of Engine.literals) {
          const up = wallFor(walls, engine, config.hostId, nowMs)
          if (up !== undefined) out.push({ ...up.wall, resets_at: new Date(up.resetsAtMs).toISOString() })
        }
        return out
      }
      const check = (engine: string, nowMs: number) =>
        Effect.sync(() => {
          const up = wallFor(load(), engine, config.hostId, nowMs)
          return up === undefined ? undefined : new UsageLimited({
            engine,
            host: config.hostId,
            resetsAt: new Date(up.resetsAtMs).toISOString(),
            retryAfterMs: Math.max(1, up.resetsAtMs - nowMs),
            reason: up.wall.reason
          })
        })
      return UsageWalls.of({
        check,
        refuseIfWalled: (engine, nowMs) =>
          Effect.flatMap(
            check(engine, nowMs),
            (refusal) => (refusal === undefined ? Effect.void : Effect.fail(refusal))
          ),
        record: (wall) =>
          Effect.try({
            try: () =>
              appendWall(file, JSON.stringify({ ...wall, host: config.hostId }) + "\n", () =>
                activeAt(Date.parse(wall.at))),
            catch: (e) =>
              e
          }).pipe(
            Effect.catch((e) =>
              Effect.logWarning(`could not record a usage limit in ${file}: ${String(e)}`)
            )
          ),
        active: (nowMs) => Effect.sync(() => activeAt(nowMs))
      })
    })
  )
}
