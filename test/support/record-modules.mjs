// Preloaded with `node --import` by test/system/Startup.test.ts: records the URL of every module the process resolves (ES
// modules, and CommonJS files through require) and writes them, one a line, to SPAWNKIT_TEST_MODULES_FILE on exit.
import * as Fs from "node:fs"
import * as Module from "node:module"

const out = process.env["SPAWNKIT_TEST_MODULES_FILE"]
if (out === undefined) throw new Error("record-modules.mjs needs SPAWNKIT_TEST_MODULES_FILE")
const urls = new Set()
Module.registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context)
    urls.add(resolved.url)
    return resolved
  }
})
process.on("exit", () => Fs.writeFileSync(out, [...urls].join("\n") + "\n"))
