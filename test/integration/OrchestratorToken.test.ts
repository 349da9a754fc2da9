/** The home's orchestrator credential on disk: drawn once (0600), kept, and a file that holds anything else refused. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { onTestFinished } from "vitest"
import { orchestratorToken, orchestratorTokenPath } from "../../src/host/OrchestratorToken.js"

const tempHome = () => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sk-cred-"))
  onTestFinished(() => Fs.rmSync(dir, { recursive: true, force: true }))
  return NodePath.join(dir, "home")
}

describe("orchestratorToken", () => {
  it("draws the credential once, 0600, and gives the same one after", async () => {
    const home = tempHome()
    const first = await Effect.runPromise(orchestratorToken(home))
    expect(first).toMatch(/^sko1\./)
    expect(Fs.statSync(orchestratorTokenPath(home)).mode & 0o777).toBe(0o600)
    expect(await Effect.runPromise(orchestratorToken(home))).toBe(first)
    expect(Fs.readFileSync(orchestratorTokenPath(home), "utf8")).toBe(`${first}\n`)
  })

  it("refuses a file that does not hold a credential and leaves it as it is", async () => {
    const home = tempHome()
    Fs.mkdirSync(home)
    for (const text of ["", "hunter2\n", "sko1.short\n", `${"x".repeat(5000)}\n`]) {
      Fs.writeFileSync(orchestratorTokenPath(home), text, { mode: 0o600 })
      const exit = await Effect.runPromiseExit(orchestratorToken(home))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(JSON.stringify(exit)).toContain("InvalidConfiguration")
      expect(Fs.readFileSync(orchestratorTokenPath(home), "utf8")).toBe(text)
    }
  })
})
