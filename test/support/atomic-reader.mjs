// Child process for test/integration/AtomicFile.test.ts: reads <target> in a tight loop while another process rewrites it.
//
// Prints "ready" after the first read, keeps reading until a "stop" line on stdin (or stdin closes), then prints one
// JSON line: the number of reads, the reads that did not parse as a complete document, and how many times each
// distinct content (by SHA-256 of the raw bytes) was seen, so the test can check each against what was written.
import { createHash } from "node:crypto"
import * as Fs from "node:fs"

const target = process.argv[2]
let stop = false
let input = ""
process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk) => {
  input += chunk
  if (input.split("\n").includes("stop")) stop = true
})
process.stdin.on("end", () => {
  stop = true
})

let reads = 0
const errors = []
const seen = new Map()

const readOnce = () => {
  const bytes = Fs.readFileSync(target)
  reads++
  const hash = createHash("sha256").update(bytes).digest("hex")
  seen.set(hash, (seen.get(hash) ?? 0) + 1)
  try {
    const doc = JSON.parse(bytes.toString("utf8"))
    if (!Array.isArray(doc.agents) || doc.agents.length !== doc.count) {
      errors.push(`read ${reads}: ${bytes.length} bytes parse but hold ${doc.agents?.length} of ${doc.count} agents`)
    }
  } catch (error) {
    errors.push(`read ${reads}: ${bytes.length} bytes do not parse: ${error.message}`)
  }
}

readOnce()
process.stdout.write("ready\n")
while (!stop) {
  for (let i = 0; i < 20; i++) readOnce()
  await new Promise((resolve) => setImmediate(resolve))
}
process.stdout.write(
  JSON.stringify({ reads, errorCount: errors.length, errors: errors.slice(0, 10), seen: Object.fromEntries(seen) }) +
    "\n"
)
process.exit(0)
