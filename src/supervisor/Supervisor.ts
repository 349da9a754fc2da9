/**
 * The supervisor of a home: it notices agent exits as they happen, without a process per exit, and runs the reconcile
 * pass on its interval. It runs inside every long-lived spawnkit process that owns the host's agents (the stdio MCP
 * server of an orchestrator, `serve --http`) and as `spawnkit supervise`.
 *
 * - It watches `<home>/.spawnkit-exits/` (inotify through fs.watch); every exit file that appears there, and every one
 *   already there when the watch starts, is handled by ExitFiles.handleExitFile: confirmed with tmux, recorded through
 *   the idempotent `recordExit`, then removed.
 * - While it runs it keeps a marker `.supervisor.<token>.<pid>` in that directory; an agent runner that sees a marker
 *   of a live process tells tmux's pane-died hook (the fallback) to start nothing for that exit.
 * - When the watch fails (the directory is removed, inotify breaks), it is started again after a delay that doubles
 *   from 100 ms up to 30 s, and a full reconcile pass runs: whatever happened while nobody watched is repaired.
 *
 * - It meters its agents' logs as they grow (src/metering/MeterLoop.ts) and stops a tree whose budget is spent.
 *
 * Invariants: several supervisors on one home never fight (each records through `recordExit`, which changes only a
 * live record, so an exit is recorded once; a file another supervisor already removed is fine); one bad exit file
 * never stops supervision; the supervisor itself never fails: it runs until interrupted, and its scope removes its
 * marker and closes its watch.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ExitWatchFailed } from "../domain/Errors.js"
import { exitsDir } from "../host/Workspace.js"
import { defaultPrices, type PriceTable } from "../metering/Prices.js"
import type { Services } from "../Spawnkit.js"
import { SpawnkitConfig } from "../SpawnkitConfig.js"
import { exitFileNames, handleExitFile, SUPERVISOR_RETRY, supervisorMarkerName } from "./ExitFiles.js"
import { meterForever } from "./MeterLoop.js"
import { reconcile, type ReconcileReport } from "./Reconciler.js"

/** Seconds between reconcile passes of a supervisor (SPAWNKIT_RECONCILE_INTERVAL, default 30; 0: no periodic pass). */
export const reconcileInterval = Config.schema(
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  "SPAWNKIT_RECONCILE_INTERVAL"
).pipe(Config.withDefault(30))

/** How a supervisor runs. */
export interface SupervisorOptions {
  /** Time between reconcile passes; zero: none but the ones at start and after a restart of the watch. */
  readonly reconcileEvery: Duration.Duration
  /** First delay before the watch is started again after it failed; it doubles on each failure in a row. */
  readonly restartBase?: Duration.Duration
  /** Longest delay before the watch is started again. */
  readonly restartCap?: Duration.Duration
  /** Told what each reconcile pass did (after it is logged), e.g. to tell an MCP server's clients. */
  readonly onPass?: (pass: Exit.Exit<ReconcileReport, unknown>) => Effect.Effect<void>
  /** The prices metering estimates costs with (default: the built-in table; see MeterLoop.loadPrices). */
  readonly prices?: PriceTable
}

/** Exit files handled at once (each is a few tmux calls and one registry transaction). */
const CONCURRENT_EXITS = 8

/** What a reconcile pass did, on the log: repairs, failed repairs, unreadable tasks, or why the pass failed. */
const logPass = (pass: Exit.Exit<ReconcileReport, unknown>) =>
  Exit.isFailure(pass)
    ? Effect.logWarning(`reconcile pass failed: ${Cause.pretty(pass.cause)}`)
    : Effect.all([
      Effect.forEach(pass.value.repairs, (r) => Effect.logInfo(`reconcile: ${r.kind} ${r.target}: ${r.reason}`)),
      Effect.forEach(
        pass.value.failed,
        (r) => Effect.logWarning(`reconcile: ${r.kind} ${r.target} failed: ${r.error}`)
      ),
      Effect.forEach(pass.value.unreadable, (u) =>
        Effect.logWarning(
          `reconcile: task ${u.task_id} cannot be read (${u.reason}); left untouched. ` +
            `Repair it, or set it aside: spawnkit task quarantine --task ${u.task_id}`
        ))
    ])

/** One reconcile pass, logged and told `onPass`; a pass that fails is logged, never fails the supervisor. */
export const reconcileLogged = (onPass: SupervisorOptions["onPass"] = () => Effect.void) =>
  reconcile().pipe(
    Effect.exit,
    Effect.tap(logPass),
    Effect.flatMap(onPass)
  )

