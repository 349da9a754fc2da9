/**
 * Multi-process races: real OS processes (test/support/spawn-worker.mjs, on the compiled dist/) spawning real tmux
 * sessions on the test's private socket, all released together by a start barrier. After each race the registry file,
 * the tmux server and the workspace must agree exactly: no overshoot, no twin, no leftover reservation, no orphan.
 * While the workers run, the registry file is sampled and its invariants checked on every snapshot.
 *
 * Every scenario runs against both registries: the file registry (its file sampled mid-race) and the PostgreSQL
 * registry (its row sampled mid-race), the workers finding the database through SPAWNKIT_DATABASE_URL.
 *
 * Needs `npm run build` first. SPAWNKIT_STRESS_ROUNDS sets the rounds of the stress test (default 2).
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn as spawnProcess, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  type Backend,
  BACKENDS,
  liveSessions,
  makeTestEnv,
  processAlive,
  promptFiles,
  runIn,
  type TestEnv,
  waitFor
} from "../support/Harness.js"

const WORKER = NodePath.resolve(import.meta.dirname, "..", "support", "spawn-worker.mjs")
const DIST_INDEX = NodePath.resolve(import.meta.dirname, "..", "..", "dist", "index.js")
/** At most this many worker processes at once (two cores). */
const WORKERS = 8
const WORKER_TIMEOUT_MS = 90_000
const STRESS_ROUNDS = (() => {
  const raw = process.env["SPAWNKIT_STRESS_ROUNDS"]
  const n = raw === undefined || raw === "" ? 2 : Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`SPAWNKIT_STRESS_ROUNDS must be a positive integer, got ${raw}`)
  return n
})()

// Generous limits for whatever a scenario does not test, so only the limit under test can reject.
const HIGH = { max_agents: 1000, max_concurrent: 1000, max_depth: 10, max_children_per_parent: 1000 }
const WORKER_ENV = { SPAWNKIT_GLOBAL_MAX_CONCURRENT: "100000", SPAWNKIT_MAX_SPAWNS_PER_MINUTE: "100000" }

const envs: Array<TestEnv> = []
const children = new Set<ChildProcess>()
const newEnv = (backend: Backend) => {
  const env = makeTestEnv(undefined, backend)
  envs.push(env)
  return env
}
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  children.clear()
  for (const env of envs.splice(0)) env.cleanup()
})

// ---------------------------------------------------------------------------------------------------------------------
// Workers

interface Attempt {
  readonly taskId: string
  readonly agentType: string
  readonly prompt: string
  readonly parent?: string
  readonly idempotencyKey?: string
}

type Outcome =
  | {
    readonly i: number
    readonly ok: true
    readonly agent_id: string
    readonly existing: boolean
    readonly depth: number
    readonly parent: string
    readonly tmux_session: string
  }
  | {
    readonly i: number
    readonly ok: false
    readonly tag: string
    readonly existingAgentId?: string
    readonly limit?: string
    readonly depth?: number
    readonly message: string
  }

interface RaceResult {
  readonly results: ReadonlyArray<{ readonly attempt: Attempt; readonly outcome: Outcome }>
  /** Registry snapshots read (and checked) while the workers ran. */
  readonly samples: number
  readonly violations: ReadonlyArray<string>
  /** Most reservations seen in one snapshot, and how many processes held reservations in it (evidence of overlap). */
  readonly maxReserved: number
  readonly maxOwners: number
  /** Time from start to all workers ready, and from go to all workers done. */
  readonly readyMs: number
  readonly ms: number
}

interface Worker {
  readonly child: ChildProcess
  readonly stdout: Array<string>
  readonly stderr: Array<string>
  readonly exited: Promise<number | null>
}

const startWorker = (env: TestEnv, attempts: ReadonlyArray<Attempt>, goFile: string): Worker => {
  const child = spawnProcess(process.execPath, [WORKER, JSON.stringify({ goFile, attempts })], {
    env: { ...process.env, ...env.env, ...WORKER_ENV },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.add(child)
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  child.stdout!.setEncoding("utf8").on("data", (d: string) => stdout.push(d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr.push(d))
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code) => resolve(code))
  })
  return { child, stdout, stderr, exited }
}

const lines = (w: Worker) =>
  w.stdout.join("").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>)

/**
 * Run `shares.length` (at most WORKERS) worker processes against one task, each running its attempts concurrently.
 * All workers build their layer first and report ready; then one go file releases them together. Meanwhile the
 * task's registry file is read and checked every few milliseconds.
 */
