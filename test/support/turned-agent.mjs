// A turned agent, without a sandbox: what a prompt-injected agent would try against its siblings and spawnkit, each
// attempt's outcome printed as one line `TURNED <json>` for the test to judge. Its instructions come in its prompt
// (stdin), on a line `PLAN {"url", "socket", "cli", "sibling": {"taskId", "agentId", "session"}}`; an agent whose
// prompt has none is a well-behaved sibling that works until killed.
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"

const planLine = /^PLAN (\{.*\})$/m.exec(Fs.readFileSync(0, "utf8"))
if (planLine === null) {
  console.log("working")
  setTimeout(() => {}, 600_000)
  await new Promise(() => {})
}
const plan = JSON.parse(planLine[1])
const own = process.env
const outcome = {}

const tmuxOut = (args) => {
  try {
    return execFileSync("tmux", ["-S", plan.socket, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  } catch (e) {
    return `failed: ${e.message}`
  }
}
const SECRETS = /SPAWNKIT_AGENT_SECRET=|SPAWNKIT_AGENT_TOKEN=|SPAWNKIT_HTTP_TOKEN=|ska1\.|sko1\./
// 1. The sibling's secret or token from tmux: its session's environment, the server's, its start command.
outcome.tmuxSessionEnv = SECRETS.test(tmuxOut(["show-environment", "-t", `=${plan.sibling.session}`]))
outcome.tmuxGlobalEnv = SECRETS.test(tmuxOut(["show-environment", "-g"]))
outcome.tmuxStartCommand = SECRETS.test(tmuxOut(["list-panes", "-a", "-F", "#{pane_start_command}"]))
// 2. The orchestrator's credentials in its own environment.
outcome.orchestratorEnv = ["SPAWNKIT_HTTP_TOKEN", "SPAWNKIT_DATABASE_URL"].filter((k) => own[k] !== undefined)

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "turned", version: "1" } }
})
const post = async (url, token) => {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  return (await fetch(url, { method: "POST", headers, body: INITIALIZE })).status
}
// 3. The broker with no token, with the sibling's ids and its own secret, and (the control) with its own token.
outcome.brokerNoToken = await post(plan.url)
outcome.brokerSiblingId = await post(
  plan.url,
  `ska1.${plan.sibling.taskId}.${plan.sibling.agentId}.${own.SPAWNKIT_AGENT_SECRET}`
)
outcome.brokerOwnToken = await post(plan.url, own.SPAWNKIT_AGENT_TOKEN)

// 4. A server of its own, started without a token: it answers no request that carries none.
const server = spawn(process.execPath, [plan.cli, "serve", "--http", "--port", "0"], {
  env: { ...own, SPAWNKIT_HTTP_TOKEN: "" },
  stdio: ["ignore", "ignore", "pipe"]
})
let stderr = ""
server.stderr.on("data", (chunk) => (stderr += chunk))
const url = await new Promise((resolve) => {
  const timer = setInterval(() => {
    const match = /spawnkit MCP server on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr)
    if (match !== null || server.exitCode !== null) {
      clearInterval(timer)
      resolve(match?.[1])
    }
  }, 50)
})
outcome.ownServerNoToken = url === undefined ? `did not start: ${stderr.slice(0, 300)}` : await post(url)
server.kill("SIGTERM")

console.log(`TURNED ${JSON.stringify(outcome)}`)
setTimeout(() => {}, 600_000)
