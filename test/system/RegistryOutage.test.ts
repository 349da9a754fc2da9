/**
 * No rollback is forgotten: a spawn that fails, or is cancelled, while its registry cannot be written leaves its
 * reservation behind; once the registry answers again the slot is free within one reconcile interval, while the
 * server that owned the reservation keeps running (its owner process is alive, so only the server itself can tell
 * that the spawn is over: its background retries and its reconciler, which knows its spawns in flight).
 *
 * File registry: every registry write fails while an outage file exists (SPAWNKIT_FAULT
 * `registry-after-write:fail-while=<file>`), as on a full disk. PostgreSQL: a cluster of the test's own is stopped
 * and started again on the same port. A gated tmux holds the spawn at its session step, so the outage begins while
 * the spawn is in flight, without timing.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { gatedTmux, processAlive, testEnvs, waitFor } from "../support/Harness.js"
import { call, killServers, ok, startStdio, textOf } from "../support/Mcp.js"

const newEnv = testEnvs()
const PG_SCRIPT = NodePath.resolve(import.meta.dirname, "..", "..", "scripts", "pg-temp.sh")

afterEach(async () => {
  await killServers()
})

/** A PostgreSQL cluster of this test's own, which it may stop and start. */
const ownCluster = () => {
  const parent = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-outage-pg-"))
  Fs.chmodSync(parent, 0o711)
  const dir = NodePath.join(parent, "cluster")
  const start = (port?: string) => {
    const out = spawnSync("bash", [PG_SCRIPT, "start", dir, ...(port !== undefined ? [port] : [])], {
      encoding: "utf8"
    })
    if (out.status !== 0) throw new Error(`pg-temp start failed: ${out.stderr}`)
    return out.stdout.trim()
  }
  const url = start()
  const port = new URL(url).port
  return {
    url,
    stop: () => {
      const out = spawnSync("bash", [PG_SCRIPT, "stop", dir], { encoding: "utf8" })
      if (out.status !== 0) throw new Error(`pg-temp stop failed: ${out.stderr}`)
    },
    start: () => void start(port),
    destroy: () => {
      spawnSync("bash", [PG_SCRIPT, "destroy", dir], { stdio: "ignore" })
      Fs.rmSync(parent, { recursive: true, force: true })
    },
    psql: (sql: string) => spawnSync("psql", ["-X", "-q", "-A", "-t", "-d", url, "-c", sql], { encoding: "utf8" })
  }
}

const RECONCILE_INTERVAL = "1"

describe("a registry outage during a spawn", () => {
  it("file registry: a spawn whose commit cannot be written fails, and once writes work again its slot is free while the server runs on", async () => {
    const env = newEnv()
    const gate = gatedTmux(env.home)
    const outage = NodePath.join(env.home, "outage")
    const served = await startStdio(env, {
      SPAWNKIT_TMUX_BIN: gate.bin,
      SPAWNKIT_FAULT: `registry-after-write:fail-while=${outage}`,
      SPAWNKIT_RECONCILE_INTERVAL: RECONCILE_INTERVAL
    })
    const task = await ok(served.client, "create_real_task", { description: "outage", max_concurrent: 1 })
    const registry = NodePath.join(env.home, task.task_id, "AGENT_REGISTRY.json")
    const agents = () => JSON.parse(Fs.readFileSync(registry, "utf8")).agents as Array<{ id: string; status: string }>

    const first = call(served.client, "deploy_headless_agent", {
      task_id: task.task_id,
      agent_type: "w",
      prompt: "one"
    })
    await waitFor("the spawn reaches its session step", () => gate.arrivals() === 1)
    expect(agents().map((a) => a.status)).toEqual(["reserved"])
    // The registry stops taking writes; the spawn goes on, its commit fails, and so does its rollback.
    Fs.writeFileSync(outage, "")
    gate.open()
    const failed = await first
    expect(failed.isError).toBe(true)
    expect(textOf(failed)).toMatch(/^InjectedFault/)
    await waitFor("the rollback failed", () => served.stderr().includes("could not roll back reservation"))
    expect(agents().map((a) => a.status)).toEqual(["reserved"])
    const blocked = await call(served.client, "deploy_headless_agent", {
      task_id: task.task_id,
      agent_type: "w",
      prompt: "two"
    })
    expect(textOf(blocked)).toMatch(/^LimitReached/)

    // The outage ends: the slot is freed without the server exiting.
    Fs.rmSync(outage)
    await waitFor("the abandoned reservation is rolled back", () => agents().length === 0, 120_000)
    expect(processAlive(served.pid)).toBe(true)
    const second = await ok(served.client, "deploy_headless_agent", {
      task_id: task.task_id,
      agent_type: "w",
      prompt: "two"
    })
    expect(second.status).toBe("running")
    expect(agents().map((a) => a.status)).toEqual(["running"])
  })

  it("PostgreSQL: a spawn cancelled while the database is down leaves its reservation, and once the database is back its slot is free while the server runs on", async () => {
    const cluster = ownCluster()
    try {
      const env = newEnv()
      const gate = gatedTmux(env.home)
      const served = await startStdio(env, {
        SPAWNKIT_DATABASE_URL: cluster.url,
        SPAWNKIT_TMUX_BIN: gate.bin,
        SPAWNKIT_RECONCILE_INTERVAL: RECONCILE_INTERVAL
      })
      const task = await ok(served.client, "create_real_task", { description: "outage", max_concurrent: 1 })
      const statuses = () => {
        const out = cluster.psql(
          `SELECT coalesce(string_agg(a->>'status', ','), '') FROM spawnkit_tasks, json_array_elements(doc->'agents') a WHERE task_id = '${task.task_id}'`
        )
        if (out.status !== 0) throw new Error(out.stderr)
        return out.stdout.trim()
      }

      const cancel = new AbortController()
      const first = call(
        served.client,
        "deploy_headless_agent",
        { task_id: task.task_id, agent_type: "w", prompt: "one" },
        { signal: cancel.signal }
      ).catch((e: unknown) => e)
      await waitFor("the spawn reaches its session step", () => gate.arrivals() === 1)
      expect(statuses()).toBe("reserved")
      cluster.stop()
      cancel.abort()
      await first
      await waitFor("the rollback failed", () => served.stderr().includes("could not roll back reservation"), 120_000)
      expect(processAlive(served.pid)).toBe(true)

      cluster.start()
      await waitFor("the abandoned reservation is rolled back", () => statuses() === "", 120_000)
      expect(processAlive(served.pid)).toBe(true)
      gate.open()
      const second = await ok(served.client, "deploy_headless_agent", {
        task_id: task.task_id,
        agent_type: "w",
        prompt: "two"
      })
      expect(second.status).toBe("running")
      expect(statuses()).toBe("running")
    } finally {
      await killServers()
      cluster.destroy()
    }
  })
})
