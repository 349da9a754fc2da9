/**
 * Processes of this host, in one place: whether a process exists, whether a process group still has a running
 * (non-zombie) member (read from /proc), signalling a group, and stopping one (SIGTERM, a grace period, SIGKILL).
 *
 * A zombie has ended; it lingers only until its parent reaps it, which an init that never reaps (as in some
 * containers) never does, so `kill(-pgid, 0)` alone would report a dead group alive.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Fs from "node:fs"

/** How often a stopping group is checked for survivors during its grace period. */
const STOP_POLL = "50 millis"

const stateAndGroup = (pid: string): { readonly state: string; readonly pgrp: number } | undefined => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const state = fields[0]
  const pgrp = Number(fields[2])
  return state === undefined ? undefined : { state, pgrp }
}

/** Whether a process exists (EPERM: it exists but is someone else's). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Whether any non-zombie process of group `pgid` exists. */
export const groupHasLiveMember = (pgid: number) =>
  Effect.sync(() => {
    if (!Fs.existsSync("/proc/self/stat")) {
      try {
        process.kill(-pgid, 0)
        return true
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM"
      }
    }
    for (const entry of Fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const info = stateAndGroup(entry)
        if (info !== undefined && info.pgrp === pgid && info.state !== "Z") return true
      } catch {
        // The process ended while the table was read.
      }
    }
    return false
  })

/**
 * The running (non-zombie) processes of these groups: among `candidates` only (one /proc read each), or in the whole
 * process table. Linux only (/proc).
 */
export const liveMembers = (
  groups: ReadonlySet<number>,
  candidates?: ReadonlyArray<number>
): ReadonlyArray<number> =>
  (candidates ?? Fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number)).filter((pid) => {
    try {
      const info = stateAndGroup(String(pid))
      return info !== undefined && info.state !== "Z" && groups.has(info.pgrp)
    } catch {
      // The process ended while it was read.
      return false
    }
  })

/** Signal a process group; a group that is already gone (ESRCH) is what the caller wanted. */
export const signalGroup = (pgid: number, signal: NodeJS.Signals) =>
  // Security: -0 and -1 would signal our own group or every process we may signal.
  pgid <= 1
    ? Effect.die(new Error(`refusing to signal process group ${pgid}`))
    : Effect.try({ try: () => process.kill(-pgid, signal), catch: (e) => e as NodeJS.ErrnoException }).pipe(
      Effect.catchIf((e) => e.code === "ESRCH", () => Effect.succeed(true)),
      Effect.orDie,
      Effect.asVoid
    )

/**
 * Stop a whole process group: SIGTERM, then up to `graceMs` for every member to go, then SIGKILL to whatever is
 * left.
 */
export const stopGroup = (pgid: number, graceMs: number) =>
  Effect.gen(function*() {
    yield* signalGroup(pgid, "SIGTERM")
    const gone = yield* groupHasLiveMember(pgid).pipe(
      Effect.repeat({ schedule: Schedule.spaced(STOP_POLL), while: (alive) => alive }),
      Effect.timeoutOption(Duration.millis(graceMs))
    )
    if (Option.isNone(gone)) yield* signalGroup(pgid, "SIGKILL")
  })
