/**
 * The dashboard of `serve --http`, in the system's headless Chromium (playwright-core) over loopback: a browser logs
 * in with the credential in the URL's fragment, sees a spawned tree, follows a spawn, an exit and a kill as they
 * happen without a reload, reads an agent's output as it comes, and stops an agent with a Kill button; screenshots
 * are saved under test-results/screenshots/. And its security, by plain HTTP requests: the page, its data, the event
 * stream and the POSTs refuse a foreign Origin, a foreign Host and a missing credential as `/mcp` does, and a kill
 * without the session's CSRF header.
 *
 * Needs `npm run build` first (the server and the page's assets come from dist/).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Http from "node:http"
import type { Page } from "playwright-core"
import { formatAgentToken } from "../../src/domain/AgentToken.js"
import type { AgentId, TaskId } from "../../src/domain/Ids.js"
import { launchBrowser, newPage, screenshot } from "../support/Browser.js"
import { readRegistryFile } from "../support/Harness.js"
import { agentSecret, connectHttp, ok, ownedPerTest, type Served, startHttp, waitFor } from "../support/Mcp.js"

const { newEnv, own } = ownedPerTest()

/** Prints its prompt's first line, then ends at once when the prompt says QUICK, else works until killed. */
const AGENT = "sh -c 'p=$(cat); echo \"started: $(echo \"$p\" | grep -o \"job-[a-z0-9]*\" | head -1)\"; " +
  "case \"$p\" in *QUICK*) exit 0;; esac; exec sleep 600'"

const baseOf = (served: Served) => served.url!.replace(/\/mcp$/, "")

/** The status the page shows for an agent, once its row is there. */
const statusShown = (page: Page, agentId: string) =>
  page.locator(`tr[data-agent="${agentId}"]`).getAttribute("data-status", { timeout: 30_000 })

/** Wait until the page shows the agent in this status (no reload: the page follows the event stream). */
const waitShown = async (page: Page, agentId: string, status: string) => {
  const t0 = Date.now()
  await page.locator(`tr[data-agent="${agentId}"][data-status="${status}"]`).waitFor({ timeout: 30_000 })
  return Date.now() - t0
}

describe("the dashboard in a real browser", () => {
  it(
    "logs in, shows the tree live through spawns, an exit and a kill, follows output, and kills by its button",
    async () => {
      const env = newEnv(AGENT)
      const served = own(await startHttp(env))
      const client = served.client
      const browser = await launchBrowser()
      const page = await newPage(browser)

      // The credential in the fragment: never sent to the server, and gone from the address once used.
      await page.goto(`${baseOf(served)}/#token=${encodeURIComponent(served.token!)}`)
      await page.locator("#dashboard").waitFor({ timeout: 30_000 })
      expect(page.url()).toBe(`${baseOf(served)}/`)
      await page.locator("#connection.live").waitFor({ timeout: 30_000 })

      const task = await ok(client, "create_real_task", { description: "dashboard", max_concurrent: 10 })
      const lead = await ok(client, "deploy_headless_agent", {
        task_id: task.task_id,
        agent_type: "lead",
        prompt: "job-lead"
      })
      const spawnMs = await waitShown(page, lead.agent_id, "running")
      // A child of the lead, spawned by the lead through the broker with its own token: shown under it.
      const leadToken = formatAgentToken(
        task.task_id as TaskId,
        lead.agent_id as AgentId,
        await agentSecret(env.socket, lead.tmux_session)
      )
      const asLead = await connectHttp(served.url!, { token: leadToken })
      const child = await ok(asLead, "spawn_child_agent", {
        task_id: task.task_id,
        parent_agent_id: lead.agent_id,
        child_agent_type: "worker",
        child_prompt: "job-child"
      })
      await asLead.close()
      await waitShown(page, child.agent_id, "running")
      const rows = await page.locator(`article[data-task="${task.task_id}"] tr.agent`).evaluateAll((trs) =>
        trs.map((tr: any) => tr.dataset.agent as string)
      )
      expect(rows).toEqual([lead.agent_id, child.agent_id])
      await screenshot(page, "dashboard-tree")

      // An exit.
      const quick = await ok(client, "deploy_headless_agent", {
        task_id: task.task_id,
        agent_type: "quick",
        prompt: "job-quick QUICK"
      })
      const exitMs = await waitShown(page, quick.agent_id, "completed")

      // Its output, when selected.
      await page.locator(`tr[data-agent="${lead.agent_id}"]`).click()
      await page.locator("#output-lines", { hasText: "started: job-lead" }).waitFor({ timeout: 30_000 })
      expect((await page.locator("#output-lines").textContent())!.split("started: job-lead").length - 1).toBe(1)

      // A kill from outside shows; a kill by the page's button (confirmed) stops the agent.
      await ok(client, "kill_real_agent", { task_id: task.task_id, agent_id: child.agent_id })
      const killMs = await waitShown(page, child.agent_id, "killed")
      page.once("dialog", (dialog) => void dialog.accept())
      await page.locator(`button[data-kill="${lead.agent_id}"]`).click()
      await waitShown(page, lead.agent_id, "killed")
      await waitFor(
        "the lead killed in the registry",
        () =>
          readRegistryFile(env.home, task.task_id).agents.find((a: any) => a.id === lead.agent_id)?.status === "killed"
      )
      expect(await statusShown(page, quick.agent_id)).toBe("completed")
      expect(await page.locator("#events li").count()).toBeGreaterThanOrEqual(5)
      await screenshot(page, "dashboard-after-kill")
      console.log(
        `dashboard shown after: spawn ${spawnMs} ms, exit ${exitMs} ms, kill ${killMs} ms (waits from the call's return)`
      )
    },
    240_000
  )
})

