/**
 * Pure decisions of the broker's configuration: which engines reach spawnkit through it, the orchestrator's
 * credential's form, and which Gemini settings file is spawnkit's own (the only kind ever removed).
 */
import { describe, expect, it } from "@effect/vitest"
import { mcpAccessOf } from "../../../src/host/Engines.js"
import { isOrchestratorToken, newOrchestratorToken } from "../../../src/host/OrchestratorToken.js"
import { geminiSettingsText, isSpawnkitsGeminiSettings } from "../../../src/worktree/GeminiSettings.js"

describe("mcpAccessOf", () => {
  it("Claude and Codex always, Gemini only in its own worktree, a custom command never", () => {
    expect([false, true].map((isolated) => mcpAccessOf("claude", isolated))).toEqual(["broker", "broker"])
    expect([false, true].map((isolated) => mcpAccessOf("codex", isolated))).toEqual(["broker", "broker"])
    expect([false, true].map((isolated) => mcpAccessOf("gemini", isolated))).toEqual(["none", "broker"])
    expect([false, true].map((isolated) => mcpAccessOf("custom", isolated))).toEqual(["none", "none"])
  })
})

describe("the orchestrator's credential", () => {
  it("is sko1 and 32 random bytes in base64url, a new one each time; anything else is not one", () => {
    const a = newOrchestratorToken()
    const b = newOrchestratorToken()
    expect(a).toMatch(/^sko1\.[A-Za-z0-9_-]{43}$/)
    expect(a).not.toBe(b)
    expect(isOrchestratorToken(a)).toBe(true)
    for (const bad of ["", "sko1.", `${a}x`, a.slice(0, -1), `sko2${a.slice(4)}`, `${a}\n`, ` ${a}`, "sko1.a b"]) {
      expect(isOrchestratorToken(bad), JSON.stringify(bad)).toBe(false)
    }
  })
})

describe("Gemini settings of spawnkit's", () => {
  const url = "http://127.0.0.1:4321/mcp"
  it("name the broker and the token's variable, never a token", () => {
    expect(JSON.parse(geminiSettingsText(url))).toEqual({
      mcpServers: {
        spawnkit: { httpUrl: url, headers: { Authorization: "Bearer ${SPAWNKIT_AGENT_TOKEN}" }, trust: true }
      }
    })
  })

  it("are recognised exactly; a file a person or a repository wrote is not spawnkit's", () => {
    expect(isSpawnkitsGeminiSettings(geminiSettingsText(url))).toBe(true)
    expect(isSpawnkitsGeminiSettings(geminiSettingsText("http://127.0.0.1:1/mcp"))).toBe(true)
    const edited = JSON.parse(geminiSettingsText(url))
    edited.theme = "mine"
    for (
      const text of [
        JSON.stringify(edited, null, 2) + "\n",
        geminiSettingsText(url).trimEnd(),
        "{\"theme\":\"mine\"}\n",
        "not json",
        "",
        JSON.stringify({ mcpServers: { spawnkit: { httpUrl: 42 } } })
      ]
    ) {
      expect(isSpawnkitsGeminiSettings(text), text).toBe(false)
    }
  })
})
