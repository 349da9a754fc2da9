/**
 * Settings from the environment (through a ConfigProvider, no process environment): defaults, every override, the
 * tmux socket as a name (`-L`) or a path (`-S`), and bad values refused naming their variable.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as NodePath from "node:path"
import { DEFAULT_LIMITS } from "../../src/domain/Task.js"
import { socketArgs } from "../../src/host/Tmux.js"
import { parseTmuxSocket, settingsConfig } from "../../src/SpawnkitConfig.js"

const settingsFrom = (env: Record<string, string>) =>
  Effect.gen(function*() {
    return yield* settingsConfig
  }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))

describe("parseTmuxSocket", () => {
  const table: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["spawnkit", ["-L", "spawnkit"]],
    ["sk-test.1", ["-L", "sk-test.1"]],
    ["/tmp/sk-abc/tmux", ["-S", "/tmp/sk-abc/tmux"]],
    ["./run/tmux", ["-S", NodePath.resolve("run/tmux")]],
    ["/tmp/a/../b/tmux", ["-S", "/tmp/b/tmux"]]
  ]
  for (const [value, args] of table) {
    it.effect(`${JSON.stringify(value)} gives tmux ${args.join(" ")}`, () =>
      Effect.sync(() => expect(socketArgs(parseTmuxSocket(value))).toEqual(args)))
  }
})

describe("settingsConfig", () => {
  it.effect("defaults with nothing set", () =>
    Effect.gen(function*() {
      const s = yield* settingsFrom({})
      expect(s.home).toBe(NodePath.resolve("./.agent-workspace"))
      expect(s.tmuxSocket).toEqual({ _tag: "Name", name: "spawnkit" })
      expect(s.tmuxBin).toBe("tmux")
      expect(s.defaultEngine).toBe("claude")
      expect(Option.isNone(s.agentCommand)).toBe(true)
      expect(Option.isNone(s.databaseUrl)).toBe(true)
      expect(s.taskDefaults).toEqual(DEFAULT_LIMITS)
      expect([s.globalMaxConcurrent, s.databasePoolSize, s.hostLeaseSeconds, s.killGraceMs]).toEqual([
        100,
        10,
        60,
        3000
      ])
      expect([s.spawnDeadlineSeconds, s.filterTimeoutMs, s.faultSpec]).toEqual([120, 10_000, ""])
    }))

  it.effect("every variable overrides its setting", () =>
    Effect.gen(function*() {
      const s = yield* settingsFrom({
        SPAWNKIT_HOME: "/srv/home",
        SPAWNKIT_TMUX_SOCKET: "/tmp/sk-abc/tmux",
        SPAWNKIT_TMUX_BIN: "/usr/local/bin/tmux",
        SPAWNKIT_AGENT_COMMAND: "sleep 600",
        SPAWNKIT_ENGINE: "custom",
        SPAWNKIT_CLAUDE_MODEL: "opus",
        SPAWNKIT_GLOBAL_MAX_CONCURRENT: "7",
        SPAWNKIT_MAX_CONCURRENT: "3",
        SPAWNKIT_MAX_AGENTS: "9",
        SPAWNKIT_MAX_DEPTH: "2",
        SPAWNKIT_MAX_CHILDREN_PER_PARENT: "4",
        SPAWNKIT_MAX_SPAWNS_PER_MINUTE: "11",
        SPAWNKIT_HOST_ID: "host-b",
        SPAWNKIT_DATABASE_URL: "postgres://u:secret@db/sk",
        SPAWNKIT_DATABASE_POOL_SIZE: "5",
        SPAWNKIT_HOST_LEASE_SECONDS: "30",
        SPAWNKIT_KILL_GRACE_MS: "0",
        SPAWNKIT_SPAWN_DEADLINE_SECONDS: "45",
        SPAWNKIT_FILTER_TIMEOUT_MS: "500"
      })
      expect(s.home).toBe("/srv/home")
      expect(s.tmuxSocket).toEqual({ _tag: "Path", path: "/tmp/sk-abc/tmux" })
      expect(s.tmuxBin).toBe("/usr/local/bin/tmux")
      expect(s.agentCommand).toEqual(Option.some("sleep 600"))
      expect(s.defaultEngine).toBe("custom")
      expect(s.claudeModel).toEqual(Option.some("opus"))
      expect(s.globalMaxConcurrent).toBe(7)
      expect(s.taskDefaults).toEqual({
        max_concurrent: 3,
        max_agents: 9,
        max_depth: 2,
        max_children_per_parent: 4,
        max_spawns_per_minute: 11
      })
      expect(s.hostId).toBe("host-b")
      expect(Option.map(s.databaseUrl, Redacted.value)).toEqual(Option.some("postgres://u:secret@db/sk"))
      // The URL is redacted wherever the settings are printed.
      expect(JSON.stringify(s)).not.toContain("secret")
      expect([s.databasePoolSize, s.hostLeaseSeconds, s.killGraceMs, s.spawnDeadlineSeconds, s.filterTimeoutMs])
        .toEqual([
          5,
          30,
          0,
          45,
          500
        ])
    }))

  const bad: ReadonlyArray<readonly [string, string]> = [
    ["SPAWNKIT_TMUX_SOCKET", "sock;touch CANARY"],
    ["SPAWNKIT_TMUX_SOCKET", "a b"],
    ["SPAWNKIT_ENGINE", "vim"],
    ["SPAWNKIT_MAX_CONCURRENT", "0"],
    ["SPAWNKIT_MAX_AGENTS", "many"],
    ["SPAWNKIT_MAX_DEPTH", "1.5"],
    ["SPAWNKIT_GLOBAL_MAX_CONCURRENT", "-1"],
    ["SPAWNKIT_KILL_GRACE_MS", "-1"],
    ["SPAWNKIT_HOST_ID", "host a"],
    ["SPAWNKIT_FILTER_TIMEOUT_MS", "0"],
    ["SPAWNKIT_DATABASE_POOL_SIZE", "ten"]
  ]
  for (const [name, value] of bad) {
    it.effect(`${name}=${JSON.stringify(value)} is refused naming ${name}`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(settingsFrom({ [name]: value }))
        expect(String(error)).toContain(name)
      }))
  }
})