const race = async (
  env: TestEnv,
  taskId: string,
  shares: ReadonlyArray<ReadonlyArray<Attempt>>
): Promise<RaceResult> => {
  expect(shares.length).toBeLessThanOrEqual(WORKERS)
  const goFile = NodePath.join(env.home, `.race-go-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`)
  const spawned = Date.now()
  const workers = shares.map((share) => startWorker(env, share, goFile))
  const early = Promise.all(workers.map((w) => w.exited))
  let anyExited = false
  void early.catch(() => undefined)
  for (const w of workers) void w.exited.then(() => (anyExited = true), () => (anyExited = true))
  await waitFor(
    "all workers ready",
    () => anyExited || workers.every((w) => lines(w).some((l) => l["ready"] === true)),
    WORKER_TIMEOUT_MS
  )
  const started = Date.now()
  Fs.writeFileSync(goFile, "go\n")

  let samples = 0
  let maxReserved = 0
  let maxOwners = 0
  const violations: Array<string> = []
  const sample = () => {
    try {
      const task = env.readTask(taskId)
      const problems = invariantViolations(task)
      const reserved = (task.agents as Array<any>).filter((a) => a.status === "reserved")
      maxReserved = Math.max(maxReserved, reserved.length)
      maxOwners = Math.max(maxOwners, new Set(reserved.map((a) => a.reservation?.owner_pid)).size)
      samples++
      for (const p of problems) if (violations.length < 20) violations.push(`mid-race: ${p}`)
    } catch (e) {
      if (violations.length < 20) violations.push(`mid-race read failed: ${String(e)}`)
    }
  }
  const sampler = setInterval(sample, 15)
  let timer: NodeJS.Timeout | undefined
  const codes = await Promise.race([
    early,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`workers did not finish within ${WORKER_TIMEOUT_MS} ms`)),
        WORKER_TIMEOUT_MS
      )
    })
  ]).finally(() => {
    clearInterval(sampler)
    clearTimeout(timer)
  })
  const ms = Date.now() - started
  sample()

  const results: Array<{ attempt: Attempt; outcome: Outcome }> = []
  workers.forEach((w, n) => {
    const share = shares[n]!
    const diagnostics = `worker ${n} (exit ${codes[n]}): ${w.stderr.join("").slice(0, 2000)}`
    expect(codes[n], diagnostics).toBe(0)
    const outcomes = lines(w).filter((l) => l["ready"] === undefined) as unknown as Array<Outcome>
    expect(outcomes.map((o) => o.i).sort((a, b) => a - b), diagnostics).toEqual(share.map((_, i) => i))
    for (const outcome of outcomes) results.push({ attempt: share[outcome.i]!, outcome })
  })
  return { results, samples, violations, maxReserved, maxOwners, readyMs: started - spawned, ms }
}

const successes = (r: RaceResult) =>
  r.results.flatMap(({ attempt, outcome }) => (outcome.ok ? [{ attempt, outcome }] : []))
const rejections = (r: RaceResult) =>
  r.results.flatMap(({ attempt, outcome }) => (outcome.ok ? [] : [{ attempt, outcome }]))
