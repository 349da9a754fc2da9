// Child process for test/integration/AtomicFile.test.ts: writeAtomic(<target>, contents of <source>) with faults from a
// SPAWNKIT_FAULT-style spec (e.g. "registry-after-write:kill"), using the compiled modules from dist/.
// Prints "written" and exits 0 when the write completes.
import { NodeServices } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { FaultInjection } from "../../dist/faults/FaultInjection.js"
import { writeAtomic } from "../../dist/registry/AtomicFile.js"

const [target, source, spec] = process.argv.slice(2)
const program = Effect.gen(function*() {
  const faults = yield* FaultInjection
  yield* writeAtomic(target, Fs.readFileSync(source, "utf8"), faults)
}).pipe(Effect.provide(FaultInjection.fromSpec(spec ?? "")), Effect.provide(NodeServices.layer))

Effect.runPromise(program).then(
  () => {
    process.stdout.write("written\n")
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`atomic-write failed: ${error?.stack ?? error}\n`)
    process.exit(1)
  }
)
