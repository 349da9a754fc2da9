/**
 * The id allow-lists, table-tested: every id that reaches a path, a tmux target or an environment variable is decoded
 * by one of these schemas, so each row is an id that must pass or must be refused (traversal, shell syntax, NUL,
 * whitespace, a leading `-` where a flag could be read, over-long values).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import {
  AbsolutePath,
  AgentId,
  AgentType,
  HostId,
  IdempotencyKey,
  ProcessId,
  SessionName,
  sessionNameOf,
  StoredAgentType,
  TaskId
} from "../../../src/domain/Ids.js"

const HOSTILE = ["../etc", "a/b", "a b", "a;b", "$(id)", "`id`", "a\0b", "a\nb", "'q'", "\"q\"", "", "é"]

interface Table {
  readonly name: string
  readonly schema: Schema.Top & { readonly DecodingServices: never }
  readonly valid: ReadonlyArray<unknown>
  readonly invalid: ReadonlyArray<unknown>
}

const tables: ReadonlyArray<Table> = [
  {
    name: "TaskId",
    schema: TaskId,
    valid: ["TASK-20261124-193600-1a2b3c4d", "TASK-x", `TASK-${"a".repeat(59)}`, "TASK-a_b-c"],
    invalid: [...HOSTILE, "TASK-", "task-1", "TASK-../x", `TASK-${"a".repeat(60)}`, "XTASK-1", 42]
  },
  {
    name: "AgentId",
    schema: AgentId,
    valid: ["investigator-193600-1a2b3c4d", "a", "-legacy-id", "a".repeat(64), "A_b-9"],
    invalid: [...HOSTILE, "a".repeat(65), null]
  },
  {
    name: "AgentType (new)",
    schema: AgentType,
    valid: ["investigator", "a", "9lives", "a".repeat(40), "a_b-c"],
    invalid: [...HOSTILE, "-flag", "_x", "a".repeat(41)]
  },
  {
    name: "StoredAgentType (older registries)",
    schema: StoredAgentType,
    valid: ["investigator", "-legacy", "_x", "a".repeat(40)],
    invalid: [...HOSTILE, "a".repeat(41)]
  },
  {
    name: "SessionName",
    schema: SessionName,
    valid: ["agent_a", "agent_investigator-193600-1a2b3c4d", `agent_${"a".repeat(64)}`],
    invalid: [...HOSTILE, "agent_", "agent", "Agent_a", "agent_a b", `agent_${"a".repeat(65)}`, "x_agent_a"]
  },
  {
    name: "HostId",
    schema: HostId,
    valid: ["host-a", "build.example.org", "h", "a".repeat(128)],
    invalid: [...HOSTILE, "a".repeat(129), "host:1"]
  },
  {
    name: "ProcessId",
    schema: ProcessId,
    valid: [2, 4242, 2 ** 31 - 1],
    invalid: [0, 1, -1, 1.5, 2 ** 31, "42", Number.NaN]
  },
  {
    name: "IdempotencyKey",
    schema: IdempotencyKey,
    valid: ["k", "order#42/retry?x=1", "~".repeat(200)],
    invalid: ["", "a b", "a\tb", "a\nb", "é", "k".repeat(201)]
  },
  {
    name: "AbsolutePath",
    schema: AbsolutePath,
    valid: ["/", "/srv/spawnkit", "/srv/spawnkit/", "/a b/c"],
    invalid: ["", "relative/x", "/a/../b", "/a/./b", "/a//b", "/a\0b", "/a\nb", "//"]
  }
]

describe("id allow-lists", () => {
  for (const table of tables) {
    const decode = Schema.decodeUnknownExit(table.schema as Schema.Codec<unknown, unknown>)
    it.effect(`${table.name}: accepts ${table.valid.length} valid values unchanged`, () =>
      Effect.sync(() => {
        for (const value of table.valid) {
          const exit = decode(value)
          expect(Exit.isSuccess(exit), JSON.stringify(value)).toBe(true)
          if (Exit.isSuccess(exit)) expect(exit.value).toBe(value)
        }
      }))
    it.effect(`${table.name}: refuses ${table.invalid.length} invalid values`, () =>
      Effect.sync(() => {
        for (const value of table.invalid) {
          expect(Exit.isFailure(decode(value)), JSON.stringify(value)).toBe(true)
        }
      }))
  }

  it.effect("an id's error message names the allow-list it failed", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Schema.decodeUnknownEffect(TaskId)("TASK-../../etc"))
      expect(error.message).toContain("Expected a task id matching ^TASK-[A-Za-z0-9_-]{1,59}$")
      const type = yield* Effect.flip(Schema.decodeUnknownEffect(AgentType)("-rf"))
      expect(type.message).toContain("starting with a letter or digit")
    }))

  it.effect("sessionNameOf gives the agent's session name, which decodes as a SessionName", () =>
    Effect.sync(() => {
      for (const raw of ["a", "-legacy-id", "investigator-193600-1a2b3c4d", "z".repeat(64)]) {
        const agentId = Schema.decodeUnknownSync(AgentId)(raw)
        const session = sessionNameOf(agentId)
        expect(session).toBe(`agent_${raw}`)
        expect(Schema.decodeUnknownSync(SessionName)(session)).toBe(session)
      }
    }))
})
