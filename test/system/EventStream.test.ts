/**
 * The event journal from outside: `GET /events` of `serve --http` as Server-Sent Events (resumed with Last-Event-ID,
 * refused like /mcp), and `spawnkit events` / `spawnkit wait` on the command line. Needs `npm run build` first.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Http from "node:http"
import { type Backend, BACKENDS, cli, makeTestEnv, type TestEnv } from "../support/Harness.js"
import {
  disposeEnv,
  killServers,
  ok,
  type Served,
  startHttp,
  startServerProcess,
  waitFor,
  within
} from "../support/Mcp.js"

const servers: Array<Served> = []
const envs: Array<TestEnv> = []
afterEach(async () => {
  await killServers(servers.splice(0))
  for (const env of envs.splice(0)) await disposeEnv(env)
})

const serveHttp = async (backend: Backend) => {
  const env = makeTestEnv("sleep 600", backend)
  envs.push(env)
  const served = await startHttp(env)
  servers.push(served)
  const auth = { authorization: `Bearer ${served.token}` }
  return { env, served, client: served.client, events: served.url!.replace(/\/mcp$/, "/events"), auth }
}

interface SseEvent {
  readonly id?: string
  readonly event?: string
  readonly data: string
}

/** Open an SSE stream and collect its events until `until` holds; the connection is closed after. */
const collect = async (url: string, headers: Record<string, string>, until: (events: Array<SseEvent>) => boolean) => {
  const controller = new AbortController()
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: controller.signal })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toBe("text/event-stream")
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  const events: Array<SseEvent> = []
  let buffer = ""
  try {
    while (!until(events)) {
      const { value, done } = await within("an SSE chunk", reader.read(), 30_000)
      if (done) break
      buffer += value
      let end: number
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const fields = block.split("\n").filter((l) => !l.startsWith(":"))
        if (fields.length === 0) continue
        const field = (name: string) => fields.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2)
        events.push({
          ...(field("id") ? { id: field("id")! } : {}),
          ...(field("event") ? { event: field("event")! } : {}),
          data: field("data") ?? ""
        })
      }
    }
  } finally {
    controller.abort()
  }
  return events
}

