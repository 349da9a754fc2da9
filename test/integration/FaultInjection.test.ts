/**
 * Fault injection at every step of a spawn, with real tmux and real files: a failure, a defect or an interruption at
 * any point before the commit must leave no prompt file, no tmux session and no record behind, with the registry's
 * counts exactly as before, and the next spawn must work. The whole suite runs against both registries.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import {
  type Backend,
  BACKENDS,
  liveSessions,
  makeTestEnv,
  promptFiles,
  runIn,
  type TestEnv,
  waitFor
} from "../support/Harness.js"

const envs: Array<TestEnv> = []
const scratch: Array<string> = []
const newEnv = (backend: Backend, agentCommand?: string) => {
  const env = makeTestEnv(agentCommand, backend)
  envs.push(env)
  return env
}
const newScratchDir = () => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-faults-"))
  scratch.push(dir)
  return dir
}
afterEach(() => {
  for (const env of envs.splice(0)) env.cleanup()
  for (const dir of scratch.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

type Faults = Layer.Layer<Spawnkit.FaultInjection, never, Spawnkit.SpawnkitConfig>

/** Run an effect with a fault layer (and optional settings) and return its Exit. */
const runExit = <A, E>(
  env: TestEnv,
  faults: Faults,
  effect: Effect.Effect<A, E, Spawnkit.Services>,
  overrides: Partial<Spawnkit.SpawnkitSettings> = {}
) => Effect.runPromiseExit(effect.pipe(Effect.provide(env.layer(overrides, faults))))

/** The typed failure of an Exit; throws (failing the test) on success, defect or interruption. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got success ${JSON.stringify(exit.value)}`)
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return error.value
}

const failAt = (target: Spawnkit.FaultStep): Faults =>
  Spawnkit.FaultInjection.layer((step) =>
    step === target ? Effect.fail(new Spawnkit.InjectedFault({ step })) : Effect.void
  )

const SPAWN_STEPS = [
  "after-reserve",
  "after-prompt",
  "after-worktree",
  "before-session",
  "after-session",
  "after-check",
  "commit"
] as const

/** The parts of a registry a failed spawn must leave exactly as they were. */
const snapshot = (env: TestEnv, taskId: string) => {
  const r = env.readTask(taskId)
  return {
    agents: r.agents,
    active_count: r.active_count,
    total_spawned: r.total_spawned,
    completed_count: r.completed_count,
    agent_hierarchy: r.agent_hierarchy
  }
}
type Snapshot = ReturnType<typeof snapshot>

/** Leftover temp files of atomic registry writes in a task directory. */
const registryTempFiles = (env: TestEnv, taskId: string) =>
  Fs.readdirSync(NodePath.join(env.home, taskId)).filter((n) => n.includes(".tmp-"))

interface Fixture {
  readonly env: TestEnv
  readonly taskId: string
  /** An agent spawned before the fault: it must survive untouched. */
  readonly existing: Spawnkit.SpawnResult
  readonly before: Snapshot
}

/** A task with one running agent, so "unchanged" is checked against a non-empty registry. */
const setup = async (backend: Backend, agentCommand?: string): Promise<Fixture> => {
  const env = newEnv(backend, agentCommand)
  const { taskId, existing } = await runIn(
    env,
    Effect.gen(function*() {
      const task = yield* Spawnkit.createTask({ description: "faults", max_concurrent: 50, max_agents: 200 })
      const existing = yield* Spawnkit.spawn({ taskId: task.task_id, agentType: "keeper", prompt: "already here" })
      return { taskId: task.task_id, existing }
    })
  )
  const before = snapshot(env, taskId)
  expect(before.active_count).toBe(1)
  expect(before.total_spawned).toBe(1)
  expect(liveSessions(env.socket)).toEqual([existing.tmux_session])
  return { env, taskId, existing, before }
}

/** Nothing of the failed spawn is left: sessions, prompt files and registry exactly as before it. */
const expectReleased = (fx: Fixture) => {
  expect(liveSessions(fx.env.socket)).toEqual([fx.existing.tmux_session])
  expect(promptFiles(fx.env.home, fx.taskId)).toEqual([`${fx.existing.agent_id}.prompt`])
  const after = snapshot(fx.env, fx.taskId)
  expect(after.agents.filter((a: any) => a.status === "reserved")).toEqual([])
  expect(after).toEqual(fx.before)
  expect(registryTempFiles(fx.env, fx.taskId)).toEqual([])
}

