/** The pure parts of waiting: which agents a parent's subtree holds, and when a wait holds. */
import { describe, expect, it } from "@effect/vitest"
import type { Agent, AgentStatus } from "../../../src/domain/Agent.js"
import { holds, subtreeOf } from "../../../src/wait/Wait.js"

const agent = (id: string, parent: string, status: AgentStatus = "running"): Agent =>
  ({ id, parent, status }) as unknown as Agent

describe("subtreeOf", () => {
  it("every agent below the parent, at any depth, in record order; the orchestrator's is the whole task", () => {
    const agents = [agent("a", "orchestrator"), agent("b", "a"), agent("c", "orchestrator"), agent("d", "b")]
    expect(subtreeOf(agents, "a").map((x) => x.id)).toEqual(["b", "d"])
    expect(subtreeOf(agents, "orchestrator").map((x) => x.id)).toEqual(["a", "b", "c", "d"])
    expect(subtreeOf(agents, "d")).toEqual([])
  })

  it("finds children recorded before their parent, and survives a cycle in stored parents", () => {
    const agents = [agent("child", "p"), agent("p", "orchestrator"), agent("x", "y"), agent("y", "x")]
    expect(subtreeOf(agents, "orchestrator").map((a) => a.id)).toEqual(["child", "p"])
  })
})

describe("holds", () => {
  it("all: every one ended (vacuously for none); any: one ended; a reservation has not ended", () => {
    const ended = agent("e", "o", "completed")
    const live = agent("l", "o", "running")
    const reserved = agent("r", "o", "reserved")
    expect(holds([], "all")).toBe(true)
    expect(holds([ended], "all")).toBe(true)
    expect(holds([ended, live], "all")).toBe(false)
    expect(holds([ended, live], "any")).toBe(true)
    expect(holds([live, reserved], "any")).toBe(false)
  })
})
