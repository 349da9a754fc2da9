/**
 * Resource subscriptions of the real `spawnkit serve`, over stdio and HTTP: after `resources/subscribe`, a spawn and a
 * kill in the subscribed task send `notifications/resources/updated` for the task's status and timeline and for
 * tasks://list; after `resources/unsubscribe` of a URI, it is no longer notified; an agent's server is notified of
 * its own task only.
 *
 * WIP: this needs the Events implementation (the event journal) being written on main; on this branch Spawnkit.layer()
 * provides a placeholder journal that never advances, so these tests fail until the merge.
 *
 * Needs `npm run build` first.
 */
import { describe, expect, it } from "@effect/vitest"
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import * as Fs from "node:fs"
import { CLI } from "../support/Harness.js"
import { agentSecret, type Kind, ok, ownedPerTest, startServer, waitFor } from "../support/Mcp.js"

expect(Fs.existsSync(CLI), "run `npm run build` before these tests").toBe(true)

const { newEnv, own } = ownedPerTest()
const NO_RECONCILE = { SPAWNKIT_RECONCILE_INTERVAL: "0" }

describe.each<Kind>(["stdio", "http"])("resource subscriptions over %s", (kind) => {
  it(
    "a spawn and a kill notify the subscribed task's status, timeline and the listing; unsubscribe stops it",
    async () => {
      const env = newEnv()
      const served = own(await startServer(kind, env, NO_RECONCILE))
      const client = served.client
      const updated: Array<string> = []
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri))
      const taskId = (await ok(client, "create_real_task", { description: "subscribed" })).task_id
      const status = `task://${taskId}/status`
      const timeline = `task://${taskId}/progress-timeline`
      for (const uri of [status, timeline, "tasks://list"]) await client.subscribeResource({ uri })

      const agent = await ok(client, "deploy_headless_agent", { task_id: taskId, agent_type: "a", prompt: "work" })
      await waitFor(
        "updates after the spawn",
        () => [status, timeline, "tasks://list"].every((u) => updated.includes(u))
      )

      await client.unsubscribeResource({ uri: timeline })
      updated.length = 0
      await ok(client, "kill_real_agent", { task_id: taskId, agent_id: agent.agent_id, reason: "done" })
      await waitFor("updates after the kill", () => updated.includes(status) && updated.includes("tasks://list"))
      expect(updated).not.toContain(timeline)
    },
    120_000
  )
})

describe("an agent's subscriptions", () => {
  it("an agent's server is notified of its own task's changes only", async () => {
    const env = newEnv()
    const orchestrator = own(await startServer("stdio", env, NO_RECONCILE)).client
    const taskId = (await ok(orchestrator, "create_real_task", { description: "mine" })).task_id
    const otherId = (await ok(orchestrator, "create_real_task", { description: "theirs" })).task_id
    const alpha = await ok(orchestrator, "deploy_headless_agent", { task_id: taskId, agent_type: "a", prompt: "w" })
    const secret = await agentSecret(env.socket, alpha.tmux_session)
    const agent = own(
      await startServer("stdio", env, {
        ...NO_RECONCILE,
        SPAWNKIT_TASK_ID: taskId,
        SPAWNKIT_AGENT_ID: alpha.agent_id,
        SPAWNKIT_AGENT_SECRET: secret
      })
    ).client
    const updated: Array<string> = []
    agent.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri))
    await agent.subscribeResource({ uri: "tasks://list" })
    await agent.subscribeResource({ uri: `task://${taskId}/status` })
    // A change elsewhere first, then one in the agent's task: when the second is notified, the first would have been.
    await ok(orchestrator, "deploy_headless_agent", { task_id: otherId, agent_type: "b", prompt: "w" })
    await ok(orchestrator, "deploy_headless_agent", { task_id: taskId, agent_type: "c", prompt: "w" })
    await waitFor("the own task's update", () => updated.includes(`task://${taskId}/status`))
    expect(updated.every((u) => u === "tasks://list" || u === `task://${taskId}/status`)).toBe(true)
  }, 120_000)
})
