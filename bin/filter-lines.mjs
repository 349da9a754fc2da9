// The worker thread of spawnkit's output filters (src/reports/LineFilter.ts). It compiles the caller's pattern with
// re2js once, then answers each batch of lines with whether each line matches. It runs apart from the main thread so
// that a pattern whose matching costs too much can be stopped (the worker terminated) at its deadline while the main
// thread goes on serving other calls.
import { parentPort, workerData } from "node:worker_threads"
import { RE2JS } from "re2js"

const filter = RE2JS.compile(workerData.pattern)
parentPort.on("message", (lines) => parentPort.postMessage(lines.map((line) => filter.test(line))))
