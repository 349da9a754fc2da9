/**
 * Prompt rendering: every placeholder of the default template filled from the agent and its task, the task's context
 * as a list (empty values left out), the depth rule, unknown placeholders kept, and values inserted once (a value
 * that looks like a placeholder is never expanded).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { TaskRegistry } from "../../../src/domain/Task.js"
import { DEFAULT_PROMPT_TEMPLATE, type PromptValues, renderPrompt } from "../../../src/spawn/AgentPrompt.js"

const T = "TASK-20261202-120000-eeeeeeee"

const taskWith = (extra: Record<string, unknown> = {}): TaskRegistry =>
  Schema.decodeUnknownSync(TaskRegistry)({
    task_id: T,
    task_description: "Fix the parser",
    created_at: "2026-12-02T12:00:00.000Z",
    workspace: `/srv/home/${T}`,
    status: "INITIALIZED",
    agents: [],
    agent_hierarchy: {},
    max_agents: 45,
    max_depth: 3,
    max_concurrent: 20,
    total_spawned: 0,
    active_count: 0,
    max_children_per_parent: 4,
    ...extra
  })

const values = (over: Partial<PromptValues> = {}): PromptValues => ({
  agentId: "investigator-120000-0000a001",
  agentType: "investigator",
  parent: "orchestrator",
  depth: 1,
  mission: "Find why the parser drops the last token.",
  task: taskWith(),
  ...over
})

describe("renderPrompt", () => {
  it.effect("fills every placeholder of the default template", () =>
    Effect.sync(() => {
      const text = renderPrompt(DEFAULT_PROMPT_TEMPLATE, values())
      expect(text).not.toMatch(/\{\{[a-z_]+\}\}/)
      expect(text).toContain(`You are agent investigator-120000-0000a001 (type: investigator), working on task ${T}.`)
      expect(text).toContain("You were spawned by orchestrator and sit at depth 1 of the agent tree (max depth 3).")
      expect(text).toContain("## Your mission\nFind why the parser drops the last token.")
      expect(text).toContain("## The task\nFix the parser\n")
      expect(text).toContain("your children would be at depth 2.")
      expect(text).toContain("At most 20 agents of this task run at once, 45 in its lifetime.")
      expect(text).toContain("at most 4 active children")
      expect(text).toContain(`task_id "${T}", agent_id "investigator-120000-0000a001"`)
    }))

  it.effect("an agent at the maximum depth is told it cannot spawn children", () =>
    Effect.sync(() => {
      const text = renderPrompt(DEFAULT_PROMPT_TEMPLATE, values({ depth: 3 }))
      expect(text).toContain("you are at the maximum depth, so you cannot spawn children: do the work yourself.")
      expect(text).not.toContain("your children would be at depth")
    }))

  it.effect("the task's context is listed, lists joined, empty values left out; no context, no block", () =>
    Effect.sync(() => {
      const task = taskWith({
        task_context: {
          relevant_files: ["src/parser.ts", "test/parser.test.ts"],
          expected_deliverables: [],
          success_criteria: "",
          priority: "P1"
        }
      })
      const text = renderPrompt("{{task_context}}", values({ task }))
      expect(text).toBe("\nContext:\n- relevant files: src/parser.ts; test/parser.test.ts\n- priority: P1\n")
      expect(renderPrompt("[{{task_context}}]", values())).toBe("[]")
    }))

  it.effect("unknown placeholders stay; values are inserted once, never expanded again", () =>
    Effect.sync(() => {
      const text = renderPrompt(
        "{{mission}} {{unknown}} {{ agent_id }} {{AGENT_ID}}",
        values({ mission: "do {{agent_id}} $(id)" })
      )
      expect(text).toBe("do {{agent_id}} $(id) {{unknown}} {{ agent_id }} {{AGENT_ID}}")
    }))
})
