/**
 * Agent command builders: the argv that starts each engine. The prompt never appears here: it reaches the agent on
 * stdin from its prompt file (or as the file's path, for a custom template that asks for `{prompt_file}`).
 */
import * as Result from "effect/Result"
import { parse as parseShellWords } from "shell-quote"
import type { Engine } from "../domain/Agent.js"
import { InvalidConfiguration } from "../domain/Errors.js"
import type { OutputFormat } from "../domain/Usage.js"

/** What a command builder may refer to. */
export interface CommandContext {
  readonly agentId: string
  readonly taskId: string
  readonly promptFile: string
  readonly logFile: string
  readonly claudeModel?: string | undefined
  /** Claude Code's pre-assigned session id, recorded so the agent can be resumed. */
  readonly claudeSessionId?: string | undefined
  /** Claude Code's MCP configuration file for the agent (the broker's endpoint; the token comes from its environment). */
  readonly mcpConfigFile?: string | undefined
  /** The host broker's MCP endpoint, for an engine configured on its command line (Codex). */
  readonly brokerUrl?: string | undefined
  /** The custom engine's template (SPAWNKIT_AGENT_COMMAND). */
  readonly customTemplate?: string | undefined
  /** The custom engine's resume template (SPAWNKIT_AGENT_RESUME_COMMAND). */
  readonly customResumeTemplate?: string | undefined
  /** The agent's pre-assigned conversation id (`{session_id}` of a custom template). */
  readonly sessionId?: string | undefined
  /** Set for a resume: the conversation id to resume (validated: it never starts with `-`). */
  readonly resumeSessionId?: string | undefined
  /** What the agent may still spend in USD under the budgets covering it (Claude Code's `--max-budget-usd`). */
  readonly maxBudgetUsd?: number | undefined
}

/**
 * The output format an engine's agents print, which metering reads: each CLI's own JSON lines (the commands below ask
 * for them); the custom engine's is configured (SPAWNKIT_AGENT_FORMAT), `none` unless said.
 */
export const outputFormatOf = (engine: Engine, custom: OutputFormat): OutputFormat =>
  engine === "custom" ? custom : engine

/**
 * How an engine's agents reach spawnkit's MCP tools: through the host's broker, with their own bearer token
 * (Claude Code takes it from its `--mcp-config` file, Codex from `-c mcp_servers.…` overrides; both read the token from
 * the agent's environment, SPAWNKIT_AGENT_TOKEN, so no file or command line holds it), or not at all. Gemini CLI takes
 * MCP servers only from settings files: an isolated Gemini agent gets one in its own worktree (see
 * worktree/GeminiSettings.ts); spawnkit writes none into a user's checkout, so a Gemini agent that is not isolated
 * gets no spawnkit server, and neither does a custom command (the user's own).
 */
export const mcpAccessOf = (engine: Engine, isolated: boolean): "broker" | "none" =>
  engine === "claude" || engine === "codex" || (engine === "gemini" && isolated) ? "broker" : "none"

/** The environment variable an agent's runner puts its bearer token in, for its CLI's MCP configuration to name. */
export const AGENT_TOKEN_VARIABLE = "SPAWNKIT_AGENT_TOKEN"

/**
 * Codex's options that make the broker an MCP server of this run only (no file written): Codex sends the named
 * variable's value as its bearer token. The URL is a validated loopback one (host/Brokers.ts); JSON quoting is TOML's.
 */
const codexBroker = (url: string) => [
  "-c",
  `mcp_servers.spawnkit.url=${JSON.stringify(url)}`,
  "-c",
  `mcp_servers.spawnkit.bearer_token_env_var=${JSON.stringify(AGENT_TOKEN_VARIABLE)}`
]

/** A USD amount for `--max-budget-usd`: cents rounded down, never below one cent (zero would mean no agent at all). */
export const budgetArgument = (usd: number): string => (Math.max(1, Math.floor(usd * 100)) / 100).toFixed(2)

/**
 * Split a custom command template into words, shell-style quoting allowed but no shell features: operators,
 * globs, comments and `$VAR` expansions are refused, so the template means exactly the argv it spells.
 */
export const parseTemplate = (
  template: string,
  variable = "SPAWNKIT_AGENT_COMMAND"
): Result.Result<ReadonlyArray<string>, InvalidConfiguration> => {
  // shell-quote reads a line break as a space and a backquote as a plain character, where a shell would start a
  // second command or a command substitution: refuse both rather than run an argv the template does not spell.
  if (/[\r\n]/.test(template)) {
    return Result.fail(
      new InvalidConfiguration({
        variable,
        reason: "a line break is not allowed; write one command"
      })
    )
  }
  if (template.includes("`")) {
    return Result.fail(
      new InvalidConfiguration({
        variable,
        reason: "backquote command substitution is not allowed; spawnkit runs the command without a shell"
      })
    )
  }
  const words: Array<string> = []
  let failure: string | undefined
  const entries = parseShellWords(template, (name: string) => {
    failure = `variable $${name} is not expanded; write the value itself`
    return ""
  })
  for (const entry of entries) {
    if (typeof entry === "string") words.push(entry)
    else failure = `shell syntax ${JSON.stringify(entry)} is not allowed; spawnkit runs the command without a shell`
  }
  if (failure !== undefined) {
    return Result.fail(new InvalidConfiguration({ variable, reason: failure }))
  }
  if (words.length === 0) {
    return Result.fail(new InvalidConfiguration({ variable, reason: "it is empty" }))
  }
  return Result.succeed(words)
}

