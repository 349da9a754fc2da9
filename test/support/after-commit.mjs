#!/usr/bin/env node
// Run an agent's command only once its spawn has committed: a test agent that exits at once (an unknown conversation,
// no credentials) would otherwise race its own commit, and an agent that dies before it leaves no record (the spawn
// fails with AgentExitedAtStartup). Used as an agent command's prefix:
//
//   after-commit.mjs [--argv-log FILE] -- COMMAND [ARG...]
//
// It waits (polling the file registry, 50 ms) until the record named by SPAWNKIT_HOME, SPAWNKIT_TASK_ID and
// SPAWNKIT_AGENT_ID (the agent's own environment) is no longer `reserved`, appends its COMMAND and ARGs as one JSON line
// to FILE if given, then runs COMMAND with its stdin, stdout and stderr and exits with its status. It gives up (exit
// 97) when the record is gone or still reserved after 60 s.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"

const args = process.argv.slice(2)
const dash = args.indexOf("--")
const options = dash === -1 ? [] : args.slice(0, dash)
const command = dash === -1 ? args : args.slice(dash + 1)
const argvLogAt = options.indexOf("--argv-log")
const argvLog = argvLogAt === -1 ? undefined : options[argvLogAt + 1]
const { SPAWNKIT_HOME: home, SPAWNKIT_TASK_ID: taskId, SPAWNKIT_AGENT_ID: agentId } = process.env
if (command.length === 0 || home === undefined || taskId === undefined || agentId === undefined) {
  process.stderr.write("usage: after-commit.mjs [--argv-log FILE] -- COMMAND [ARG...] (in a spawnkit agent)\n")
  process.exit(2)
}

const statusOf = () => {
  try {
    const task = JSON.parse(Fs.readFileSync(NodePath.join(home, taskId, "AGENT_REGISTRY.json"), "utf8"))
    return task.agents.find((a) => a.id === agentId)?.status
  } catch {
    return "unreadable"
  }
}
const pause = new Int32Array(new SharedArrayBuffer(4))
const deadline = Date.now() + 60_000
for (;;) {
  const status = statusOf()
  if (status === undefined || Date.now() > deadline) {
    process.stderr.write(`after-commit: agent ${agentId} is ${status ?? "gone"}; not starting ${command[0]}\n`)
    process.exit(97)
  }
  if (status !== "reserved" && status !== "unreadable") break
  Atomics.wait(pause, 0, 0, 50)
}
if (argvLog !== undefined) Fs.appendFileSync(argvLog, JSON.stringify(command) + "\n")
const run = spawnSync(command[0], command.slice(1), { stdio: "inherit" })
if (run.error !== undefined) {
  process.stderr.write(`after-commit: ${command[0]}: ${run.error.message}\n`)
  process.exit(127)
}
process.exit(run.status ?? 128 + 15)
