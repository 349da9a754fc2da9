#!/usr/bin/env node
// A stand-in for an agent CLI that prints usage the way Claude Code's stream-json does, at a chosen pace, so metering
// and budgets are tested and measured (the tests, `spawnkit bench`'s budget stop) without API credentials. Run as a
// custom-engine agent (SPAWNKIT_AGENT_FORMAT=claude).
//
//   usage-agent.mjs [--every MS] [--count N] [--output N] [--input N] [--model M] [--exit-code C]
//                   [--rate-limit-in SECONDS] [--hostile] [--replay FILE] [--go FILE]
//                   [--pause-after N --resume FILE]
//
// Each usage line is an assistant message with a new id carrying `output` output tokens and `input` input tokens
// (and a `timestamp` in ms, which metering ignores and tests read). --count N stops after N messages (default: runs
// until stopped) and exits with --exit-code. --rate-limit-in prints a rejected rate_limit_event resetting that many
// seconds ahead, first. --hostile prints hostile lines before the usage (of which only one message of 500 output
// tokens is valid). --replay prints a file's lines at the pace.
import * as Fs from "node:fs"

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`)
  return at === -1 ? fallback : args[at + 1]
}
const every = Number(option("every", "200"))
const count = Number(option("count", "Infinity"))
const output = Number(option("output", "1000"))
const input = Number(option("input", "0"))
const model = option("model", "claude-sonnet-4-5")
const exitCode = Number(option("exit-code", "0"))
const rateLimitIn = option("rate-limit-in", undefined)
const replay = option("replay", undefined)
const session = process.env.SPAWNKIT_AGENT_ID ?? "usage-agent"
const go = option("go", undefined)
const pauseAfter = Number(option("pause-after", "Infinity"))
const resume = option("resume", undefined)

const print = (line) => Fs.writeSync(1, line + "\n")
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (replay !== undefined) {
  for (const line of Fs.readFileSync(replay, "utf8").split("\n")) {
    if (line === "") continue
    print(line)
    await sleep(every)
  }
  process.exit(exitCode)
}

print(JSON.stringify({ type: "system", subtype: "init", session_id: session, model, cwd: process.cwd(), tools: [] }))
// With --go FILE, the usage starts once that file exists (so a test starts a whole tree at once).
while (go !== undefined && !Fs.existsSync(go)) await sleep(20)
if (rateLimitIn !== undefined) {
  print(JSON.stringify({
    type: "rate_limit_event",
    rate_limit_info: {
      status: "rejected",
      resetsAt: Math.floor(Date.now() / 1000) + Number(rateLimitIn),
      rateLimitType: "five_hour"
    },
    session_id: session
  }))
}
if (args.includes("--hostile")) {
  const usage = (u) => ({
    type: "assistant",
    message: { id: `msg_hostile_${Math.random()}`, model, role: "assistant", content: [], usage: u },
    session_id: session
  })
  print("{\"type\":\"assistant\",\"message\":{\"id\":\"msg_trunc")
  print("x".repeat(10 * 1024 * 1024))
  print(JSON.stringify(usage({ input_tokens: -5000, output_tokens: -1000 })))
  print(JSON.stringify(usage({ input_tokens: "NaN", output_tokens: 1e300 })))
  print(JSON.stringify(usage({ input_tokens: 0.5, output_tokens: 10.25 })))
  print(JSON.stringify({ type: "result", subtype: "success", total_cost_usd: -3, session_id: session }))
  print(JSON.stringify({ type: "result", subtype: "success", total_cost_usd: 0, usage: {}, session_id: session }))
  print(JSON.stringify({ type: "result", subtype: "success", total_cost_usd: 999, session_id: "another-session" }))
  // One message's usage repeated lower (a decreasing count): counted once, at its highest.
  const repeated = (out) => ({
    type: "assistant",
    message: {
      id: "msg_repeated",
      model,
      role: "assistant",
      content: [],
      usage: { input_tokens: 0, output_tokens: out }
    },
    session_id: session
  })
  print(JSON.stringify(repeated(500)))
  print(JSON.stringify(repeated(100)))
  print("[]")
  print("null")
  print(",".repeat(100_000))
}
for (let n = 0; n < count; n++) {
  // With --pause-after N --resume FILE, the usage stops after N messages until that file exists.
  while (n === pauseAfter && resume !== undefined && !Fs.existsSync(resume)) await sleep(20)
  print(JSON.stringify({
    type: "assistant",
    message: {
      id: `msg_${session}_${n}`,
      model,
      role: "assistant",
      content: [{ type: "text", text: `step ${n}` }],
      usage: { input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }
    },
    session_id: session,
    timestamp: Date.now()
  }))
  await sleep(every)
}
process.exit(exitCode)
