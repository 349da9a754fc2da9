/**
 * CLI output formatting: a task as an indented tree (ages, exits, reasons, agents whose parent is not in the task),
 * errors as tag and message, unreadable tasks with the way out, and whether argv asks for JSON as the flag parser
 * decides it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { describeError, jsonRequested, renderTask, renderUnreadable } from "../../../src/cli/Output.js"
import { InvalidInput } from "../../../src/domain/Errors.js"
import { TaskId } from "../../../src/domain/Ids.js"
import { TaskRegistry } from "../../../src/domain/Task.js"

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0)
const T = Schema.decodeUnknownSync(TaskId)("TASK-20261202-120000-ffffffff")
const ago = (ms: number) => new Date(NOW - ms).toISOString()

const agent = (
  id: string,
  status: string,
  parent: string,
  startedAgoMs: number,
  extra: Record<string, unknown> = {}
) => ({
  id,
  type: id.split("-")[0],
  tmux_session: `agent_${id}`,
  parent,
  depth: parent === "orchestrator" ? 1 : 2,
  status,
  started_at: ago(startedAgoMs),
  ...extra
})

describe("renderTask", () => {
  it.effect("draws the agents as a tree under their parents, active ● and ended ○, with age, exit and reason", () =>
    Effect.sync(() => {
      const task = Schema.decodeUnknownSync(TaskRegistry)({
        task_id: T,
        task_description: "Fix the parser",
        created_at: ago(3_600_000),
        workspace: `/srv/home/${T}`,
        status: "INITIALIZED",
        agents: [
          agent("lead-1", "running", "orchestrator", 30_000),
          agent("child-1", "failed", "lead-1", 600_000, {
            exit: { exit_code: 3, last_lines: [], at: ago(1_000) },
            reason: "exited 3"
          }),
          agent("grand-1", "reserved", "child-1", 4 * 3_600_000),
          agent("orphan-1", "killed", "gone-1", 90_000)
        ],
        agent_hierarchy: {},
        max_agents: 45,
        max_depth: 5,
        max_concurrent: 20,
        total_spawned: 3,
        active_count: 2
      })
      expect(renderTask(task, NOW).split("\n")).toEqual([
        `${T}  Fix the parser`,
        "  active 2/20  total 3/45  max depth 5",
        "  ● lead-1  [running]  lead  age 30s",
        "      ○ child-1  [failed]  child  age 10m  exit 3  (exited 3)",
        "          ● grand-1  [reserved]  grand  age 4h",
        "  ? orphan-1  [killed]  orphan  age 90s"
      ])
    }))
})

describe("describeError", () => {
  it.effect("a tagged error gives its tag and message; anything else is an Error with its text", () =>
    Effect.sync(() => {
      const invalid = new InvalidInput({ field: "prompt", reason: "it is empty" })
      expect(describeError(invalid)).toEqual({ tag: "InvalidInput", message: invalid.message })
      expect(describeError(new Error("boom"))).toEqual({ tag: "Error", message: "boom" })
      expect(describeError({ _tag: "Custom" })).toEqual({ tag: "Custom", message: "[object Object]" })
      expect(describeError("plain")).toEqual({ tag: "Error", message: "plain" })
      expect(describeError(undefined)).toEqual({ tag: "Error", message: "undefined" })
    }))
})

describe("renderUnreadable", () => {
  it.effect("names the task, where and why, and the quarantine command", () =>
    Effect.sync(() => {
      expect(renderUnreadable([{ task_id: T, location: `/srv/home/${T}/AGENT_REGISTRY.json`, reason: "invalid JSON" }]))
        .toEqual([
          `unreadable task ${T} (/srv/home/${T}/AGENT_REGISTRY.json): invalid JSON\n` +
          `  left untouched; repair it, or set it aside: spawnkit task quarantine --task ${T}`
        ])
      expect(renderUnreadable([])).toEqual([])
    }))
})

describe("jsonRequested", () => {
  const table: ReadonlyArray<readonly [ReadonlyArray<string>, boolean]> = [
    [[], false],
    [["status"], false],
    [["status", "--json"], true],
    [["status", "--json", "--no-json"], false],
    [["status", "--no-json", "--json"], true],
    [["status", "--json=true"], true],
    [["status", "--json=YES"], true],
    [["status", "--json=on"], true],
    [["status", "--json=1"], true],
    [["status", "--json=false"], false],
    [["status", "--json=0"], false],
    [["status", "--json=maybe"], false],
    [["spawn", "--", "--json"], false],
    [["--json", "--", "--no-json"], true],
    [["--jsonx"], false]
  ]
  for (const [argv, expected] of table) {
    it.effect(`${JSON.stringify(argv)} → ${expected}`, () =>
      Effect.sync(() => expect(jsonRequested(argv)).toBe(expected)))
  }
})
