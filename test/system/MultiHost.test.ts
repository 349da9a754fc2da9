/**
 * Several hosts, one PostgreSQL registry. Each "host" is its own home, tmux server (socket) and SPAWNKIT_HOST_ID;
 * its spawnkit processes are real OS processes. The global limit must hold across hosts, every session must live on
 * the host its record names, and a host that dies mid-spawn must lose its reservations to the others after its lease,
 * never before.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { type ChildProcess, spawn as spawnProcess, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  CLI,
  createDatabase,
  dropDatabase,
  killTmuxServer,
  liveSessions,
  makeTempDir,
  promptFiles,
  psql,
  SLEEPER,
  waitFor
} from "../support/Harness.js"

const WORKER = NodePath.resolve(import.meta.dirname, "..", "support", "spawn-worker.mjs")
const WORKER_TIMEOUT_MS = 90_000

interface Host {
  readonly id: string
  readonly home: string
  readonly socket: string
  /** The environment of this host's spawnkit processes. */
  readonly env: Record<string, string>
  /** spawnkit's layer as this host, in this process. */
  readonly layer: (overrides?: Partial<Spawnkit.SpawnkitSettings>) => ReturnType<typeof Spawnkit.layer>
}

const cleanups: Array<() => void> = []
const children = new Set<ChildProcess>()
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  children.clear()
  for (const cleanup of cleanups.splice(0).reverse()) cleanup()
})

/** A database shared by the hosts of one test. */
const sharedDatabase = () => {
  const db = createDatabase()
  cleanups.push(() => dropDatabase(db.name))
  return db
}

const makeHost = (id: string, databaseUrl: string, settings: Record<string, string> = {}): Host => {
  const dir = makeTempDir(`sk-${id}-`)
  const home = NodePath.join(dir, "home")
  Fs.mkdirSync(home)
  const socket = NodePath.join(dir, "tmux")
  cleanups.push(() => {
    killTmuxServer(socket)
    Fs.rmSync(dir, { recursive: true, force: true })
  })
  const env = {
    SPAWNKIT_HOME: home,
    SPAWNKIT_TMUX_SOCKET: socket,
    SPAWNKIT_AGENT_COMMAND: SLEEPER,
    SPAWNKIT_ENGINE: "custom",
    SPAWNKIT_DATABASE_URL: databaseUrl,
    SPAWNKIT_HOST_ID: id,
    SPAWNKIT_MAX_SPAWNS_PER_MINUTE: "100000",
    ...settings
  }
  return {
    id,
    home,
    socket,
    env,
    layer: (overrides = {}) =>
      Spawnkit.layer({
        home,
        tmuxSocket: { _tag: "Path", path: socket },
        agentCommand: Option.some(SLEEPER),
        defaultEngine: "custom",
        databaseUrl: Option.some(Redacted.make(databaseUrl)),
        hostId: id,
        ...(settings["SPAWNKIT_HOST_LEASE_SECONDS"] !== undefined
          ? { hostLeaseSeconds: Number(settings["SPAWNKIT_HOST_LEASE_SECONDS"]) }
          : {}),
        ...(settings["SPAWNKIT_GLOBAL_MAX_CONCURRENT"] !== undefined
          ? { globalMaxConcurrent: Number(settings["SPAWNKIT_GLOBAL_MAX_CONCURRENT"]) }
          : {}),
        ...overrides
      })
  }
}

const runAs = <A, E>(host: Host, effect: Effect.Effect<A, E, Spawnkit.Services>) =>
  Effect.runPromise(effect.pipe(Effect.provide(host.layer())))

/** Run the CLI as a host. */
const cliAs = (host: Host, args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, ...host.env, ...extraEnv } })

const tasksIn = (databaseUrl: string): Array<any> =>
  psql(databaseUrl, "SELECT doc FROM spawnkit_tasks ORDER BY task_id").split("\n").filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l))

interface Attempt {
  readonly taskId: string
  readonly agentType: string
  readonly prompt: string
}