/** A request to the server, with the headers given (Host and Origin included), as a browser elsewhere would send. */
const request = (
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {}
) =>
  new Promise<{ status: number; headers: Http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const url = new URL(path, base)
    const req = Http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: options.method ?? "GET",
        headers: options.headers ?? {}
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8").on("data", (d: string) => {
          text += d
          // An event stream stays open: its status and first bytes are the answer.
          if (res.headers["content-type"] === "text/event-stream") req.destroy()
        })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
        res.on("close", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
      }
    )
    req.on("error", (e) => (e.message.includes("socket hang up") ? undefined : reject(e)))
    req.end(options.body)
  })

describe("the dashboard's security", () => {
  it("refuses a foreign Origin or Host and a missing credential like /mcp; a kill needs the session's CSRF header", async () => {
    const env = newEnv("sleep 600")
    const served = own(await startHttp(env))
    const base = baseOf(served)
    const host = new URL(base).host

    // Logging in: the orchestrator's credential only, in a JSON body.
    const wrong = await request(base, "/login", {
      method: "POST",
      headers: { host, "content-type": "application/json" },
      body: JSON.stringify({ token: "sko1.wrong" })
    })
    expect(wrong.status).toBe(401)
    const form = await request(base, "/login", {
      method: "POST",
      headers: { host, "content-type": "application/x-www-form-urlencoded" },
      body: `token=${served.token}`
    })
    expect(form.status).toBe(415)
    const login = await request(base, "/login", {
      method: "POST",
      headers: { host, "content-type": "application/json" },
      body: JSON.stringify({ token: served.token })
    })
    expect(login.status).toBe(200)
    const setCookie = String(login.headers["set-cookie"])
    expect(setCookie).toMatch(/HttpOnly/)
    expect(setCookie).toMatch(/SameSite=Strict/)
    const cookie = setCookie.split(";")[0]!

    const state = await request(base, "/api/state", { headers: { host, cookie } })
    expect(state.status).toBe(200)
    const csrf = JSON.parse(state.text).csrf as string
    const task = await ok(served.client, "create_real_task", { description: "security" })
    const agent = await ok(served.client, "deploy_headless_agent", {
      task_id: task.task_id,
      agent_type: "a",
      prompt: "p"
    })
    const killBody = JSON.stringify({ task_id: task.task_id, agent_id: agent.agent_id })
    const json = { "content-type": "application/json" }

    const cases: ReadonlyArray<
      [string, string, { method?: string; headers: Record<string, string>; body?: string }, number]
    > = [
      ["page without credential", "/", { headers: { host } }, 401],
      ["data without credential", "/api/state", { headers: { host } }, 401],
      ["events without credential", "/events", { headers: { host } }, 401],
      ["page, foreign Origin", "/", { headers: { host, cookie, origin: "https://evil.example" } }, 403],
      ["data, foreign Origin", "/api/state", { headers: { host, cookie, origin: "https://evil.example" } }, 403],
      ["events, foreign Origin", "/events", { headers: { host, cookie, origin: "https://evil.example" } }, 403],
      ["page, foreign Host", "/", { headers: { host: "evil.example", cookie } }, 403],
      ["events, foreign Host", "/events", { headers: { host: "evil.example", cookie } }, 403],
      ["kill without credential", "/api/kill", { method: "POST", headers: { host, ...json }, body: killBody }, 401],
      ["kill, foreign Origin", "/api/kill", {
        method: "POST",
        headers: { host, cookie, origin: "https://evil.example", "x-spawnkit-csrf": csrf, ...json },
        body: killBody
      }, 403],
      ["kill, foreign Host", "/api/kill", {
        method: "POST",
        headers: { host: "evil.example", cookie, "x-spawnkit-csrf": csrf, ...json },
        body: killBody
      }, 403],
      ["kill without the CSRF header", "/api/kill", {
        method: "POST",
        headers: { host, cookie, ...json },
        body: killBody
      }, 403],
      ["kill with a wrong CSRF header", "/api/kill", {
        method: "POST",
        headers: { host, cookie, "x-spawnkit-csrf": `${csrf}x`, ...json },
        body: killBody
      }, 403],
      ["kill as a form post", "/api/kill", {
        method: "POST",
        headers: { host, cookie, "x-spawnkit-csrf": csrf, "content-type": "application/x-www-form-urlencoded" },
        body: "a=b"
      }, 415],
      ["an agent's token", "/api/state", {
        headers: {
          host,
          authorization: `Bearer ${
            formatAgentToken(task.task_id, agent.agent_id, await agentSecret(env.socket, agent.tmux_session))
          }`
        }
      }, 401]
    ]
    for (const [what, path, options, status] of cases) {
      const answer = await request(base, path, options)
      expect(answer.status, `${what}: ${answer.text.slice(0, 200)}`).toBe(status)
    }
    // Nothing above killed anything.
    expect(readRegistryFile(env.home, task.task_id).agents[0].status).toBe("running")

    // The events with the cookie; the page's kill with its CSRF header; a bearer client needs no cookie or header.
    expect((await request(base, "/events", { headers: { host, cookie } })).status).toBe(200)
    const killed = await request(base, "/api/kill", {
      method: "POST",
      headers: { host, cookie, "x-spawnkit-csrf": csrf, ...json },
      body: killBody
    })
    expect(killed.status, killed.text).toBe(200)
    expect(readRegistryFile(env.home, task.task_id).agents[0].status).toBe("killed")
    const bearer = await request(base, "/api/state", { headers: { host, authorization: `Bearer ${served.token}` } })
    expect(bearer.status).toBe(200)
    expect(JSON.parse(bearer.text).csrf).toBeUndefined()
  })
})
