/**
 * Errors that say what happened, pure: a fault-injection spec with a typo is refused (never ignored), a bad SPAWNKIT_*
 * value is InvalidConfiguration naming its variable, errno codes reach RegistryIoError, and each tag's message gives
 * the advice that fits it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import { exitStatusOf } from "../../../src/cli/Output.js"
import {
  AgentNotRunning,
  BudgetExceeded,
  errnoCode,
  InvalidConfiguration,
  ioFailure,
  RegistryIoError,
  ServerBindFailed,
  TaskExists,
  TaskNotCorrupt,
  UsageLimited
} from "../../../src/domain/Errors.js"
import { FaultInjection, parseFaultSpec } from "../../../src/faults/FaultInjection.js"
import { loadSettings } from "../../../src/SpawnkitConfig.js"

const refusal = (spec: string) => {
  const parsed = parseFaultSpec(spec)
  if (Result.isSuccess(parsed)) throw new Error(`${spec}: expected a refusal, got ${[...parsed.success.keys()]}`)
  return parsed.failure
}

describe("SPAWNKIT_FAULT", () => {
  it("accepts every step with every mode, and an empty spec", () => {
    const parsed = parseFaultSpec(
      "after-session:kill, commit:fail,after-prompt:hang,registry-after-write:fail-while=/tmp/x"
    )
    expect(Result.isSuccess(parsed)).toBe(true)
    if (Result.isSuccess(parsed)) {
      expect(Object.fromEntries(parsed.success)).toEqual({
        "after-session": "kill",
        commit: "fail",
        "after-prompt": "hang",
        "registry-after-write": { failWhile: "/tmp/x" }
      })
    }
    expect(Result.isSuccess(parseFaultSpec(""))).toBe(true)
  })

  it.each([
    ["after-sesion:kill", "unknown step \"after-sesion\""],
    ["commit:fial", "unknown mode \"fial\""],
    ["commit", "\"commit\" is not <step>:<mode>"],
    ["commit:fail-while=", "unknown mode \"fail-while=\""],
    ["commit:fail,bogus:hang", "unknown step \"bogus\""]
  ])("%s is refused: %s", (spec, reason) => {
    const error = refusal(spec)
    expect(error).toBeInstanceOf(InvalidConfiguration)
    expect(error.variable).toBe("SPAWNKIT_FAULT")
    expect(error.reason).toContain(reason)
  })

  it("a layer built from a refused spec fails with the refusal", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.provide(
        Effect.gen(function*() {
          return yield* FaultInjection
        }),
        FaultInjection.fromSpec("after-sesion:kill")
      )
    )
    expect(exit).toMatchObject({ _tag: "Failure", cause: { reasons: [{ error: { _tag: "InvalidConfiguration" } }] } })
  })
})

describe("bad SPAWNKIT_* values", () => {
  const load = (env: Record<string, string>) =>
    Effect.runPromiseExit(
      loadSettings.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
    )

  it.each([
    ["SPAWNKIT_MAX_DEPTH", "zero"],
    ["SPAWNKIT_MAX_CONCURRENT", "0"],
    ["SPAWNKIT_ENGINE", "bogus"],
    ["SPAWNKIT_TMUX_SOCKET", "a b"],
    ["SPAWNKIT_FAULT", "commit:explode"]
  ])("%s=%s is InvalidConfiguration naming the variable", async (variable, value) => {
    const exit = await load({ [variable]: value })
    expect(exit).toMatchObject({
      _tag: "Failure",
      cause: { reasons: [{ error: { _tag: "InvalidConfiguration", variable } }] }
    })
  })

  it("good values load", async () => {
    const exit = await load({ SPAWNKIT_MAX_DEPTH: "3", SPAWNKIT_FAULT: "commit:fail" })
    expect(Exit.isSuccess(exit)).toBe(true)
    if (Exit.isSuccess(exit)) {
      expect(exit.value).toMatchObject({ faultSpec: "commit:fail", taskDefaults: { max_depth: 3 } })
    }
  })
})

describe("errno codes", () => {
  it("are found on a Node error and through causes, never invented", () => {
    const enospc = Object.assign(new Error("no space left on device"), { code: "ENOSPC" })
    expect(errnoCode(enospc)).toBe("ENOSPC")
    expect(errnoCode({ reason: { cause: enospc } })).toBe("ENOSPC")
    expect(errnoCode(new Error("plain"))).toBeUndefined()
    expect(errnoCode(Object.assign(new Error("x"), { code: "ERR_INVALID_ARG_TYPE" }))).toBeUndefined()
    expect(ioFailure(enospc)).toEqual({ reason: "no space left on device", code: "ENOSPC" })
    expect(ioFailure("text")).toEqual({ reason: "text" })
  })

  it("RegistryIoError's advice follows its code", () => {
    const full = new RegistryIoError({ path: "/h/x", operation: "write", reason: "r", code: "ENOSPC" })
    expect(full.message).toContain("(ENOSPC)")
    expect(full.message).toContain("file system is full")
    expect(new RegistryIoError({ path: "/h/x", operation: "write", reason: "r", code: "EACCES" }).message).toContain(
      "permissions"
    )
    expect(new RegistryIoError({ path: "/h/x", operation: "write", reason: "r" }).message).not.toContain("(")
  })
})

describe("messages and exit statuses", () => {
  it("each tag says what happened and what to do", () => {
    expect(new TaskExists({ taskId: "TASK-a" }).message).toContain("Task TASK-a already exists")
    expect(new TaskNotCorrupt({ taskId: "TASK-a" }).message).toContain("task TASK-a decodes")
    expect(new AgentNotRunning({ taskId: "TASK-a", agentId: "w-1", status: "reserved" }).message).toContain(
      "Wait until its spawn has committed"
    )
    expect(new AgentNotRunning({ taskId: "TASK-a", agentId: "w-1", status: "killed" }).message).toContain(
      "An agent that has ended cannot report"
    )
    expect(new InvalidConfiguration({ variable: "SPAWNKIT_X", reason: "bad" }).message).toContain("SPAWNKIT_X: bad")
    expect(
      new ServerBindFailed({ host: "127.0.0.1", port: 80, code: "EADDRINUSE", reason: "listen EADDRINUSE" }).message
    ).toContain("Another process listens there")
    expect(
      new BudgetExceeded({ taskId: "TASK-a", kind: "cost_usd", spent: 0.1 + 0.2, cap: 0.3 }).message
    ).toContain("The budget of task TASK-a is spent: $0.3000 of $0.3.")
    expect(
      new BudgetExceeded({ taskId: "TASK-a", agentId: "w-1", kind: "tokens", spent: 4200, cap: 4000 }).message
    ).toContain("The budget of agent w-1's subtree is spent: 4200 tokens of 4000.")
    const limited = new UsageLimited({
      engine: "claude",
      host: "h",
      resetsAt: "2026-12-03T10:00:00.000Z",
      retryAfterMs: 29_500,
      reason: "rate limit"
    })
    expect(limited.message).toContain("Retry in 29500 ms, or spawn on another engine")
  })

  it("the CLI exits 78 on bad configuration, 69 when it cannot listen, 1 otherwise", () => {
    expect(exitStatusOf("InvalidConfiguration")).toBe(78)
    expect(exitStatusOf("ServerBindFailed")).toBe(69)
    expect(exitStatusOf("TaskExists")).toBe(1)
    expect(exitStatusOf("InvalidInput")).toBe(1)
  })
})
