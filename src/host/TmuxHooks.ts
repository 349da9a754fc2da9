/**
 * The global tmux hooks spawnkit installs with every agent's session: `pane-died` runs `spawnkit agent-exited` for
 * the pane, which records the agent's exit (src/lifecycle/ExitHook.ts). It is the fallback for exits no supervisor
 * records (src/supervisor/Supervisor.ts): a pane whose runner saw a live supervisor carries the pane option
 * `@spawnkit_supervised`, and for it the hook only evaluates that format inside tmux, starting no process.
 */
import { cliScript } from "./PackagePaths.js"

// Security: the hook is a shell command run by tmux; it is built only from the Node binary and the CLI script path
// (checked below) and tmux's own `#{pane_id}` and `#{socket_path}`, never from anything a caller supplies.
const SAFE_PATH = /^[A-Za-z0-9_./@+-]+$/

/** The pane option an agent runner sets when a supervisor will record its exit (see bin/agent-run.sh). */
export const SUPERVISED_OPTION = "@spawnkit_supervised"

/** The global tmux hooks spawnkit installs with every session (none if the install path is unusual). */
export const exitHooks: Readonly<Record<string, string>> = SAFE_PATH.test(process.execPath) && SAFE_PATH.test(cliScript)
  ? {
    "pane-died": `if-shell -F '#{${SUPERVISED_OPTION}}' '' ` +
      `"run-shell -b \\"'${process.execPath}' '${cliScript}' agent-exited --pane '#{pane_id}' --socket '#{socket_path}'\\""`
  }
  : {}
