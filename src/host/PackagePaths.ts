/**
 * Locations inside the installed spawnkit package, found from this module's own URL (it sits two levels below the
 * package root both in `src/` and in `dist/`).
 */
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

/** The package root. */
export const packageRoot = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The compiled CLI entry point, run by tmux's pane-died hook to record an agent's exit. */
export const cliScript = NodePath.join(packageRoot, "dist", "cli", "main.js")

/** The agent runner script tmux starts for every agent. */
export const agentRunner = NodePath.join(packageRoot, "bin", "agent-run.sh")

/** The worker thread script of output filters (see reports/LineFilter.ts). */
export const filterWorkerScript = NodePath.join(packageRoot, "bin", "filter-lines.mjs")

/**
 * A stand-in agent that prints usage lines the way Claude Code's stream-json does, at a chosen pace: the budget-stop
 * measurement of the benchmark (and the tests) run it as a custom-engine agent metered as Claude's output.
 */
export const usageAgentScript = NodePath.join(packageRoot, "bin", "usage-agent.mjs")

/**
 * A stand-in agent CLI that keeps conversations and resumes them (`--session-id`, `--resume`), so the tests resume an
 * agent end to end as a custom-engine agent.
 */
export const conversationAgentScript = NodePath.join(packageRoot, "bin", "conversation-agent.mjs")