const tagsOf = (r: RaceResult) => {
  const counts: Record<string, number> = {}
  for (const { outcome } of r.results) {
    const key = outcome.ok ? (outcome.existing ? "ok(existing)" : "ok") : outcome.tag
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

/** `count` attempts split over `workers` shares, round-robin. */
const split = <A>(items: ReadonlyArray<A>, workers: number): Array<Array<A>> => {
  const shares: Array<Array<A>> = Array.from({ length: workers }, () => [])
  items.forEach((item, i) => shares[i % workers]!.push(item))
  return shares
}

// ---------------------------------------------------------------------------------------------------------------------
// Registry invariants, straight from the store (the file, or the row)

const ACTIVE = new Set(["reserved", "running", "working", "blocked"])

/** Every inconsistency of one task registry as stored (empty when it is sound). */
const invariantViolations = (task: any): Array<string> => {
  const problems: Array<string> = []
  const agents: Array<any> = task.agents
  const active = agents.filter((a) => ACTIVE.has(a.status)).length
  const committed = agents.filter((a) => a.status !== "reserved")
  if (task.active_count !== active) problems.push(`active_count ${task.active_count} != ${active} active records`)
  if (task.total_spawned !== committed.length) {
    problems.push(`total_spawned ${task.total_spawned} != ${committed.length} committed records`)
  }
  const hierarchy: Record<string, Array<string>> = {}
  for (const a of committed) (hierarchy[a.parent] ??= []).push(a.id)
  if (JSON.stringify(task.agent_hierarchy) !== JSON.stringify(hierarchy)) {
    problems.push(`agent_hierarchy ${JSON.stringify(task.agent_hierarchy)} != ${JSON.stringify(hierarchy)}`)
  }
  if (active > task.max_concurrent) {
    problems.push(`${active} active records exceed max_concurrent ${task.max_concurrent}`)
  }
  if (agents.length > task.max_agents) problems.push(`${agents.length} records exceed max_agents ${task.max_agents}`)
  const ids = new Set(agents.map((a) => a.id))
  if (ids.size !== agents.length) problems.push(`duplicate agent ids`)
  if (new Set(agents.map((a) => a.tmux_session)).size !== agents.length) problems.push(`duplicate tmux sessions`)
  const byId = new Map(agents.map((a) => [a.id, a]))
  for (const a of agents) {
    if (a.depth > task.max_depth) problems.push(`${a.id} at depth ${a.depth} exceeds max_depth ${task.max_depth}`)
    const expectedDepth = a.parent === "orchestrator" ? 1 : (byId.get(a.parent)?.depth ?? NaN) + 1
    if (a.depth !== expectedDepth) {
      problems.push(`${a.id} has depth ${a.depth}, parent ${a.parent} implies ${expectedDepth}`)
    }
    if (a.tmux_session !== `agent_${a.id}`) problems.push(`${a.id} has session ${a.tmux_session}`)
    if ((a.status === "reserved") !== (a.reservation !== undefined)) {
      problems.push(`${a.id} is ${a.status} ${a.reservation === undefined ? "without" : "with"} a reservation`)
    }
  }
  // Identical active agents (same parent, type and prompt) are twins.
  const keys = agents.filter((a) => ACTIVE.has(a.status)).map((a) => `${a.parent}|${a.type}|${a.prompt_sha256}`)
  if (new Set(keys).size !== keys.length) problems.push(`twin active agents (same parent, type and prompt)`)
  const keyed = agents.filter((a) => a.idempotency_key !== undefined).map((a) => a.idempotency_key)
  if (new Set(keyed).size !== keyed.length) problems.push(`two agents share an idempotency key`)
  return problems
}

/**
 * The end state after a race: the registry is sound and settled (no reservation), every running record has its live
 * session and prompt file and nothing else exists: the live sessions on the socket are exactly the records' sessions,
 * the prompt files exactly the records' prompts.
 */
const expectSettled = (env: TestEnv, taskId: string) => {
  const task = env.readTask(taskId)
  expect(invariantViolations(task)).toEqual([])
  const agents: Array<any> = task.agents
  expect(agents.filter((a) => a.status === "reserved" || a.reservation !== undefined)).toEqual([])
  expect(agents.filter((a) => a.status !== "running").map((a) => `${a.id}:${a.status}`)).toEqual([])
  expect(liveSessions(env.socket).sort()).toEqual(agents.map((a) => a.tmux_session).sort())
  expect(promptFiles(env.home, taskId).sort()).toEqual(agents.map((a) => `${a.id}.prompt`).sort())
  return task
}

// ---------------------------------------------------------------------------------------------------------------------
// Processes of a tmux server

/** The tmux server of a socket and every process below its panes (agent runners, `sleep 600`, `tee`). */
const serverProcesses = (socket: string): Array<number> => {
  const server = spawnSync("tmux", ["-S", socket, "display-message", "-p", "#{pid}"], { encoding: "utf8" })
  const panes = spawnSync("tmux", ["-S", socket, "list-panes", "-a", "-F", "#{pane_pid}"], { encoding: "utf8" })
  const roots = [server, panes].flatMap((r) =>
    r.status === 0 ? r.stdout.split("\n").filter((l) => l.trim() !== "").map(Number) : []
  )
  const table = spawnSync("ps", ["-eo", "pid=,ppid="], { encoding: "utf8" }).stdout.split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((p) => p.length === 2)
  const found = new Set(roots)
  for (let grew = true; grew;) {
    grew = false
    for (const [pid, ppid] of table) {
      if (found.has(ppid!) && !found.has(pid!)) {
        found.add(pid!)
        grew = true
      }
    }
  }
  return [...found]
}

/** Whether a process has ended (a zombie waiting for a reaper has ended too). */
const ended = (pid: number): boolean => {
  if (!processAlive(pid)) return true
  try {
    return /^\d+ \(.*\) Z/.test(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return true
  }
}

/** Kill the environment's tmux server, remove its home, and check that no agent process survives. */
const tearDown = async (env: TestEnv, expectedAgents: number) => {
  const processes = serverProcesses(env.socket)
  // The server, and per agent at least its runner and its `sleep 600`.
  expect(processes.length).toBeGreaterThanOrEqual(1 + 2 * expectedAgents)
  env.cleanup()
  envs.splice(envs.indexOf(env), 1)
  await waitFor(`agent processes of ${env.socket} gone`, () => processes.every(ended))
  expect(liveSessions(env.socket)).toEqual([])
}

// ---------------------------------------------------------------------------------------------------------------------
// Scenarios

const createTask = (
  env: TestEnv,
  limits: Partial<typeof HIGH> & { readonly sandbox?: "bwrap"; readonly working_directory?: string }
) =>
  runIn(
    env,
    Spawnkit.createTask({ description: "race", ...HIGH, max_spawns_per_minute: 100_000, ...limits }).pipe(
      Effect.map((t) => t.task_id as string)
    )
  )

/** One round of the max_concurrent race: 8 processes x 25 attempts, distinct prompts, max_concurrent 50. */
const concurrencyRound = async (backend: Backend, label: string, sandboxed = false) => {
  const t0 = Date.now()
  const env = newEnv(backend)
  // Sandboxed: every agent runs in bubblewrap, working in a directory outside the home (which its sandbox hides).
  const work = NodePath.join(env.dir, "work")
  if (sandboxed) Fs.mkdirSync(work)
  const taskId = await createTask(env, {
    max_concurrent: 50,
    max_agents: 1000,
    ...(sandboxed ? { sandbox: "bwrap", working_directory: work } : {})
  })
  const attempts = Array.from({ length: 200 }, (_, k): Attempt => ({
    taskId,
    agentType: "racer",
    prompt: `${label}: attempt ${k}`
  }))
  const r = await race(env, taskId, split(attempts, WORKERS))
  expect(r.violations).toEqual([])
  expect(tagsOf(r)).toEqual({ ok: 50, LimitReached: 150 })
  for (const { outcome } of rejections(r)) {
    expect(outcome).toMatchObject({ tag: "LimitReached", limit: "max_concurrent" })
  }
  const ok = successes(r).map((s) => s.outcome)
  expect(new Set(ok.map((o) => o.agent_id)).size).toBe(50)

  const task = expectSettled(env, taskId)
  expect(task.agents).toHaveLength(50)
  expect(task.active_count).toBe(50)
  expect(task.total_spawned).toBe(50)
  expect(task.agents.map((a: any) => a.id).sort()).toEqual(ok.map((o) => (o.ok ? o.agent_id : "")).sort())
  expect(liveSessions(env.socket)).toHaveLength(50)
  if (sandboxed) {
    expect(task.agents.filter((a: any) => a.sandbox === "bwrap")).toHaveLength(50)
    const commands = spawnSync("tmux", ["-S", env.socket, "list-panes", "-a", "-F", "#{pane_start_command}"], {
      encoding: "utf8"
    }).stdout.split("\n").filter((l) => l !== "")
    expect(commands.filter((c) => c.includes("bwrap"))).toHaveLength(50)
  }
  const t1 = Date.now()
  await tearDown(env, 50)
  const teardownMs = Date.now() - t1
  return {
    summary: `${Date.now() - t0} ms (workers ready ${r.readyMs} ms, race ${r.ms} ms, teardown ${teardownMs} ms; ` +
      `${r.samples} registry samples, up to ${r.maxReserved} reservations of ${r.maxOwners} processes at once)`
  }
}

describe.each(BACKENDS)("%s registry", (backend) => {
  describe("multi-process spawn races (real processes, real tmux)", () => {
    it("requires the compiled worker entry point", () => {
      expect(Fs.existsSync(DIST_INDEX), "run `npm run build` before these tests").toBe(true)
    })

    it("max_concurrent 50: 8 processes x 25 attempts -> exactly 50 agents, 150 LimitReached", async () => {
      const round = await concurrencyRound(backend, "single")
      console.log(`max_concurrent race: ${round.summary}`)
    }, 300_000)

    it(
      "max_concurrent 50 with every agent in its bubblewrap sandbox: exactly 50 agents, 150 LimitReached",
      async () => {
        const round = await concurrencyRound(backend, "sandboxed", true)
        console.log(`max_concurrent race, sandboxed: ${round.summary}`)
      },
      300_000
    )

    it(`stress: the max_concurrent race repeated ${STRESS_ROUNDS} times with zero discrepancy`, async () => {
      const t0 = Date.now()
      for (let round = 1; round <= STRESS_ROUNDS; round++) {
        const r = await concurrencyRound(backend, `round ${round}`)
        console.log(`stress round ${round}/${STRESS_ROUNDS}: ${r.summary}`)
      }
      console.log(`stress: ${STRESS_ROUNDS} rounds in ${Date.now() - t0} ms`)
    }, 300_000 + STRESS_ROUNDS * 60_000)

    it("max_agents 30: 8 processes x 10 attempts -> exactly 30 agents, the rest LimitReached max_agents", async () => {
      const env = newEnv(backend)
      const taskId = await createTask(env, { max_agents: 30 })
      const attempts = Array.from({ length: 80 }, (_, k): Attempt => ({ taskId, agentType: "many", prompt: `p${k}` }))
      const r = await race(env, taskId, split(attempts, WORKERS))
      expect(r.violations).toEqual([])
      expect(tagsOf(r)).toEqual({ ok: 30, LimitReached: 50 })
      for (const { outcome } of rejections(r)) {
        expect(outcome).toMatchObject({ tag: "LimitReached", limit: "max_agents" })
      }
      const task = expectSettled(env, taskId)
      expect(task.agents).toHaveLength(30)
      expect(task.total_spawned).toBe(30)
      console.log(`max_agents race: ${JSON.stringify(tagsOf(r))} in ${r.ms} ms`)
      await tearDown(env, 30)
    }, 300_000)

    it(
      "max_depth 3: children racing under every level; beyond max_depth all DepthExceeded, nothing deeper",
      async () => {
        const env = newEnv(backend)
        const taskId = await createTask(env, { max_depth: 3 })
        // A chain orchestrator -> d1 -> d2 -> d3 (at max_depth).
        const chain = await runIn(
          env,
          Effect.gen(function*() {
            const d1 = yield* Spawnkit.spawn({ taskId, agentType: "d1", prompt: "level 1" })
            const d2 = yield* Spawnkit.spawn({ taskId, agentType: "d2", prompt: "level 2", parent: d1.agent_id })
            const d3 = yield* Spawnkit.spawn({ taskId, agentType: "d3", prompt: "level 3", parent: d2.agent_id })
            return [d1, d2, d3]
          })
        )
        expect(chain.map((a) => a.depth)).toEqual([1, 2, 3])
        const parents = ["orchestrator", ...chain.map((a) => a.agent_id)]
        const depthOf = (
          parent: string
        ) => (parent === "orchestrator" ? 0 : chain.find((a) => a.agent_id === parent)!.depth)

        // Round 1: 8 processes x 12 attempts, 3 under each of orchestrator, d1, d2 and d3.
        const attempts = Array.from({ length: 96 }, (_, k): Attempt => ({
          taskId,
          agentType: "child",
          prompt: `child ${k}`,
          parent: parents[k % 4]!
        }))
        const r = await race(env, taskId, split(attempts, WORKERS))
        expect(r.violations).toEqual([])
        expect(tagsOf(r)).toEqual({ ok: 72, DepthExceeded: 24 })
        for (const { attempt, outcome } of r.results) {
          if (depthOf(attempt.parent!) + 1 > 3) {
            expect(outcome).toMatchObject({ ok: false, tag: "DepthExceeded", depth: 4 })
          } else {
            expect(outcome).toMatchObject({ ok: true, depth: depthOf(attempt.parent!) + 1, parent: attempt.parent })
          }
        }

        // Round 2: children of agents the first race created in other processes: under new depth-3 agents (beyond
        // max_depth) and under new depth-2 agents (allowed), interleaved.
        const made = successes(r).map((s) => s.outcome).flatMap((o) => (o.ok ? [o] : []))
        const atDepth3 = made.filter((o) => o.depth === 3).slice(0, 8)
        const atDepth2 = made.filter((o) => o.depth === 2).slice(0, 8)
        expect(atDepth3).toHaveLength(8)
        expect(atDepth2).toHaveLength(8)
        const second = Array.from({ length: 64 }, (_, k): Attempt => ({
          taskId,
          agentType: "grandchild",
          prompt: `grandchild ${k}`,
          parent: (k % 2 === 0 ? atDepth3 : atDepth2)[(k >> 1) % 8]!.agent_id
        }))
        const r2 = await race(env, taskId, split(second, WORKERS))
        expect(r2.violations).toEqual([])
        expect(tagsOf(r2)).toEqual({ ok: 32, DepthExceeded: 32 })
        for (const { attempt, outcome } of r2.results) {
          if (atDepth3.some((a) => a.agent_id === attempt.parent)) {
            expect(outcome).toMatchObject({ ok: false, tag: "DepthExceeded", depth: 4 })
          } else {
            expect(outcome).toMatchObject({ ok: true, depth: 3 })
          }
        }

        const task = expectSettled(env, taskId)
        expect(task.agents).toHaveLength(3 + 72 + 32)
        expect(Math.max(...task.agents.map((a: any) => a.depth))).toBe(3)
        expect(task.agents.filter((a: any) => a.depth > 3)).toEqual([])
        console.log(`max_depth race: ${JSON.stringify(tagsOf(r))} then ${JSON.stringify(tagsOf(r2))}`)
        await tearDown(env, task.agents.length)
      },
      300_000
    )

    it(
      "duplicate child: 8 processes ask one parent for the same child -> one agent per prompt, the rest DuplicateAgent",
      async () => {
        const env = newEnv(backend)
        const taskId = await createTask(env, {})
        const parent = await runIn(env, Spawnkit.spawn({ taskId, agentType: "lead", prompt: "lead the work" }))
        // 8 processes x 6 attempts: two groups of 24 identical requests (same parent, type and prompt).
        const prompts = ["investigate the flaky test", "write the report"]
        const attempts = Array.from({ length: 48 }, (_, k): Attempt => ({
          taskId,
          agentType: "helper",
          prompt: prompts[k % 2]!,
          parent: parent.agent_id
        }))
        const r = await race(env, taskId, split(attempts, WORKERS))
        expect(r.violations).toEqual([])
        expect(tagsOf(r)).toEqual({ ok: 2, DuplicateAgent: 46 })
        for (const prompt of prompts) {
          const group = r.results.filter((x) => x.attempt.prompt === prompt)
          const winners = group.flatMap((x) => (x.outcome.ok ? [x.outcome] : []))
          expect(winners).toHaveLength(1)
          const winner = winners[0]!
          expect(winner).toMatchObject({ existing: false, parent: parent.agent_id, depth: 2 })
          for (const { outcome } of group) {
            if (!outcome.ok) expect(outcome).toMatchObject({ tag: "DuplicateAgent", existingAgentId: winner.agent_id })
          }
        }
        const task = expectSettled(env, taskId)
        expect(task.agents).toHaveLength(3)
        expect(task.agent_hierarchy[parent.agent_id]).toHaveLength(2)
        expect(liveSessions(env.socket)).toHaveLength(3)
        console.log(`duplicate race: ${JSON.stringify(tagsOf(r))}`)
        await tearDown(env, 3)
      },
      300_000
    )

    it(
      "idempotency key retried 10 times across 5 processes -> one agent, one session, every response names it",
      async () => {
        const env = newEnv(backend)
        const taskId = await createTask(env, {})
        const attempts = Array.from({ length: 10 }, (): Attempt => ({
          taskId,
          agentType: "once",
          prompt: "do this exactly once",
          idempotencyKey: "retry-key-7f3a"
        }))
        const r = await race(env, taskId, split(attempts, 5))
        expect(r.violations).toEqual([])
        // Every retry succeeds; exactly one of them spawned, the others were handed the same agent.
        expect(tagsOf(r)).toEqual({ ok: 1, "ok(existing)": 9 })
        const ids = new Set(r.results.map(({ outcome }) => (outcome.ok ? outcome.agent_id : `rejected:${outcome.tag}`)))
        expect(ids.size).toBe(1)
        const [agentId] = [...ids]
        const task = expectSettled(env, taskId)
        expect(task.agents).toHaveLength(1)
        expect(task.agents[0]).toMatchObject({ id: agentId, status: "running", idempotency_key: "retry-key-7f3a" })
        expect(liveSessions(env.socket)).toEqual([`agent_${agentId}`])
        console.log(`idempotency race: ${JSON.stringify(tagsOf(r))}`)
        await tearDown(env, 1)
      },
      300_000
    )
  })
})
