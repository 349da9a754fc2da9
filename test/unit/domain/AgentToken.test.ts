/**
 * Agent tokens: formatted from validated ids and a secret, parsed back exactly; anything else is no token.
 */
import { describe, expect, it } from "@effect/vitest"
import { formatAgentToken, parseAgentToken } from "../../../src/domain/AgentToken.js"
import type { AgentId, TaskId } from "../../../src/domain/Ids.js"

const TASK = "TASK-20261203-140000-0000abcd" as TaskId
const AGENT = "worker-140000-0000002a" as AgentId
const SECRET = "ab".repeat(32)

describe("agent tokens", () => {
  it("round-trips ids and secret", () => {
    const token = formatAgentToken(TASK, AGENT, SECRET)
    expect(token).toBe(`ska1.${TASK}.${AGENT}.${SECRET}`)
    expect(parseAgentToken(token)).toEqual({ taskId: TASK, agentId: AGENT, secret: SECRET })
  })

  it.each([
    ["another prefix", `ska2.${TASK}.${AGENT}.${SECRET}`],
    ["a part missing", `ska1.${TASK}.${SECRET}`],
    ["a part too many", `ska1.${TASK}.${AGENT}.x.${SECRET}`],
    ["a task id outside the allow-list", `ska1.TASK-../x.${AGENT}.${SECRET}`],
    ["an agent id outside the allow-list", `ska1.${TASK}.a/b.${SECRET}`],
    ["a short secret", `ska1.${TASK}.${AGENT}.${SECRET.slice(2)}`],
    ["an upper-case secret", `ska1.${TASK}.${AGENT}.${SECRET.toUpperCase()}`],
    ["the orchestrator's token", "secret-token"],
    ["nothing", ""]
  ])("%s is no token", (_what, text) => {
    expect(parseAgentToken(text)).toBeUndefined()
  })
})
