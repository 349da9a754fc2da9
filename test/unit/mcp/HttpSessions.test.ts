/**
 * The HTTP server's session decisions, pure and table-tested: which session makes room for a new client at the cap
 * (the least recently used without a call in flight, never one with a call in flight) and which sessions have
 * expired; and the settings they read, with a bad value refused naming its variable.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { httpSettingsConfig } from "../../../src/mcp/HttpConfig.js"
import { expiredSessions, sessionToEvict, type SessionUse } from "../../../src/mcp/HttpSessions.js"

const use = (id: string, lastUsedMs: number, callsInFlight = 0): SessionUse => ({ id, lastUsedMs, callsInFlight })

describe("sessionToEvict", () => {
  it.each<[string, ReadonlyArray<SessionUse>, string | undefined]>([
    ["no session: none", [], undefined],
    ["the one idle session", [use("a", 5)], "a"],
    ["the least recently used, wherever it stands", [use("a", 30), use("b", 10), use("c", 20)], "b"],
    ["not the least recently used when it has a call in flight", [use("a", 30), use("b", 10, 1), use("c", 20)], "c"],
    ["a long call keeps an old session", [use("old", 1, 3), use("new", 1000)], "new"],
    ["none when every session has a call in flight", [use("a", 1, 1), use("b", 2, 2)], undefined],
    ["the first of equally old ones", [use("a", 7), use("b", 7)], "a"]
  ])("%s", (_, sessions, expected) => {
    expect(sessionToEvict(sessions)).toBe(expected)
  })
})

describe("expiredSessions", () => {
  const IDLE = 1000
  it.each<[string, ReadonlyArray<SessionUse>, number, ReadonlyArray<string>]>([
    ["none", [], 5000, []],
    ["unused for the idle time exactly: expired", [use("a", 4000)], 5000, ["a"]],
    ["unused for less: kept", [use("a", 4001)], 5000, []],
    ["a call in flight for longer than the idle time: kept", [use("a", 0, 1)], 5000, []],
    ["only the idle ones of many", [use("a", 0), use("b", 4500), use("c", 100, 2), use("d", 3999)], 5000, ["a", "d"]]
  ])("%s", (_, sessions, nowMs, expected) => {
    expect(expiredSessions(sessions, nowMs, IDLE)).toEqual(expected)
  })
})

describe("HTTP session settings", () => {
  const read = (env: Record<string, string>) =>
    Effect.runPromiseExit(
      Effect.gen(function*() {
        return yield* httpSettingsConfig
      }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))
    )

  it("defaults: 1000 sessions, 900 s idle", async () => {
    const exit = await read({})
    expect(Exit.isSuccess(exit) && exit.value).toMatchObject({ maxSessions: 1000, sessionIdleSeconds: 900 })
  })

  it("set from SPAWNKIT_HTTP_MAX_SESSIONS and SPAWNKIT_HTTP_SESSION_IDLE_SECONDS", async () => {
    const exit = await read({ SPAWNKIT_HTTP_MAX_SESSIONS: "3", SPAWNKIT_HTTP_SESSION_IDLE_SECONDS: "2" })
    expect(Exit.isSuccess(exit) && exit.value).toMatchObject({ maxSessions: 3, sessionIdleSeconds: 2 })
  })

  it.each([
    ["SPAWNKIT_HTTP_MAX_SESSIONS", "0"],
    ["SPAWNKIT_HTTP_MAX_SESSIONS", "many"],
    ["SPAWNKIT_HTTP_SESSION_IDLE_SECONDS", "0"],
    ["SPAWNKIT_HTTP_SESSION_IDLE_SECONDS", "1.5"],
    ["SPAWNKIT_HTTP_SESSION_IDLE_SECONDS", "15m"]
  ])("%s=%s is an InvalidConfiguration naming the variable", async (name, value) => {
    const exit = await read({ [name]: value })
    expect(Exit.isFailure(exit)).toBe(true)
    const text = String(exit)
    expect(text).toContain("InvalidConfiguration")
    expect(text).toContain(name)
  })
})
