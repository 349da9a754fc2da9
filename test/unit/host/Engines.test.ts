/**
 * The argv each engine starts with, and the custom template's parsing: shell-style quoting, no shell features (a
 * template means exactly the argv it spells), placeholders filled inside one argument and never re-split.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { InvalidConfiguration } from "../../../src/domain/Errors.js"
import { buildCommand, type CommandContext, outputFormatOf, parseTemplate } from "../../../src/host/Engines.js"

const CTX: CommandContext = {
  agentId: "worker-120000-0000a001",
  taskId: "TASK-20261202-120000-aaaaaaaa",
  promptFile: "/srv/home/TASK-20261202-120000-aaaaaaaa/prompts/worker-120000-0000a001.prompt",
  logFile: "/srv/home/TASK-20261202-120000-aaaaaaaa/logs/worker-120000-0000a001.log"
}

const argv = (result: Result.Result<ReadonlyArray<string>, InvalidConfiguration>) => {
  if (Result.isFailure(result)) throw new Error(`expected an argv, got ${result.failure.message}`)
  return result.success
}

const refusal = (result: Result.Result<ReadonlyArray<string>, InvalidConfiguration>) => {
  if (Result.isSuccess(result)) throw new Error(`expected a refusal, got ${JSON.stringify(result.success)}`)
  expect(result.failure).toBeInstanceOf(InvalidConfiguration)
  return result.failure
}

describe("buildCommand", () => {
  it.effect("claude: print mode with stream-json, and the session id, MCP config and model only when given", () =>
    Effect.sync(() => {
      const base = [
        "claude",
        "--print",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions"
      ]
      expect(argv(buildCommand("claude", CTX))).toEqual(base)
      expect(argv(buildCommand("claude", {
        ...CTX,
        claudeSessionId: "0b7e2c1a-3f4d-4e5f-8a9b-0c1d2e3f4a5b",
        mcpConfigFile: "/srv/home/x.mcp.json",
        claudeModel: "opus"
      }))).toEqual([
        ...base,
        "--session-id",
        "0b7e2c1a-3f4d-4e5f-8a9b-0c1d2e3f4a5b",
        "--mcp-config",
        "/srv/home/x.mcp.json",
        "--model",
        "opus"
      ])
    }))

  it.effect("codex and gemini: fixed argv reading the prompt from stdin; the prompt file is never on the command line", () =>
    Effect.sync(() => {
      expect(argv(buildCommand("codex", CTX))).toEqual([
        "codex",
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
        "-"
      ])
      expect(argv(buildCommand("gemini", CTX))).toEqual([
        "gemini",
        "--output-format",
        "stream-json",
        "--approval-mode",
        "yolo"
      ])
      for (const engine of ["claude", "codex", "gemini"] as const) {
        expect(argv(buildCommand(engine, { ...CTX, customTemplate: "ignored {prompt_file}" })).join(" ")).not.toContain(
          CTX.promptFile
        )
      }
    }))

  it.effect("claude gets the budget left as --max-budget-usd, in cents rounded down, at least one cent", () =>
    Effect.sync(() => {
      const budgetOf = (usd: number) => {
        const words = argv(buildCommand("claude", { ...CTX, maxBudgetUsd: usd }))
        return words[words.indexOf("--max-budget-usd") + 1]
      }
      expect(budgetOf(1.239)).toBe("1.23")
      expect(budgetOf(0.0001)).toBe("0.01")
      expect(budgetOf(40)).toBe("40.00")
      expect(argv(buildCommand("claude", CTX))).not.toContain("--max-budget-usd")
      expect(argv(buildCommand("codex", { ...CTX, maxBudgetUsd: 1 }))).not.toContain("--max-budget-usd")
      expect(outputFormatOf("codex", "none")).toBe("codex")
      expect(outputFormatOf("custom", "claude")).toBe("claude")
      expect(outputFormatOf("custom", "none")).toBe("none")
    }))

  it.effect("custom: the template's words with placeholders filled inside one argument each", () =>
    Effect.sync(() => {
      expect(argv(buildCommand("custom", {
        ...CTX,
        customTemplate: "my-agent --in {prompt_file} --log={log_file} 'id: {agent_id}' \"{task_id}\" {unknown}"
      }))).toEqual([
        "my-agent",
        "--in",
        CTX.promptFile,
        `--log=${CTX.logFile}`,
        `id: ${CTX.agentId}`,
        CTX.taskId,
        "{unknown}"
      ])
    }))

  it.effect("custom: a value with spaces or shell syntax stays one argument, never re-split or interpreted", () =>
    Effect.sync(() => {
      const promptFile = "/tmp/a dir/$(touch x); y.prompt"
      expect(argv(buildCommand("custom", { ...CTX, promptFile, customTemplate: "cat {prompt_file}" }))).toEqual([
        "cat",
        promptFile
      ])
    }))

  it.effect("custom without a template is refused as configuration, naming SPAWNKIT_AGENT_COMMAND", () =>
    Effect.sync(() => {
      const error = refusal(buildCommand("custom", CTX))
      expect(error.variable).toBe("SPAWNKIT_AGENT_COMMAND")
      expect(error.reason).toContain("not set")
    }))
})

describe("parseTemplate", () => {
  const refused: ReadonlyArray<readonly [string, string]> = [
    ["sleep 1; rm -rf /", "shell syntax"],
    ["a | b", "shell syntax"],
    ["a && b", "shell syntax"],
    ["a > out", "shell syntax"],
    ["ls *.ts", "shell syntax"],
    ["echo $HOME", "variable $HOME is not expanded"],
    ["echo ${HOME}", "variable $HOME is not expanded"],
    ["echo `id`", "backquote command substitution is not allowed"],
    ["echo a\nrm -rf /", "a line break is not allowed"],
    ["echo a\rb", "a line break is not allowed"],
    ["", "it is empty"],
    ["   ", "it is empty"]
  ]
  for (const [template, why] of refused) {
    it.effect(`refuses ${JSON.stringify(template)}: ${why}`, () =>
      Effect.sync(() => {
        const error = refusal(parseTemplate(template))
        expect(error.variable).toBe("SPAWNKIT_AGENT_COMMAND")
        expect(error.reason).toContain(why)
      }))
  }

  const accepted: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["sleep 600", ["sleep", "600"]],
    ["  sleep   600  ", ["sleep", "600"]],
    ["sh -c 'echo \"a b\"; exit 3'", ["sh", "-c", "echo \"a b\"; exit 3"]],
    ["printf \"%s\\n\" x", ["printf", "%s\\n", "x"]],
    ["a\\ b c", ["a b", "c"]]
  ]
  for (const [template, words] of accepted) {
    it.effect(`splits ${JSON.stringify(template)} into ${JSON.stringify(words)}`, () =>
      Effect.sync(() => expect(argv(parseTemplate(template))).toEqual(words)))
  }
})
