#!/usr/bin/env node
// spawnkit's command line: the bundled entry point dist/cli/main.js (built by `npm install` / `npm run build`).
import "../dist/cli/main.js"