/**
 * Fill `{prompt_file}`, `{log_file}`, `{agent_id}`, `{task_id}` and `{session_id}` (the conversation to resume, else
 * the agent's pre-assigned one): inside one argument, never re-split.
 */
const substitute = (word: string, ctx: CommandContext) =>
  word
    .replaceAll("{prompt_file}", ctx.promptFile)
    .replaceAll("{log_file}", ctx.logFile)
    .replaceAll("{agent_id}", ctx.agentId)
    .replaceAll("{task_id}", ctx.taskId)
    .replaceAll("{session_id}", ctx.resumeSessionId ?? ctx.sessionId ?? "")

/** The argv that starts `engine` for one agent. */
export const buildCommand = (
  engine: Engine,
  ctx: CommandContext
): Result.Result<ReadonlyArray<string>, InvalidConfiguration> => {
  switch (engine) {
    case "claude":
      return Result.succeed([
        "claude",
        "--print",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        // A resume continues the conversation under its own id; a new agent's id is pre-assigned.
        ...(ctx.resumeSessionId !== undefined
          ? ["--resume", ctx.resumeSessionId]
          : ctx.claudeSessionId !== undefined
          ? ["--session-id", ctx.claudeSessionId]
          : []),
        ...(ctx.mcpConfigFile !== undefined ? ["--mcp-config", ctx.mcpConfigFile] : []),
        ...(ctx.claudeModel !== undefined ? ["--model", ctx.claudeModel] : []),
        ...(ctx.maxBudgetUsd !== undefined ? ["--max-budget-usd", budgetArgument(ctx.maxBudgetUsd)] : [])
      ])
    case "codex":
      // `-` reads the prompt from stdin; `--json` prints JSON lines (usage per turn, the thread id) for metering.
      // Codex CLI 0.169 rejects `--full-auto` ("unexpected argument"); its replacement is the sandbox it stood for
      // (`exec` never asks for approval).
      // A resume is `codex exec … resume <thread id> -`: Codex CLI 0.171 takes `--sandbox` only before `resume`, and
      // does not carry the sandbox over from the first run, so the options are given again, before it.
      return Result.succeed([
        "codex",
        ...(ctx.brokerUrl !== undefined ? codexBroker(ctx.brokerUrl) : []),
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
        ...(ctx.resumeSessionId !== undefined ? ["resume", ctx.resumeSessionId] : []),
        "-"
      ])
    case "gemini":
      // Gemini CLI runs non-interactively on a prompt piped to stdin; stream-json prints JSON lines (session id, token
      // stats) for metering. `--approval-mode yolo` is what the deprecated `--yolo` stood for.
      // A new agent's session id is pre-assigned (`--session-id`), so it can be resumed (`--resume <id>`; the two
      // flags are mutually exclusive) even if its output was never read.
      return Result.succeed([
        "gemini",
        "--output-format",
        "stream-json",
        "--approval-mode",
        "yolo",
        ...(ctx.resumeSessionId !== undefined
          ? ["--resume", ctx.resumeSessionId]
          : ctx.sessionId !== undefined
          ? ["--session-id", ctx.sessionId]
          : [])
      ])
    case "custom":
      if (ctx.resumeSessionId !== undefined) {
        if (ctx.customResumeTemplate === undefined) {
          return Result.fail(
            new InvalidConfiguration({
              variable: "SPAWNKIT_AGENT_RESUME_COMMAND",
              reason: "resuming a custom-engine agent needs it and it is not set; set it to the command that resumes " +
                "a conversation, with {session_id} where its id goes"
            })
          )
        }
        return Result.map(
          parseTemplate(ctx.customResumeTemplate, "SPAWNKIT_AGENT_RESUME_COMMAND"),
          (words) => words.map((w) => substitute(w, ctx))
        )
      }
      if (ctx.customTemplate === undefined) {
        return Result.fail(
          new InvalidConfiguration({
            variable: "SPAWNKIT_AGENT_COMMAND",
            reason:
              "the custom engine needs it and it is not set; set it to the agent's command (for example `sleep 600`)"
          })
        )
      }
      return Result.map(parseTemplate(ctx.customTemplate), (words) => words.map((w) => substitute(w, ctx)))
  }
}