/** A GET over node:http, which (unlike fetch) lets the test set the Host header; its status. */
const getWithHost = (url: string, host: string, headers: Record<string, string>) =>
  new Promise<number>((resolve, reject) => {
    const req = Http.get(url, { headers: { ...headers, host } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on("error", reject)
  })

const deploy = async (client: Served["client"], taskId: string, prompt: string) =>
  (await ok(client, "deploy_headless_agent", { task_id: taskId, agent_type: "w", prompt, engine: "custom" }))
    .agent_id as string

describe.each(BACKENDS)("GET /events (%s registry)", (backend) => {
  it("streams events live with their sequence numbers; Last-Event-ID resumes with no gap and no duplicate", async () => {
    const { auth, client, events } = await serveHttp(backend)
    const { task_id } = await ok(client, "create_real_task", { description: "sse" })
    const live = collect(events, auth, (e) => e.length >= 4)
    const a = await deploy(client, task_id, "a")
    const b = await deploy(client, task_id, "b")
    await ok(client, "kill_real_agent", { task_id, agent_id: a })
    await ok(client, "kill_real_agent", { task_id, agent_id: b })
    const seen = await live
    expect(seen.map((e) => e.id)).toEqual(["1", "2", "3", "4"])
    expect(seen.map((e) => e.event)).toEqual(["spawned", "spawned", "killed", "killed"])
    expect(seen.map((e) => JSON.parse(e.data).agent_id)).toEqual([a, b, a, b])
    // A client that saw up to 2 reconnects: it gets 3 and 4, exactly.
    const resumed = await collect(events, { ...auth, "last-event-id": "2" }, (e) => e.length >= 2)
    expect(resumed.map((e) => e.id)).toEqual(["3", "4"])
    // And a filtered one only its task's events.
    const other = (await ok(client, "create_real_task", { description: "other" })).task_id
    const c = await deploy(client, other, "c")
    const filtered = await collect(`${events}?task=${other}`, auth, (e) => e.length >= 1)
    expect(filtered.map((e) => [e.id, JSON.parse(e.data).agent_id])).toEqual([["5", c]])
  })
})

describe("GET /events refusals", () => {
  it("refuses a malformed Last-Event-ID or task, other methods, a foreign Origin or Host, a missing token", async () => {
    const env = makeTestEnv()
    envs.push(env)
    const token = "events-token-0123456789abcdef"
    const server = startServerProcess(env, ["--http", "--port", "0", "--token", token])
    let url = ""
    await waitFor("server listens", () => {
      const m = /on (http:\/\/\S+)\/mcp/.exec(server.stderr())
      if (m !== null) url = `${m[1]}/events`
      return m !== null
    }, 60_000)
    const auth = { authorization: `Bearer ${token}` }
    const status = async (init: RequestInit, path = url) => (await fetch(path, init)).status
    expect(await status({ headers: { ...auth, "last-event-id": "abc" } })).toBe(400)
    expect(await status({ headers: { ...auth, "last-event-id": "-1" } })).toBe(400)
    expect(await status({ headers: auth }, `${url}?since=1e3`)).toBe(400)
    expect(await status({ headers: auth }, `${url}?task=..%2F..%2Fetc`)).toBe(400)
    expect(await status({ method: "POST", headers: auth })).toBe(405)
    expect(await status({ headers: { ...auth, origin: "https://evil.example" } })).toBe(403)
    expect(await getWithHost(url, "evil.example", auth)).toBe(403)
    expect(await status({})).toBe(401)
    expect(await status({ headers: { authorization: "Bearer wrong" } })).toBe(401)
    server.proc.kill("SIGTERM")
    await within("server exits", server.exit, 30_000)
  })
})

describe("spawnkit events and wait on the command line", () => {
  it("prints the journal as JSON lines from a sequence number, and wait exits 75 on timeout, 0 when done", async () => {
    const env = makeTestEnv(`sh -c "exit 4"`)
    envs.push(env)
    const created = JSON.parse((await cli(env, ["task", "create", "--description", "cli", "--json"])).stdout)
    const spawned = JSON.parse(
      (await cli(env, [
        "spawn",
        "--task",
        created.task_id,
        "--type",
        "w",
        "--prompt",
        "p",
        "--engine",
        "custom",
        "--json"
      ]))
        .stdout
    )
    const done = await cli(env, ["wait", "--task", created.task_id, "--agent", spawned.agent_id, "--timeout", "120"])
    expect(done.status).toBe(0)
    expect(done.stdout).toContain(`${spawned.agent_id}: failed (exit 4)`)
    const lines = (await cli(env, ["events"])).stdout.trim().split("\n").map((l) => JSON.parse(l))
    expect(lines.map((e) => [e.seq, e.kind, e.exit_code])).toEqual([[1, "spawned", undefined], [2, "exited", 4]])
    const after = (await cli(env, ["events", "--since", "1", "--task", created.task_id])).stdout.trim().split("\n")
    expect(after.map((l) => JSON.parse(l).seq)).toEqual([2])
    const bad = await cli(env, ["events", "--since", "-3"])
    expect(bad.status).toBe(1)
    expect(bad.stdout).toContain("InvalidInput")
    const sleeper = makeTestEnv("sleep 600")
    envs.push(sleeper)
    const t2 = JSON.parse((await cli(sleeper, ["task", "create", "--description", "t", "--json"])).stdout).task_id
    await cli(sleeper, ["spawn", "--task", t2, "--type", "w", "--prompt", "p", "--engine", "custom"])
    const timedOut = await cli(sleeper, ["wait", "--task", t2, "--timeout", "0.3", "--json"])
    expect(timedOut.status).toBe(75)
    expect(JSON.parse(timedOut.stdout)).toMatchObject({ timed_out: true, satisfied: false })
  })
})
