/**
 * PostgreSQL for the benchmark's `-pg` scenarios: the server (a given URL, or a throwaway loopback cluster started
 * with scripts/pg-temp.sh), and a new database per scenario on it. Both are acquired in the caller's scope: the
 * database is dropped (its connections ended) and the cluster destroyed when the scope closes, however it closes.
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Path from "effect/Path"
import * as Random from "effect/Random"
import pg from "pg"
import { packageRoot } from "../host/PackagePaths.js"
import type { ScenarioDatabase } from "./Environment.js"
import { runCommand } from "./Exec.js"
import { BenchFailed, benchFailed } from "./Scenario.js"

/** The server of the `-pg` scenarios, or why there is none. */
export type PostgresServer =
  | { readonly _tag: "Server"; readonly url: string }
  | { readonly _tag: "Skipped"; readonly note: string }

const script = `${packageRoot}/scripts/pg-temp.sh`

/** Run `pg-temp.sh <args>`; a non-zero exit fails with its stderr. */
const pgTemp = (...args: ReadonlyArray<string>) =>
  runCommand("bash", [script, ...args]).pipe(
    Effect.mapError(benchFailed(`pg-temp.sh ${args[0]}`)),
    Effect.flatMap((r) =>
      r.exitCode === 0
        ? Effect.succeed(r.stdout.trim())
        : Effect.fail(
          new BenchFailed({ reason: `pg-temp.sh ${args[0]} exited with ${r.exitCode}: ${r.stderr.trim()}` })
        )
    )
  )

/** A throwaway cluster in a new temporary directory, destroyed (and the directory removed) with the scope. */
const throwawayCluster = Effect.fn("Bench.throwawayCluster")(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // The cluster's directory is made by the script (owned by the `postgres` user when we are root); its parent only
  // needs to be traversable.
  const parent = yield* fs.makeTempDirectoryScoped({ prefix: "spawnkit-bench-pg-" }).pipe(
    Effect.tap((dir) => fs.chmod(dir, 0o711)),
    Effect.mapError(benchFailed("making the PostgreSQL cluster's directory"))
  )
  const dir = path.join(parent, "cluster")
  return yield* Effect.acquireRelease(
    // A start that fails half-way may have left a running server behind: destroy it before reporting the failure.
    pgTemp("start", dir).pipe(Effect.tapError(() => destroyCluster(dir))),
    () => destroyCluster(dir)
  )
})

const destroyCluster = (dir: string) =>
  pgTemp("destroy", dir).pipe(
    Effect.catch((e) => Effect.logWarning(`could not destroy the cluster in ${dir}: ${e.reason}`))
  )

/** The PostgreSQL server `setting` asks for: `off`, `auto` (a throwaway cluster when PostgreSQL is installed) or a URL. */
export const postgresServer = Effect.fn("Bench.postgresServer")(function*(setting: string) {
  if (setting === "off") return { _tag: "Skipped", note: "PostgreSQL scenarios off (--postgres off)" } as PostgresServer
  if (setting !== "auto") return { _tag: "Server", url: setting } as PostgresServer
  const installed = yield* runCommand("bash", [script, "bindir"]).pipe(
    Effect.mapError(benchFailed("pg-temp.sh bindir"))
  )
  if (installed.exitCode !== 0) {
    return {
      _tag: "Skipped",
      note: "PostgreSQL scenarios skipped: no PostgreSQL installed (apt-get install postgresql, or --postgres <url>)"
    } as PostgresServer
  }
  return { _tag: "Server", url: yield* throwawayCluster() } as PostgresServer
})

/** A connection to `url`, closed with the scope (a failed close is logged: the run's figures stand). */
export const pgClient = (url: string, what: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new pg.Client({ connectionString: url })
        await client.connect()
        return client
      },
      catch: benchFailed(`connecting to PostgreSQL for ${what}`)
    }),
    (client) =>
      Effect.tryPromise(() => client.end()).pipe(
        Effect.catch((e) => Effect.logWarning(`closing a PostgreSQL connection failed: ${String(e)}`))
      )
  )

/** Run one statement on the server, on a connection of its own. */
const adminQuery = (url: string, sql: string) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* pgClient(url, sql)
    yield* Effect.tryPromise({ try: () => client.query(sql), catch: benchFailed(sql) })
  }))

/** A new, empty database on the server, dropped (its connections ended) when the scope closes. */
export const scenarioDatabase = Effect.fn("Bench.scenarioDatabase")(function*(serverUrl: string) {
  const suffix = (yield* Random.nextIntBetween(0, 2 ** 31)).toString(16)
  const name = `spawnkit_bench_${process.pid}_${suffix}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  yield* Effect.acquireRelease(
    adminQuery(serverUrl, `CREATE DATABASE ${name}`),
    () =>
      adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(
        Effect.catch((e) => Effect.logWarning(`could not drop database ${name}: ${e.reason}`))
      )
  )
  return { name, url: url.toString() } satisfies ScenarioDatabase
})
