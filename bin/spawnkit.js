#!/usr/bin/env node
// spawnkit's command line; the compiled entry point lives in dist/ (built by `npm install` / `npm run build`).
import "../dist/cli/main.js"