/** The exits directory exists (created if needed), and this supervisor's marker is in it for the scope's life. */
const markPresence = (dir: string, token: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
        const marker = NodePath.join(dir, supervisorMarkerName(token, process.pid))
        Fs.writeFileSync(marker, "")
        return marker
      },
      catch: (e) => new ExitWatchFailed({ directory: dir, reason: `cannot prepare it: ${String(e)}` })
    }),
    (marker) => Effect.sync(() => Fs.rmSync(marker, { force: true }))
  )

/** fs.watch of the directory for the scope's life: file names on the queue, which fails when the watch does. */
const watchDirectory = (dir: string) =>
  Effect.gen(function*() {
    const names = yield* Queue.unbounded<string | null, ExitWatchFailed>()
    const fail = (reason: string) =>
      Queue.failCauseUnsafe(names, Cause.fail(new ExitWatchFailed({ directory: dir, reason })))
    yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          Fs.watch(dir, { persistent: false })
            .on("change", (_event, name) => {
              // The directory itself renamed or removed shows as an event naming it; so can any loss of the watch.
              if (!Fs.existsSync(dir)) fail("the directory is gone")
              else Queue.offerUnsafe(names, typeof name === "string" ? name : null)
            })
            .on("error", (e) => fail(e.message)),
        catch: (e) => new ExitWatchFailed({ directory: dir, reason: `cannot watch it: ${String(e)}` })
      }),
      (watcher) => Effect.sync(() => watcher.close())
    )
    return names
  })

/**
 * One life of the watch: mark presence, watch, handle the files already there, then each file as it appears, until
 * the watch fails. Each file is handled in its own fiber (in the given scope), at most once at a time.
 */
const watchOnce = <R>(
  home: string,
  token: string,
  handle: (name: string) => Effect.Effect<void, never, R>
): Effect.Effect<never, ExitWatchFailed, Exclude<R, Scope.Scope>> =>
  Effect.scoped(Effect.gen(function*() {
    const dir = exitsDir(home)
    yield* markPresence(dir, token)
    const names = yield* watchDirectory(dir)
    yield* Effect.forEach(yield* exitFileNames(home), handle, { discard: true })
    for (;;) {
      const name = yield* Queue.take(names)
      if (name !== null) yield* handle(name)
      else yield* Effect.forEach(yield* exitFileNames(home), handle, { discard: true })
    }
  }))

/**
 * Run the supervisor of the configured home until interrupted: a reconcile pass at start and on its interval, the
 * watch of the exits directory, restarted (with a full reconcile) whenever it fails. Never fails.
 */
export const supervise = (options: SupervisorOptions): Effect.Effect<never, never, Services> =>
  Effect.scoped(Effect.gen(function*() {
    const config = yield* SpawnkitConfig
    const token = randomBytes(4).toString("hex")
    const permits = yield* Semaphore.make(CONCURRENT_EXITS)
    const inProgress = new Set<string>()
    const scope = yield* Effect.scope
    const handle = (name: string) =>
      inProgress.has(name) ? Effect.void : Effect.sync(() => inProgress.add(name)).pipe(
        Effect.andThen(permits.withPermits(1)(handleExitFile(config.home, name, SUPERVISOR_RETRY))),
        Effect.ensuring(Effect.sync(() => inProgress.delete(name))),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    yield* reconcileLogged(options.onPass)
    yield* Effect.forkScoped(meterForever(options.prices ?? defaultPrices))
    if (Duration.isGreaterThan(options.reconcileEvery, Duration.zero)) {
      yield* reconcileLogged(options.onPass).pipe(
        Effect.delay(options.reconcileEvery),
        Effect.repeat(Schedule.spaced(options.reconcileEvery)),
        Effect.forkScoped
      )
    }
    return yield* restartingWatch(options, () => watchOnce(config.home, token, handle))
  }))

/** Run the watch forever: after each failure, wait (doubling from the base up to the cap), reconcile, start again. */
const restartingWatch = <R>(
  options: SupervisorOptions,
  watch: () => Effect.Effect<never, ExitWatchFailed, R>
): Effect.Effect<never, never, R | Services> =>
  Effect.gen(function*() {
    const base = Duration.toMillis(options.restartBase ?? Duration.millis(100))
    const cap = Duration.toMillis(options.restartCap ?? Duration.seconds(30))
    let failures = 0
    for (;;) {
      const started = yield* Clock.currentTimeMillis
      const exit = yield* Effect.exit(watch())
      const reason = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "it ended"
      // A watch that lived longer than the longest delay failed on its own: the delays start over.
      if ((yield* Clock.currentTimeMillis) - started > cap) failures = 0
      const delay = Math.min(cap, base * 2 ** Math.min(failures, 30))
      failures++
      yield* Effect.logWarning(`supervisor: ${reason}; restarting the watch in ${delay} ms, then reconciling`)
      yield* Effect.sleep(Duration.millis(delay))
      yield* reconcileLogged(options.onPass)
    }
  })
