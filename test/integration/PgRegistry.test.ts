/**
 * The PostgreSQL registry on its own, against a real server: schema migration, transactions that roll back, corrupt
 * rows left alone, the pool's size, errors that never show a password, and selection by SPAWNKIT_DATABASE_URL.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { spawn as spawnProcess, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  CLI,
  createDatabase,
  dropDatabase,
  makeTestEnv,
  psql,
  stdoutJson,
  type TestEnv,
  waitFor
} from "../support/Harness.js"

const envs: Array<TestEnv> = []
const databases: Array<string> = []
afterEach(() => {
  for (const env of envs.splice(0)) env.cleanup()
  for (const name of databases.splice(0)) dropDatabase(name)
})
const newEnv = () => {
  const env = makeTestEnv(undefined, "postgresql")
  envs.push(env)
  return env
}
const run = <A, E>(env: TestEnv, effect: Effect.Effect<A, E, Spawnkit.Services>, overrides = {}) =>
  Effect.runPromise(effect.pipe(Effect.provide(env.layer(overrides))))
const runExit = <A, E>(env: TestEnv, effect: Effect.Effect<A, E, Spawnkit.Services>, overrides = {}) =>
  Effect.runPromise(effect.pipe(Effect.provide(env.layer(overrides)), Effect.result))

/** Start the CLI asynchronously with an environment. */
const startCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  spawnProcess(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: "ignore" })

const newTask = (env: TestEnv) =>
  run(env, Spawnkit.createTask({ description: "pg" }).pipe(Effect.map((t) => t.task_id as Spawnkit.TaskId)))