/** One spawnkit process per host, each running its attempts at once; all released together by a go file. */
const raceHosts = async (shares: ReadonlyArray<{ host: Host; attempts: ReadonlyArray<Attempt> }>, goFile: string) => {
  const runs = shares.map(({ host, attempts }) => {
    const child = spawnProcess(process.execPath, [WORKER, JSON.stringify({ goFile, attempts })], {
      env: { ...process.env, ...host.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on("error", reject)
      child.on("close", resolve)
    })
    return { host, child, exited, out: () => stdout, err: () => stderr }
  })
  await waitFor("every host process is ready", () => runs.every((r) => r.out().includes(`"ready":true`)), 60_000)
  Fs.writeFileSync(goFile, "go\n")
  let timer: NodeJS.Timeout | undefined
  const codes = await Promise.race([
    Promise.all(runs.map((r) => r.exited)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("host processes did not finish in time")), WORKER_TIMEOUT_MS)
    })
  ]).finally(() => clearTimeout(timer))
  return runs.map((r, n) => {
    expect(codes[n], `${r.host.id}: ${r.err().slice(0, 2000)}`).toBe(0)
    const outcomes = r.out().split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
      .filter((o) => o.ready === undefined)
    return { host: r.host, outcomes }
  })
}

describe("several hosts sharing one PostgreSQL registry", () => {
  it(
    "global limit 20, 60 concurrent spawns from two hosts over two tasks -> exactly 20 agents, each on its own host",
    async () => {
      const db = sharedDatabase()
      const limits = { SPAWNKIT_GLOBAL_MAX_CONCURRENT: "20" }
      const hostA = makeHost("host-a", db.url, limits)
      const hostB = makeHost("host-b", db.url, limits)
      const generous = { max_concurrent: 1000, max_agents: 1000, max_spawns_per_minute: 100_000 }
      const taskIds = await runAs(
        hostA,
        Effect.all([
          Spawnkit.createTask({ description: "shared one", ...generous }),
          Spawnkit.createTask({ description: "shared two", ...generous })
        ]).pipe(Effect.map((tasks) => tasks.map((t) => t.task_id as string)))
      )
      const attemptsOf = (host: Host) =>
        Array.from({ length: 30 }, (_, k): Attempt => ({
          taskId: taskIds[k % 2]!,
          agentType: "racer",
          prompt: `${host.id} attempt ${k}`
        }))
      const goFile = NodePath.join(hostA.home, ".go")
      const t0 = Date.now()
      const results = await raceHosts(
        [{ host: hostA, attempts: attemptsOf(hostA) }, { host: hostB, attempts: attemptsOf(hostB) }],
        goFile
      )
      const ms = Date.now() - t0

      const all = results.flatMap((r) => r.outcomes)
      expect(all).toHaveLength(60)
      const ok = all.filter((o) => o.ok)
      expect(ok).toHaveLength(20)
      for (const o of all.filter((o) => !o.ok)) {
        expect(o).toMatchObject({ tag: "LimitReached", limit: "global_max_concurrent" })
      }

      // The registry: exactly the 20 successes, all running, each recording the host that spawned it.
      const agents = tasksIn(db.url).flatMap((t) => t.agents)
      expect(agents).toHaveLength(20)
      expect(agents.filter((a) => a.status !== "running")).toEqual([])
      expect(tasksIn(db.url).reduce((n, t) => n + t.active_count, 0)).toBe(20)
      expect(Number(psql(db.url, "SELECT sum(active_slots) FROM spawnkit_tasks").trim())).toBe(20)
      for (const { host, outcomes } of results) {
        const mine = outcomes.filter((o) => o.ok).map((o) => o.agent_id).sort()
        const recorded = agents.filter((a) => a.host === host.id)
        expect(recorded.map((a) => a.id).sort()).toEqual(mine)
        // Each session lives on its own host's tmux server, and nowhere else; so do its prompt files.
        expect(liveSessions(host.socket).sort()).toEqual(recorded.map((a) => a.tmux_session).sort())
        const prompts = taskIds.flatMap((t) => promptFiles(host.home, t)).sort()
        expect(prompts).toEqual(recorded.map((a) => `${a.id}.prompt`).sort())
      }
      const split = results.map((r) => `${r.host.id} ${r.outcomes.filter((o) => o.ok).length}`).join(", ")
      console.log(`two hosts, global limit 20, 60 spawns: 20 agents (${split}) in ${ms} ms`)

      // Each host's reconciler finds nothing to repair: the other host's agents are not its business.
      expect((await runAs(hostA, Spawnkit.reconcile())).repairs).toEqual([])
      expect((await runAs(hostB, Spawnkit.reconcile())).repairs).toEqual([])
      expect(liveSessions(hostA.socket).length + liveSessions(hostB.socket).length).toBe(20)
    },
    300_000
  )

  it(
    "a host SIGKILLed mid-spawn keeps its reservation until its lease expires; then another host takes the slot",
    async () => {
      const db = sharedDatabase()
      const LEASE = 6
      const settings = { SPAWNKIT_GLOBAL_MAX_CONCURRENT: "1", SPAWNKIT_HOST_LEASE_SECONDS: String(LEASE) }
      const hostA = makeHost("host-a", db.url, settings)
      const hostB = makeHost("host-b", db.url, settings)
      const taskId = await runAs(
        hostB,
        Spawnkit.createTask({ description: "lease" }).pipe(Effect.map((t) => t.task_id))
      )

      // Host A's only spawnkit process dies right after creating the session: its reservation holds the one slot.
      const killed = cliAs(hostA, ["spawn", "--task", taskId, "--type", "doomed", "--prompt", "p", "--json"], {
        SPAWNKIT_FAULT: "after-session:kill"
      })
      expect(killed.signal).toBe("SIGKILL")
      const lastSeen = Date.parse(
        psql(db.url, "SELECT to_json(last_seen) FROM spawnkit_hosts WHERE host_id = 'host-a'").trim().replace(/"/g, "")
      )
      const [reserved] = tasksIn(db.url)[0].agents
      expect(reserved).toMatchObject({ status: "reserved", host: "host-a", reservation: { owner_host: "host-a" } })
      expect(liveSessions(hostA.socket)).toEqual([reserved.tmux_session])

      // Within the lease: host B is refused, and its reconciler leaves host A's reservation alone.
      const refused = await runAs(hostB, Spawnkit.spawn({ taskId, agentType: "b", prompt: "mine" }).pipe(Effect.flip))
      expect(refused).toMatchObject({ _tag: "LimitReached", limit: "global_max_concurrent" })
      const early = await runAs(hostB, Spawnkit.reconcile())
      expect(Date.now() - lastSeen, "the early pass ran within host A's lease").toBeLessThan(LEASE * 1000)
      expect(early.repairs).toEqual([])
      expect(tasksIn(db.url)[0].agents).toHaveLength(1)

      // After the lease: host B's reconciler releases the reservation (the record only; the session is host A's).
      await waitFor("host A's lease has expired", () => Date.now() - lastSeen > LEASE * 1000 + 500, (LEASE + 5) * 1000)
      const late = await runAs(hostB, Spawnkit.reconcile())
      expect(late.repairs).toMatchObject([
        { kind: "rolled_back_reservation", agent_id: reserved.id, reason: expect.stringContaining("lease expired") }
      ])
      expect(tasksIn(db.url)[0].agents).toEqual([])
      expect(liveSessions(hostA.socket)).toEqual([reserved.tmux_session])

      // The slot is host B's now.
      const b = await runAs(hostB, Spawnkit.spawn({ taskId, agentType: "b", prompt: "mine" }))
      expect(b).toMatchObject({ status: "running", existing: false })
      const [agent] = tasksIn(db.url)[0].agents
      expect(agent).toMatchObject({ id: b.agent_id, status: "running", host: "host-b" })
      expect(liveSessions(hostB.socket)).toEqual([b.tmux_session])

      // Host A comes back: its reconciler removes what its dead spawn left on it, and leaves host B's agent alone.
      const back = await runAs(hostA, Spawnkit.reconcile())
      expect(back.repairs.map((r) => r.kind).sort()).toEqual(["killed_orphan_session", "removed_orphan_file"])
      expect(liveSessions(hostA.socket)).toEqual([])
      expect(promptFiles(hostA.home, taskId)).toEqual([])
      expect(tasksIn(db.url)[0].agents).toEqual([agent])
      expect(liveSessions(hostB.socket)).toEqual([b.tmux_session])
    },
    300_000
  )
})
