// Child process for test/integration/FileLock.test.ts: takes spawnkit's FileLock (compiled, from dist/) in one of three modes.
//
//   hold <lock>      take the lock, print "locked", hold it until a "release" line on stdin (then unlock, print
//                    "released" and exit) or until killed. Exits when stdin closes, so it never outlives its parent.
//   acquire <lock>   print "waiting", take the lock, print "acquired", release it and exit.
//   stress <lock> <log> <counter> <fibers> <iterations>
//                    print "ready", wait for a "go" line on stdin, then run <fibers> concurrent fibers, each doing
//                    <iterations> critical sections under the lock (see below), print "done" and exit.
//
// A critical section appends "enter <pid> <fiber>-<i>" to <log> (O_APPEND, one write each), yields to the event
// loop, reads <counter>, yields again, writes counter + 1, and appends "exit <pid> <fiber>-<i>". Overlapping sections
// show up in the log as an enter not followed by its own exit, and as lost counter updates.
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Readline from "node:readline"
import * as FileLock from "../../dist/host/FileLock.js"

const [mode, lockPath, ...rest] = process.argv.slice(2)

const stdinLines = Readline.createInterface({ input: process.stdin })
const lineWaiters = []
stdinLines.on("line", (line) => {
  for (const waiter of lineWaiters.splice(0)) waiter(line.trim())
})
stdinLines.on("close", () => process.exit(0))
const nextLine = (expected) =>
  new Promise((resolve) => {
    const wait = () =>
      lineWaiters.push((line) => {
        if (line === expected) resolve()
        else wait()
      })
    wait()
  })

const say = (line) => Effect.sync(() => process.stdout.write(line + "\n"))
const tick = () => new Promise((resolve) => setImmediate(resolve))

const hold = (lock) =>
  lock.withLock(
    say("locked").pipe(Effect.andThen(Effect.promise(() => nextLine("release"))))
  ).pipe(Effect.andThen(say("released")))

const acquire = (lock) => say("waiting").pipe(Effect.andThen(lock.withLock(say("acquired"))))

const stress = (lock, [logPath, counterPath, fibers, iterations]) => {
  const logFd = Fs.openSync(logPath, "a")
  const section = (fiber, i) =>
    Effect.promise(async () => {
      const id = `${process.pid} ${fiber}-${i}`
      Fs.writeSync(logFd, `enter ${id}\n`)
      await tick()
      const n = Number(Fs.readFileSync(counterPath, "utf8"))
      await tick()
      Fs.writeFileSync(counterPath, String(n + 1))
      Fs.writeSync(logFd, `exit ${id}\n`)
    })
  const range = (n) => Array.from({ length: Number(n) }, (_, i) => i)
  return say("ready").pipe(
    Effect.andThen(Effect.promise(() => nextLine("go"))),
    Effect.andThen(
      Effect.forEach(
        range(fibers),
        (fiber) => Effect.forEach(range(iterations), (i) => lock.withLock(section(fiber, i)), { discard: true }),
        { concurrency: "unbounded", discard: true }
      )
    ),
    Effect.andThen(say("done"))
  )
}

const program = Effect.scoped(
  Effect.gen(function*() {
    const lock = yield* FileLock.make(lockPath)
    switch (mode) {
      case "hold":
        return yield* hold(lock)
      case "acquire":
        return yield* acquire(lock)
      case "stress":
        return yield* stress(lock, rest)
      default:
        return yield* Effect.die(new Error(`unknown mode ${mode}`))
    }
  })
)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`lock-child ${mode} failed: ${error?.stack ?? error}\n`)
    process.exit(1)
  }
)
