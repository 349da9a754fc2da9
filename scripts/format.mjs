// The formatter: dprint's TypeScript plugin (WebAssembly, from @dprint/typescript) run through @dprint/formatter, with
// the settings of dprint.json, over the tracked TypeScript and JavaScript files it includes.
//   node scripts/format.mjs          rewrite every file that is not formatted
//   node scripts/format.mjs --check  list them and exit 1 (npm run lint)
// Run in-process rather than through dprint's CLI package, whose binaries come as one npm package per platform.
import { createFromBuffer } from "@dprint/formatter"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
const config = JSON.parse(Fs.readFileSync(NodePath.join(root, "dprint.json"), "utf8"))
const formatter = createFromBuffer(Fs.readFileSync(NodePath.join(root, config.plugins[0])))
formatter.setConfig({ lineWidth: config.lineWidth, indentWidth: config.indentWidth }, config.typescript)
const diagnostics = formatter.getConfigDiagnostics()
if (diagnostics.length > 0) {
  console.error(`dprint.json: ${diagnostics.map((d) => `${d.propertyName}: ${d.message}`).join("; ")}`)
  process.exit(2)
}

// dprint.json's includes: a folder and an extension (`src/**/*.ts`) or a top-level pattern (`*.ts`).
const patterns = config.includes.map((glob) => {
  const [, dir, ext] = /^(?:(.*)\/\*\*\/)?\*(\.[a-z]+)$/.exec(glob) ?? []
  if (ext === undefined) throw new Error(`dprint.json: unsupported include ${glob}`)
  return (file) => file.endsWith(ext) && (dir === undefined ? !file.includes("/") : file.startsWith(dir + "/"))
})
const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
  cwd: root,
  encoding: "utf8"
})
  .split("\n")
  .filter((f) => f !== "" && Fs.existsSync(NodePath.join(root, f)) && patterns.some((matches) => matches(f)))

const check = process.argv.includes("--check")
const unformatted = []
for (const file of files) {
  const path = NodePath.join(root, file)
  const text = Fs.readFileSync(path, "utf8")
  const formatted = formatter.formatText({ filePath: path, fileText: text })
  if (formatted === text) continue
  unformatted.push(file)
  if (!check) Fs.writeFileSync(path, formatted)
}
if (check && unformatted.length > 0) {
  console.error(`not formatted (npm run format fixes them):\n  ${unformatted.join("\n  ")}`)
  process.exit(1)
}
console.error(
  `${files.length} files ${check ? "checked" : "formatted"}${check ? "" : `, ${unformatted.length} changed`}`
)