describe("PgRegistry", () => {
  it("creates its schema once, even when many processes start on an empty database at the same time", async () => {
    const db = createDatabase()
    databases.push(db.name)
    const env = makeTestEnv(undefined, "file")
    envs.push(env)
    // Eight CLI processes, each migrating on start, racing on a database without tables.
    const children = Array.from({ length: 8 }, () =>
      new Promise<number | null>((resolve) => {
        const child = startCli(["task", "create", "--description", "m", "--json"], {
          ...env.env,
          SPAWNKIT_DATABASE_URL: db.url
        })
        child.on("close", resolve)
      }))
    expect(await Promise.all(children)).toEqual(Array(8).fill(0))
    // Each migration ran exactly once, in order.
    expect(psql(db.url, "SELECT version FROM spawnkit_schema ORDER BY version").trim().split("\n")).toEqual(
      Array.from({ length: Spawnkit.SCHEMA_VERSION }, (_, i) => String(i + 1))
    )
    expect(Number(psql(db.url, "SELECT count(*) FROM spawnkit_tasks").trim())).toBe(8)
    expect(psql(db.url, "SELECT id FROM spawnkit_admission").trim()).toBe("1")
  })

  it("refuses a database whose schema is newer than it knows", async () => {
    const env = newEnv()
    await newTask(env)
    psql(env.databaseUrl!, `INSERT INTO spawnkit_schema (version) VALUES (${Spawnkit.SCHEMA_VERSION + 1})`)
    const result = await runExit(env, Spawnkit.listTasks())
    expect(result).toMatchObject({
      _tag: "Failure",
      failure: { _tag: "RegistryDatabaseError", operation: "use the schema" }
    })
  })

  it("a failing transaction writes nothing and releases its locks", async () => {
    const env = newEnv()
    const taskId = await newTask(env)
    const before = env.readTask(taskId)
    const failed = await runExit(
      env,
      Spawnkit.Registry.use((registry) =>
        registry.update(taskId, (tx) =>
          Effect.gen(function*() {
            yield* tx.globalActive
            return yield* Effect.fail(new Spawnkit.InvalidInput({ field: "test", reason: "refused on purpose" }))
          }))
      )
    )
    expect(failed).toMatchObject({ _tag: "Failure", failure: { _tag: "InvalidInput" } })
    expect(env.readTask(taskId)).toEqual(before)
    // Nothing is left holding the task row or the admission row: a spawn goes through at once.
    const spawned = await run(env, Spawnkit.spawn({ taskId, agentType: "w", prompt: "p" }))
    expect(spawned.status).toBe("running")
    expect(Number(psql(env.databaseUrl!, `SELECT active_slots FROM spawnkit_tasks WHERE task_id = '${taskId}'`))).toBe(
      1
    )
  })

  it("reports a row that does not decode as RegistryCorrupt and never overwrites it", async () => {
    const env = newEnv()
    const taskId = await newTask(env)
    psql(
      env.databaseUrl!,
      `UPDATE spawnkit_tasks SET doc = '{"task_id": "${taskId}", "agents": 7}' WHERE task_id = '${taskId}'`
    )
    const read = () => psql(env.databaseUrl!, `SELECT doc FROM spawnkit_tasks WHERE task_id = '${taskId}'`).trim()
    const before = read()
    const spawn = await runExit(env, Spawnkit.spawn({ taskId, agentType: "w", prompt: "p" }))
    expect(spawn).toMatchObject({ _tag: "Failure", failure: { _tag: "RegistryCorrupt" } })
    expect((spawn as any).failure.path).toContain(`spawnkit_tasks ${taskId}`)
    expect(read()).toBe(before)
  })

  it("counts global slots across every task, under the admission lock", async () => {
    const env = newEnv()
    const [a, b] = [await newTask(env), await newTask(env)]
    await run(env, Spawnkit.spawn({ taskId: a, agentType: "w", prompt: "one" }))
    await run(env, Spawnkit.spawn({ taskId: b, agentType: "w", prompt: "two" }))
    const full = await runExit(env, Spawnkit.spawn({ taskId: a, agentType: "w", prompt: "three" }), {
      globalMaxConcurrent: 2
    })
    expect(full).toMatchObject({ _tag: "Failure", failure: { _tag: "LimitReached", limit: "global_max_concurrent" } })
    const global = await run(
      env,
      Spawnkit.Registry.use((registry) =>
        registry.update(b, (tx) => Effect.map(tx.globalActive, (n) => ({ result: n })))
      )
    )
    expect(global).toBe(2)
  })

  it("never opens more connections than SPAWNKIT_DATABASE_POOL_SIZE", async () => {
    const env = newEnv()
    const taskId = await newTask(env)
    const connections = () =>
      Number(
        psql(
          env.databaseUrl!,
          // This test's database only: other test files run their own pools against the same server meanwhile.
          "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'spawnkit %' AND datname = current_database()"
        ).trim()
      )
    // The pool that created the task has been closed; its server processes leave pg_stat_activity a moment later.
    await waitFor("the previous pool's connections are gone", () => connections() === 0, 10_000)
    let most = 0
    const sampler = setInterval(() => {
      most = Math.max(most, connections())
    }, 10)
    const results = await run(
      env,
      Spawnkit.Registry.use((registry) =>
        Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          () => registry.update(taskId, (tx) => Effect.as(Effect.sleep("5 millis"), { result: tx.task.agents.length })),
          { concurrency: "unbounded" }
        )
      ),
      { databasePoolSize: 2 }
    ).finally(() => clearInterval(sampler))
    expect(results).toHaveLength(40)
    expect(most).toBeGreaterThanOrEqual(1)
    expect(most).toBeLessThanOrEqual(2)
  })

  it("an unreachable server is a typed error whose message shows no password", async () => {
    const env = newEnv()
    const result = await runExit(env, Spawnkit.listTasks(), {
      databaseUrl: Option.some(Redacted.make("postgresql://spawnkit:s3cret-pw@127.0.0.1:1/nowhere"))
    })
    expect(result).toMatchObject({ _tag: "Failure", failure: { _tag: "RegistryDatabaseError", operation: "connect" } })
    const message = (result as any).failure.message as string
    expect(message).toContain("127.0.0.1:1/nowhere")
    expect(message).not.toContain("s3cret-pw")
  })

  it("SPAWNKIT_DATABASE_URL selects it: the CLI keeps tasks in the database and writes no registry file", () => {
    const env = newEnv()
    const out = spawnSync(process.execPath, [CLI, "task", "create", "--description", "via env", "--json"], {
      encoding: "utf8",
      env: { ...process.env, ...env.env }
    })
    expect(out.status, out.stderr).toBe(0)
    const { task_id } = stdoutJson(out)
    expect(env.readTask(task_id)).toMatchObject({ task_id, task_description: "via env", agents: [] })
    expect(Fs.existsSync(NodePath.join(env.home, task_id, "AGENT_REGISTRY.json"))).toBe(false)
  })
})
