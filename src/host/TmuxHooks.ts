/**
 * The global tmux hooks spawnkit installs with every agent's session: `pane-died` runs `spawnkit agent-exited` for
 * the pane, which records the agent's exit (src/lifecycle/ExitHook.ts).
 */
import { cliScript } from "./PackagePaths.js"

// Security: the hook is a shell command run by tmux; it is built only from the Node binary and the CLI script path
// (checked below) and tmux's own `#{pane_id}` and `#{socket_path}`, never from anything a caller supplies.
const SAFE_PATH = /^[A-Za-z0-9_./@+-]+$/

/** The global tmux hooks spawnkit installs with every session (none if the install path is unusual). */
export const exitHooks: Readonly<Record<string, string>> = SAFE_PATH.test(process.execPath) && SAFE_PATH.test(cliScript)
  ? {
    "pane-died":
      `run-shell -b "'${process.execPath}' '${cliScript}' agent-exited --pane '#{pane_id}' --socket '#{socket_path}'"`
  }
  : {}
