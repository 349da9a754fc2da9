// Measures what README's "Library choices" quotes for output filters: JavaScript's backtracking RegExp against re2js
// (linear time) on a catastrophic pattern, and both on an ordinary filter over 5,000 log lines.
// Run: npx node scripts/filter-engines.mjs   (prints numbers; asserts nothing)
import { spawnSync } from "node:child_process"
import { Worker } from "node:worker_threads"
import { RE2JS } from "re2js"

const CATASTROPHIC = "^(a+)+$"
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const REGEXP_LIMIT_MS = 60_000

/** RegExp in a child process, so a run that never ends can be stopped. */
const regexpMs = (pattern, line) => {
  const code = `const r = new RegExp(${JSON.stringify(pattern)}); const l = ${JSON.stringify(line)};
    const t = performance.now(); r.test(l); console.log(performance.now() - t)`
  const out = spawnSync(process.execPath, ["-e", code], { encoding: "utf8", timeout: REGEXP_LIMIT_MS })
  return out.status === 0
    ? `${Number(out.stdout).toFixed(1)} ms`
    : `not done after ${REGEXP_LIMIT_MS / 1000} s (stopped)`
}

/** re2js in this process: the first run (cold, the engine's code not yet optimised) and the median of 20 more. */
const re2Ms = (pattern, line) => {
  const runs = []
  for (let i = 0; i < 21; i++) {
    const t = performance.now()
    RE2JS.compile(pattern).test(line)
    runs.push(performance.now() - t)
  }
  const [cold, ...warm] = runs
  return `${cold.toFixed(2)} ms cold, ${median(warm).toFixed(2)} ms warm`
}

for (const [what, line] of [["30-char line", "a".repeat(29) + "!"], ["10 KB line", "a".repeat(10 * 1024 - 1) + "!"]]) {
  console.log(
    `${CATASTROPHIC} on a ${what}: RegExp ${regexpMs(CATASTROPHIC, line)}, re2js ${re2Ms(CATASTROPHIC, line)}`
  )
}
for (const n of [20, 22, 24, 26]) {
  console.log(`  RegExp, ${n} a's then '!': ${regexpMs(CATASTROPHIC, "a".repeat(n) + "!")}`)
}

// An ordinary log: stream-json-like lines of 150-400 characters, a few with the words filtered for.
const lines = Array.from({ length: 5000 }, (_, i) =>
  JSON.stringify({
    type: i % 3 === 0 ? "assistant" : "user",
    message: {
      content: [{ type: "text", text: `step ${i}: ${"reading src/module" + (i % 17) + ".ts ".repeat(1 + (i % 12))}` }]
    },
    level: i % 97 === 0 ? "error" : i % 41 === 0 ? "warning" : "info"
  }))
const time = (f) => {
  const runs = []
  for (let i = 0; i < 21; i++) {
    const t = performance.now()
    f()
    runs.push(performance.now() - t)
  }
  return median(runs)
}
for (const pattern of ["error|warn(ing)?", "\"type\":\"assistant\".*module1[0-9]", "(?i)STEP 4[0-9]{2}:"]) {
  const js = new RegExp(pattern.replace("(?i)", ""), pattern.startsWith("(?i)") ? "i" : "")
  const re2 = RE2JS.compile(pattern)
  const jsMatches = lines.filter((l) => js.test(l)).length
  const re2Matches = lines.filter((l) => re2.test(l)).length
  const jsMs = time(() => lines.filter((l) => js.test(l)))
  const re2MsMedian = time(() => lines.filter((l) => re2.test(l)))
  const compile = time(() => RE2JS.compile(pattern))
  console.log(
    `${JSON.stringify(pattern)} over 5,000 lines (${(lines.join("\n").length / 1024).toFixed(0)} KiB): ` +
      `RegExp ${jsMs.toFixed(2)} ms (${jsMatches} matches), re2js ${
        re2MsMedian.toFixed(2)
      } ms (${re2Matches} matches), ` +
      `re2js compile ${compile.toFixed(3)} ms`
  )
}

// Linear in the text, but in proportion to the compiled pattern as well: a short pattern with a large program.
let seed = 7
const randomAB = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed & 1 ? "a" : "b"
}
const abLine = Array.from({ length: 10 * 1024 }, randomAB).join("") + "1"
const large = RE2JS.compile("(a|b|ab|ba){1,1000}\\d")
const t = performance.now()
large.test(abLine)
console.log(
  `"(a|b|ab|ba){1,1000}\\\\d" (${large.re2Input.numberOfInstructions()} instructions) on one 10 KB line: ` +
    `re2js ${(performance.now() - t).toFixed(0)} ms`
)

// What spawnkit adds per filtered call: starting the worker thread (bin/filter-lines.mjs) and a round trip of the lines.
const script = new URL("../bin/filter-lines.mjs", import.meta.url)
const roundTrips = []
for (let i = 0; i < 7; i++) {
  const started = performance.now()
  const worker = new Worker(script, { workerData: { pattern: "error|warn(ing)?" } })
  await new Promise((resolve) => {
    worker.once("message", resolve)
    worker.postMessage(lines)
  })
  roundTrips.push(performance.now() - started)
  await worker.terminate()
}
console.log(`worker start + 5,000 lines filtered and answered: median ${median(roundTrips).toFixed(0)} ms of 7`)
