// Bundles the command line (src/cli/main.ts) into dist/cli/main.js, replacing tsc's output of that one file, with
// each command's lazily imported modules split into chunks under dist/bundle/. Run by `npm run build` after tsc.
//
// Why: every spawnkit command, exit hook and agent MCP server is a new Node process, and resolving and loading the
// hundreds of files of effect, the MCP SDK and the rest takes most of its start. The bundle keeps only what is used
// (effect's barrels are tree-shaken) in a few files; a command loads the chunks it imports and no others.
// benchmarks/README.md (start-up) has the figures.
import * as esbuild from "esbuild"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
const chunks = NodePath.join(root, "dist", "bundle")
// Chunks of an earlier build are never loaded again; remove them so dist/ holds one build.
Fs.rmSync(chunks, { recursive: true, force: true })

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { "cli/main": "src/cli/main.ts" },
  outdir: "dist",
  // Invariant: entry and chunks sit two levels below the package root, as src/host/PackagePaths.ts expects of the
  // module it is compiled into.
  chunkNames: "bundle/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  // os-lock is a native addon, loaded from node_modules; pg-native is pg's optional driver, never installed here.
  external: ["os-lock", "pg-native"],
  // CommonJS dependencies bundled into ES modules still call require() for Node's built-in modules.
  banner: {
    js:
      "import { createRequire as __spawnkitRequire } from \"node:module\"; const require = __spawnkitRequire(import.meta.url);"
  },
  sourcemap: "linked",
  sourcesContent: false,
  metafile: true,
  logLevel: "warning"
})
// What each output holds, for tests and for anyone asking why a chunk is loaded.
Fs.writeFileSync(NodePath.join(chunks, "meta.json"), JSON.stringify(result.metafile))

// The dashboard's page (dashboard/app.ts, plain TypeScript and the DOM) for browsers, and its stylesheet, served by
// `serve --http` from dist/dashboard/ (src/mcp/Dashboard.ts): built from the repository, nothing from a CDN.
const dashboard = NodePath.join(root, "dist", "dashboard")
Fs.rmSync(dashboard, { recursive: true, force: true })
await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: "dashboard/app.ts" },
  outdir: dashboard,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  logLevel: "warning"
})
Fs.copyFileSync(NodePath.join(root, "dashboard", "app.css"), NodePath.join(dashboard, "app.css"))