/** A normal spawn after the failure works and takes one more slot. */
const expectNextSpawnWorks = async (fx: Fixture, label: string) => {
  const base = snapshot(fx.env, fx.taskId)
  const sessionsBefore = liveSessions(fx.env.socket)
  const promptsBefore = promptFiles(fx.env.home, fx.taskId)
  const next = await runIn(
    fx.env,
    Spawnkit.spawn({ taskId: fx.taskId, agentType: "next", prompt: `next after ${label}` })
  )
  expect(next).toMatchObject({ status: "running", existing: false })
  expect(liveSessions(fx.env.socket).sort()).toEqual([...sessionsBefore, next.tmux_session].sort())
  expect(promptFiles(fx.env.home, fx.taskId).sort()).toEqual([...promptsBefore, `${next.agent_id}.prompt`].sort())
  const after = snapshot(fx.env, fx.taskId)
  expect(after.active_count).toBe(base.active_count + 1)
  expect(after.total_spawned).toBe(base.total_spawned + 1)
  expect(after.agents.find((a: any) => a.id === next.agent_id)).toMatchObject({ status: "running" })
}

const spawnOne = (fx: Fixture, prompt = "the faulty one") =>
  Spawnkit.spawn({ taskId: fx.taskId, agentType: "victim", prompt })

