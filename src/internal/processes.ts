/**
 * The process table, read from /proc: whether a process group still has a running (non-zombie) member. A zombie has
 * ended; it lingers only until its parent reaps it, which an init that never reaps (as in some containers) never does,
 * so `kill(-pgid, 0)` alone would report a dead group alive.
 */
import * as Fs from "node:fs"
import * as Effect from "effect/Effect"

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
