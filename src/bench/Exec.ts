/**
 * One command run to its end through effect/process: its stdout, stderr and exit code, read together (a full pipe
 * would otherwise stall the child). The child is killed if the run is interrupted.
 */
import * as Effect from "effect/Effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Stream from "effect/Stream"

/** What a finished command printed and how it ended. */
export interface CommandOutcome {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

/** Run `command args` to its end. A non-zero exit is an outcome, not a failure: the caller says what it means. */
export const runCommand = Effect.fn("Bench.runCommand")(function*(
  command: string,
  args: ReadonlyArray<string>,
  options: ChildProcess.CommandOptions = {}
) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  return yield* Effect.scoped(Effect.gen(function*() {
    const handle = yield* spawner.spawn(ChildProcess.make(command, [...args], { stdin: "ignore", ...options }))
    const [stdout, stderr, exitCode] = yield* Effect.all([
      handle.stdout.pipe(Stream.decodeText(), Stream.mkString),
      handle.stderr.pipe(Stream.decodeText(), Stream.mkString),
      handle.exitCode
    ], { concurrency: "unbounded" })
    return { stdout, stderr, exitCode: Number(exitCode) } satisfies CommandOutcome
  }))
})
