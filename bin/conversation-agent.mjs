#!/usr/bin/env node
// A stand-in for an agent CLI that keeps conversations and resumes them, as Claude Code does with --session-id and
// --resume, so resuming is tested end to end without API credentials. Run as a custom-engine agent
// (SPAWNKIT_AGENT_FORMAT=claude), with SPAWNKIT_AGENT_COMMAND / SPAWNKIT_AGENT_RESUME_COMMAND such as
//
//   conversation-agent.mjs --store DIR --session-id {session_id} [--stay] [--exit-code C]
//   conversation-agent.mjs --store DIR --resume {session_id} [--stay] [--exit-code C]
//
// A conversation is the file DIR/<id>.jsonl, one line per turn: the prompt (read on stdin) and the directory the turn
// ran in. Each run prints a Claude-shaped init line carrying the conversation id, then `turn N: <prompt>`. A resume of
// a conversation that has no file prints Claude Code's own words ("No conversation found with session ID: <id>") and
// exits 1. --stay keeps running after the turn (until killed); otherwise it exits with --exit-code (default 0).
import * as Fs from "node:fs"
import * as NodePath from "node:path"

const args = process.argv.slice(2)
const option = (name) => {
  const at = args.indexOf(`--${name}`)
  return at === -1 ? undefined : args[at + 1]
}
const store = option("store")
const resume = option("resume")
const id = resume ?? option("session-id")
const exitCode = Number(option("exit-code") ?? "0")
const print = (line) => Fs.writeSync(1, line + "\n")

if (store === undefined || id === undefined || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(id)) {
  print("usage: conversation-agent.mjs --store DIR (--session-id ID | --resume ID) [--stay] [--exit-code C]")
  process.exit(2)
}
const file = NodePath.join(store, `${id}.jsonl`)
if (resume !== undefined && !Fs.existsSync(file)) {
  print(`No conversation found with session ID: ${id}`)
  process.exit(1)
}
const prompt = Fs.readFileSync(0, "utf8").trim()
Fs.mkdirSync(store, { recursive: true })
Fs.appendFileSync(file, JSON.stringify({ prompt, cwd: process.cwd() }) + "\n")
const turns = Fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").length
print(JSON.stringify({ type: "system", subtype: "init", session_id: id, model: "conversation-agent", cwd: process.cwd() }))
print(`turn ${turns}: ${prompt.split("\n")[0]}`)
if (args.includes("--stay")) setInterval(() => {}, 1 << 30)
else process.exit(exitCode)
