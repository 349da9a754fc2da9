/**
 * Gemini CLI's way to the broker. Gemini CLI takes MCP servers only from settings files, so an isolated Gemini agent
 * gets one in its own worktree, `<worktree>/.gemini/settings.json`, naming the broker with the token taken from its
 * environment (Gemini CLI expands `${VAR}` in header values): the file holds no secret. The agent runs with
 * GEMINI_CLI_TRUST_WORKSPACE=true, without which Gemini CLI ignores a workspace's MCP servers.
 *
 * The file is the spawn's: it is never written over one the repository has (that agent then has no spawnkit server,
 * and a warning says so), and it is removed before its worktree is judged for work (an untracked file would count
 * as work), only when it is exactly what spawnkit writes. Agents that are not isolated get no file: spawnkit does not
 * write into a user's checkout.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"
import { AGENT_TOKEN_VARIABLE } from "../host/Engines.js"

/** The settings file of a worktree. */
export const geminiSettingsPath = (worktree: string) => NodePath.join(worktree, ".gemini", "settings.json")

/** What spawnkit writes: the broker as the one MCP server, trusted (the agent runs in yolo mode anyway). */
export const geminiSettingsText = (url: string) =>
  JSON.stringify(
    {
      mcpServers: {
        spawnkit: { httpUrl: url, headers: { Authorization: `Bearer \${${AGENT_TOKEN_VARIABLE}}` }, trust: true }
      }
    },
    null,
    2
  ) + "\n"

/** Whether a settings file's text is one spawnkit wrote (for any broker URL): only such a file is removed. */
export const isSpawnkitsGeminiSettings = (text: string) => {
  let url: unknown
  try {
    url = JSON.parse(text)?.mcpServers?.spawnkit?.httpUrl
  } catch {
    return false
  }
  return typeof url === "string" && text === geminiSettingsText(url)
}

/**
 * Write the worktree's settings file: true when written, false when the repository has its own (left as it is).
 */
export const writeGeminiSettings = (worktree: string, url: string) =>
  Effect.gen(function*() {
    const file = geminiSettingsPath(worktree)
    const written = yield* Effect.try({
      try: () => {
        Fs.mkdirSync(NodePath.dirname(file), { recursive: true })
        try {
          Fs.writeFileSync(file, geminiSettingsText(url), { flag: "wx", mode: 0o644 })
          return true
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
          throw e
        }
      },
      catch: (e) => new RegistryIoError({ path: file, operation: "write", ...ioFailure(e) })
    })
    if (!written) {
      yield* Effect.logWarning(
        `${file} is the repository's own: the Gemini agent gets no spawnkit MCP server (spawnkit does not change it)`
      )
    }
    return written
  })

/**
 * Remove the worktree's settings file if spawnkit wrote it, and `.gemini/` if that leaves it empty. Anything else is
 * left; a failure is logged (the worktree is then judged with the file, so kept, never deleted).
 */
export const removeGeminiSettings = (worktree: string) =>
  Effect.try({
    try: () => {
      const file = geminiSettingsPath(worktree)
      let text: string
      try {
        text = Fs.readFileSync(file, "utf8")
      } catch {
        return
      }
      if (!isSpawnkitsGeminiSettings(text)) return
      Fs.rmSync(file, { force: true })
      if (Fs.readdirSync(NodePath.dirname(file)).length === 0) Fs.rmdirSync(NodePath.dirname(file))
    },
    catch: (e) => new RegistryIoError({ path: geminiSettingsPath(worktree), operation: "remove", ...ioFailure(e) })
  }).pipe(
    Effect.catch((e) => Effect.logError(`could not remove the Gemini settings in ${worktree}: ${e.message}`))
  )
