/**
 * Child processes for tests: start a helper script under Node 24 (`process.execPath`), read its stdout line by line,
 * wait for a given line, and kill every child still alive at clean-up.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { performance } from "node:perf_hooks"

/** A running helper process. */
export interface Child {
  readonly proc: ChildProcessWithoutNullStreams
  readonly pid: number
  /** Every stdout line so far. */
  readonly lines: ReadonlyArray<string>
  /** Everything written to stderr so far. */
  readonly stderr: () => string
  /** Resolves with `performance.now()` at the moment `line` was read (at once if it was already read). */
  readonly waitForLine: (line: string, timeoutMs?: number) => Promise<number>
  /** Write one line to the child's stdin. */
  readonly send: (line: string) => void
  /** Resolves when the child has exited. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly hasExited: () => boolean
}

const live = new Set<Child>()

/** Path of a helper script in test/support. */
export const supportScript = (name: string) => NodePath.resolve(import.meta.dirname, name)

/** Start `node <script> ...args` with piped stdio. */
export const startChild = (script: string, args: ReadonlyArray<string>): Child => {
  const proc = spawn(process.execPath, [script, ...args], { stdio: ["pipe", "pipe", "pipe"] })
  if (proc.pid === undefined) throw new Error(`could not start ${script}`)
  const lines: Array<string> = []
  const listeners = new Set<() => void>()
  let stderr = ""
  let pending = ""
  let exited = false
  proc.stdout.setEncoding("utf8")
  proc.stdout.on("data", (chunk: string) => {
    pending += chunk
    const parts = pending.split("\n")
    pending = parts.pop() ?? ""
    lines.push(...parts)
    for (const listener of [...listeners]) listener()
  })
  proc.stderr.setEncoding("utf8")
  proc.stderr.on("data", (chunk: string) => {
    stderr += chunk
  })
  // A child that dies makes writes to its stdin fail with EPIPE; that must not crash the test run.
  proc.stdin.on("error", () => {})
  const exitedPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on("exit", (code, signal) => {
      exited = true
      for (const listener of [...listeners]) listener()
      resolve({ code, signal })
    })
  })
  const child: Child = {
    proc,
    pid: proc.pid,
    lines,
    stderr: () => stderr,
    waitForLine: (line, timeoutMs = 20_000) =>
      new Promise<number>((resolve, reject) => {
        const check = () => {
          if (lines.includes(line)) {
            done()
            resolve(performance.now())
          } else if (exited) {
            done()
            reject(
              new Error(
                `child ${proc.pid} exited before printing "${line}"; stdout ${JSON.stringify(lines)}; stderr: ${stderr}`
              )
            )
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(
            new Error(
              `child ${proc.pid} did not print "${line}" within ${timeoutMs} ms; stdout ${
                JSON.stringify(lines)
              }; stderr: ${stderr}`
            )
          )
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      }),
    send: (line) => {
      proc.stdin.write(line + "\n")
    },
    exited: exitedPromise,
    hasExited: () => exited
  }
  live.add(child)
  void exitedPromise.then(() => live.delete(child))
  return child
}

/** SIGKILL every child still alive and wait for them to exit. */
export const killAllChildren = async (): Promise<void> => {
  const children = [...live]
  for (const child of children) {
    if (!child.hasExited()) child.proc.kill("SIGKILL")
  }
  await Promise.all(children.map((c) => c.exited))
}