describe.each(BACKENDS)("%s registry", (backend) => {
  describe("a typed failure at each spawn step releases everything", () => {
    for (const step of SPAWN_STEPS) {
      it(`fail at ${step}`, async () => {
        const fx = await setup(backend)
        const error = failureOf(await runExit(fx.env, failAt(step), spawnOne(fx)))
        expect(error).toBeInstanceOf(Spawnkit.InjectedFault)
        expect(error).toMatchObject({ _tag: "InjectedFault", step })
        expectReleased(fx)
        await expectNextSpawnWorks(fx, step)
      })
    }

    it("a fault after the commit leaves a whole agent owned by its record (nothing half-released)", async () => {
      const fx = await setup(backend)
      const error = failureOf(await runExit(fx.env, failAt("after-commit"), spawnOne(fx)))
      expect(error).toMatchObject({ _tag: "InjectedFault", step: "after-commit" })
      const after = snapshot(fx.env, fx.taskId)
      const victim = after.agents.find((a: any) => a.type === "victim")
      expect(victim).toMatchObject({ status: "running" })
      expect(victim.reservation).toBeUndefined()
      expect(after.active_count).toBe(fx.before.active_count + 1)
      expect(after.total_spawned).toBe(fx.before.total_spawned + 1)
      expect(liveSessions(fx.env.socket).sort()).toEqual([fx.existing.tmux_session, victim.tmux_session].sort())
      expect(promptFiles(fx.env.home, fx.taskId)).toContain(`${victim.id}.prompt`)
    })
  })

  describe("a failure inside a registry write of the spawn releases everything", () => {
    // The file registry's atomic write; PostgreSQL's transaction before its COMMIT and once the COMMIT is durable.
    const REGISTRY_STEPS = backend === "file" ? Spawnkit.FILE_REGISTRY_FAULT_STEPS : Spawnkit.PG_REGISTRY_FAULT_STEPS

    for (const step of REGISTRY_STEPS) {
      it(`fail at ${step} of the reservation`, async () => {
        const fx = await setup(backend)
        // The reservation is the spawn's first registry write: fail the first time this step is passed.
        let fired = false
        const faults = Spawnkit.FaultInjection.layer((s) => {
          if (s !== step || fired) return Effect.void
          fired = true
          return Effect.fail(new Spawnkit.InjectedFault({ step: s }))
        })
        const error = failureOf(await runExit(fx.env, faults, spawnOne(fx)))
        expect(error).toMatchObject({ _tag: "InjectedFault", step })
        expectReleased(fx)
        await expectNextSpawnWorks(fx, step)
      })

      it(`fail at ${step} of the commit`, async () => {
        const fx = await setup(backend)
        // The commit's write is the first registry write after the `commit` point.
        let inCommit = false
        let fired = false
        const faults = Spawnkit.FaultInjection.layer((s) => {
          if (s === "commit") inCommit = true
          if (s !== step || !inCommit || fired) return Effect.void
          fired = true
          return Effect.fail(new Spawnkit.InjectedFault({ step: s }))
        })
        const error = failureOf(await runExit(fx.env, faults, spawnOne(fx)))
        expect(error).toMatchObject({ _tag: "InjectedFault", step })
        expectReleased(fx)
        await expectNextSpawnWorks(fx, `${step} of commit`)
      })
    }
  })

  describe("real failures release everything", () => {
    it("the prompt file cannot be written (the prompts directory is a regular file)", async () => {
      const fx = await setup(backend)
      const prompts = NodePath.join(fx.env.home, fx.taskId, "prompts")
      const aside = `${prompts}.aside`
      Fs.renameSync(prompts, aside)
      Fs.writeFileSync(prompts, "not a directory\n")
      const error = failureOf(await runExit(fx.env, Spawnkit.FaultInjection.none, spawnOne(fx)))
      expect(error).toMatchObject({ _tag: "RegistryIoError", operation: "write" })
      expect((error as Spawnkit.RegistryIoError).path).toMatch(/\/prompts\/victim-[^/]+\.prompt$/)
      // The obstacle itself is untouched, and nothing else appeared.
      expect(Fs.readFileSync(prompts, "utf8")).toBe("not a directory\n")
      expect(liveSessions(fx.env.socket)).toEqual([fx.existing.tmux_session])
      expect(snapshot(fx.env, fx.taskId)).toEqual(fx.before)
      expect(registryTempFiles(fx.env, fx.taskId)).toEqual([])
      Fs.rmSync(prompts)
      Fs.renameSync(aside, prompts)
      expectReleased(fx)
      await expectNextSpawnWorks(fx, "prompt write failure")
    })

    const fakeTmux = (body: string) => {
      const script = NodePath.join(newScratchDir(), "fake-tmux")
      const realTmux = "tmux"
      Fs.writeFileSync(
        script,
        [
          "#!/bin/sh",
          "# Runs the real tmux, except for a call that contains a new-session command.",
          "for arg in \"$@\"; do",
          "  if [ \"$arg\" = new-session ]; then",
          body,
          "  fi",
          "done",
          `exec ${realTmux} "$@"`,
          ""
        ].join("\n"),
        { mode: 0o755 }
      )
      return script
    }

    it("tmux refuses to create the session", async () => {
      const fx = await setup(backend)
      const tmuxBin = fakeTmux("    echo 'fake tmux: new-session refused' >&2\n    exit 1")
      const error = failureOf(await runExit(fx.env, Spawnkit.FaultInjection.none, spawnOne(fx), { tmuxBin }))
      expect(error).toBeInstanceOf(Spawnkit.TmuxError)
      expect(error).toMatchObject({ _tag: "TmuxError", exitCode: 1 })
      expect((error as Spawnkit.TmuxError).stderr).toContain("fake tmux: new-session refused")
      expect((error as Spawnkit.TmuxError).args).toContain("new-session")
      expectReleased(fx)
      await expectNextSpawnWorks(fx, "tmux failure")
    })

    it("tmux creates the session but then reports a failure", async () => {
      const fx = await setup(backend)
      const tmuxBin = fakeTmux(
        "    tmux \"$@\" >/dev/null 2>&1\n    echo 'fake tmux: failed after creating the session' >&2\n    exit 1"
      )
      const error = failureOf(await runExit(fx.env, Spawnkit.FaultInjection.none, spawnOne(fx), { tmuxBin }))
      expect(error).toMatchObject({ _tag: "TmuxError", exitCode: 1 })
      expect((error as Spawnkit.TmuxError).stderr).toContain("failed after creating the session")
      expectReleased(fx)
      await expectNextSpawnWorks(fx, "tmux failure after create")
    })
  })

  describe("an agent that exits at once", () => {
    const QUITTER = `sh -c "echo boom; exit 7"`

    it("is either refused at start-up or recorded as failed by the exit hook; nothing stays active", async () => {
      const fx = await setup(backend)
      const exit = await runExit(fx.env, Spawnkit.FaultInjection.none, spawnOne(fx), {
        agentCommand: Option.some(QUITTER)
      })
      if (Exit.isFailure(exit)) {
        // Outcome 1: the spawn saw the agent die and rolled everything back.
        const error = failureOf(exit)
        expect(error).toBeInstanceOf(Spawnkit.AgentExitedAtStartup)
        const e = error as Spawnkit.AgentExitedAtStartup
        expect(e.exitCode).toBe(7)
        expect(e.lastLines).toContain("boom")
        expect(e.agentId).toMatch(/^victim-/)
        await waitFor(
          "the quitter's session is gone",
          () => liveSessions(fx.env.socket).length === 1 ? true : undefined
        )
        expectReleased(fx)
      } else {
        // Outcome 2: the spawn committed; the pane-died hook records the exit and removes session and prompt.
        const spawned = exit.value
        expect(spawned).toMatchObject({ status: "running", existing: false })
        const agent = await waitFor("the exit is recorded", () => {
          const a = fx.env.readTask(fx.taskId).agents.find((x: any) => x.id === spawned.agent_id)
          return a?.status === "failed" ? a : undefined
        })
        expect(agent.exit.exit_code).toBe(7)
        expect(agent.exit.last_lines).toEqual(["boom"])
        expect(agent.reason).toBe("exited with code 7")
        expect(agent.completed_at).toBeTruthy()
        await waitFor(
          "the quitter's session is gone",
          () => liveSessions(fx.env.socket).length === 1 ? true : undefined
        )
        expect(liveSessions(fx.env.socket)).toEqual([fx.existing.tmux_session])
        await waitFor(
          "the quitter's prompt file is gone",
          () => promptFiles(fx.env.home, fx.taskId).length === 1 ? true : undefined
        )
        expect(promptFiles(fx.env.home, fx.taskId)).toEqual([`${fx.existing.agent_id}.prompt`])
        const after = snapshot(fx.env, fx.taskId)
        expect(after.active_count).toBe(fx.before.active_count)
        expect(after.total_spawned).toBe(fx.before.total_spawned + 1)
        expect(after.agents.filter((a: any) => a.status === "reserved" || a.status === "running")).toEqual(
          fx.before.agents
        )
        expect(Fs.readFileSync(NodePath.join(fx.env.home, fx.taskId, "logs", `${spawned.agent_id}.log`), "utf8"))
          .toBe("boom\n")
      }
      await expectNextSpawnWorks(fx, "quitter")
    })

    it("dying between the start-up check and the commit rolls the spawn back (the hook notes the exit first)", async () => {
      const fx = await setup(backend)
      // Hold the spawn after its start-up check until the pane-died hook has noted the exit on the reservation.
      const noted = Effect.promise(() =>
        waitFor(
          "the hook notes the exit on the reservation",
          () =>
            fx.env.readTask(fx.taskId).agents.some((a: any) => a.status === "reserved" && a.exit)
              ? true
              : undefined
        )
      )
      const faults = Spawnkit.FaultInjection.layer((s) => (s === "after-check" ? Effect.asVoid(noted) : Effect.void))
      const exit = await runExit(fx.env, faults, spawnOne(fx), { agentCommand: Option.some(QUITTER) })
      const error = failureOf(exit)
      expect(error).toBeInstanceOf(Spawnkit.AgentExitedAtStartup)
      expect(error).toMatchObject({ exitCode: 7, lastLines: ["boom"] })
      expectReleased(fx)
      await expectNextSpawnWorks(fx, "quitter before commit")
    })
  })

  describe("interruption releases everything", () => {
    /** Fork a spawn that signals and then hangs at `step`, interrupt it there, and return its Exit. */
    const interruptAt = (fx: Fixture, step: Spawnkit.FaultStep) => {
      const reached = Deferred.makeUnsafe<void>()
      const faults = Spawnkit.FaultInjection.layer((s) =>
        s === step ? Deferred.succeed(reached, undefined).pipe(Effect.andThen(Effect.never)) : Effect.void
      )
      return Effect.runPromise(
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(spawnOne(fx))
          const first = yield* Effect.raceFirst(
            Deferred.await(reached).pipe(Effect.as(Option.none<Exit.Exit<unknown, unknown>>())),
            Fiber.await(fiber).pipe(Effect.map(Option.some))
          )
          if (Option.isSome(first)) {
            return yield* Effect.die(new Error(`spawn ended before reaching ${step}: ${String(first.value)}`))
          }
          yield* Fiber.interrupt(fiber)
          return yield* Fiber.await(fiber)
        }).pipe(Effect.provide(fx.env.layer({}, faults)))
      )
    }

    for (const step of SPAWN_STEPS.filter((s) => s !== "commit")) {
      it(`interrupted while hanging at ${step}`, async () => {
        const fx = await setup(backend)
        const exit = await interruptAt(fx, step)
        expect(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)).toBe(true)
        expectReleased(fx)
        await expectNextSpawnWorks(fx, `interrupt at ${step}`)
      })
    }

    it("an interruption during the commit waits for it: the agent is then wholly committed", async () => {
      const fx = await setup(backend)
      const reached = Deferred.makeUnsafe<void>()
      const gate = Deferred.makeUnsafe<void>()
      const faults = Spawnkit.FaultInjection.layer((s) =>
        s === "commit" ? Deferred.succeed(reached, undefined).pipe(Effect.andThen(Deferred.await(gate))) : Effect.void
      )
      const { exit, interrupterDone } = await Effect.runPromise(
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(spawnOne(fx))
          yield* Deferred.await(reached)
          const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
          // The interrupter has run (and is waiting on the uninterruptible commit) before the gate opens.
          yield* Effect.sleep("100 millis")
          const interrupterDone = interrupter.pollUnsafe() !== undefined
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.await(interrupter)
          return { exit: yield* Fiber.await(fiber), interrupterDone }
        }).pipe(Effect.provide(fx.env.layer({}, faults)))
      )
      expect(interrupterDone).toBe(false)
      expect(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)).toBe(true)
      const after = snapshot(fx.env, fx.taskId)
      const victim = after.agents.find((a: any) => a.type === "victim")
      expect(victim).toMatchObject({ status: "running" })
      expect(victim.reservation).toBeUndefined()
      expect(after.active_count).toBe(fx.before.active_count + 1)
      expect(liveSessions(fx.env.socket).sort()).toEqual([fx.existing.tmux_session, victim.tmux_session].sort())
      expect(promptFiles(fx.env.home, fx.taskId).sort()).toEqual(
        [`${fx.existing.agent_id}.prompt`, `${victim.id}.prompt`].sort()
      )
    })

    it("an interruption after the commit leaves the agent to its record", async () => {
      const fx = await setup(backend)
      const exit = await interruptAt(fx, "after-commit")
      expect(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)).toBe(true)
      const victim = snapshot(fx.env, fx.taskId).agents.find((a: any) => a.type === "victim")
      expect(victim).toMatchObject({ status: "running" })
      expect(liveSessions(fx.env.socket)).toContain(victim.tmux_session)
      expect(promptFiles(fx.env.home, fx.taskId)).toContain(`${victim.id}.prompt`)
    })

    it("interrupts at random moments leave only whole running agents", async () => {
      const fx = await setup(backend)
      const ROUNDS = 20
      const outcomes = await Effect.runPromise(
        Effect.gen(function*() {
          const outcomes: Array<{ delay: number; exit: Exit.Exit<Spawnkit.SpawnResult, unknown> }> = []
          for (let i = 0; i < ROUNDS; i++) {
            const delay = Math.floor(Math.random() * 51)
            const fiber = yield* Effect.forkChild(spawnOne(fx, `random round ${i}`))
            yield* Effect.sleep(`${delay} millis`)
            yield* Fiber.interrupt(fiber)
            outcomes.push({ delay, exit: yield* Fiber.await(fiber) })
          }
          return outcomes
        }).pipe(Effect.provide(fx.env.layer()))
      )
      const describeOutcomes = () =>
        outcomes.map((o) => `${o.delay}ms:${Exit.isSuccess(o.exit) ? "committed" : "interrupted"}`).join(" ")
      // Each spawn either completed or was interrupted; none failed with an error or a defect.
      for (const { exit } of outcomes) {
        if (Exit.isFailure(exit)) expect(Cause.hasInterruptsOnly(exit.cause), Cause.pretty(exit.cause)).toBe(true)
      }
      const registry = fx.env.readTask(fx.taskId)
      const agents: Array<any> = registry.agents
      // Only whole running agents: every record is running and owns a live session and a prompt file ...
      expect(agents.map((a) => a.status).filter((s) => s !== "running"), describeOutcomes()).toEqual([])
      expect(liveSessions(fx.env.socket).sort(), describeOutcomes()).toEqual(agents.map((a) => a.tmux_session).sort())
      expect(promptFiles(fx.env.home, fx.taskId).sort(), describeOutcomes()).toEqual(
        agents.map((a) => `${a.id}.prompt`).sort()
      )
      // ... every completed spawn is among them, and the counts agree with the records.
      for (const { exit } of outcomes) {
        if (Exit.isSuccess(exit)) expect(agents.map((a) => a.id)).toContain(exit.value.agent_id)
      }
      expect(agents.map((a) => a.id)).toContain(fx.existing.agent_id)
      expect(registry.active_count).toBe(agents.length)
      expect(registry.total_spawned).toBe(agents.length)
      expect(registryTempFiles(fx.env, fx.taskId)).toEqual([])
      await expectNextSpawnWorks(fx, "random interrupts")
    })
  })

  describe("a defect at a step releases everything", () => {
    for (const step of SPAWN_STEPS) {
      it(`die at ${step}`, async () => {
        const fx = await setup(backend)
        const defect = new Error(`defect injected at ${step}`)
        const exit = await runExit(
          fx.env,
          Spawnkit.FaultInjection.layer((s) => (s === step ? Effect.die(defect) : Effect.void)),
          spawnOne(fx)
        )
        if (Exit.isSuccess(exit)) throw new Error(`expected a defect, got ${JSON.stringify(exit.value)}`)
        const found = Cause.findDefect(exit.cause)
        expect(Result.isSuccess(found) ? found.success : undefined).toBe(defect)
        expectReleased(fx)
        await expectNextSpawnWorks(fx, `die at ${step}`)
      })
    }
  })
})
