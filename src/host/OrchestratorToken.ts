/**
 * The orchestrator's credential: the bearer token that gives a client of `serve --http` orchestrator rights. Unless
 * SPAWNKIT_HTTP_TOKEN (or `--token`) names another, it is the home's own, `<home>/.spawnkit-orchestrator.token` (0600),
 * drawn at random the first time a server needs it and kept: an orchestrator on this host reads it from there.
 *
 * Security: no agent receives it (agents get their own tokens, scoped to their subtree); a sandboxed agent cannot
 * see the home, so neither this file. Without a sandbox an agent runs as the same user and can read it: see the
 * README's threat model. The file is read as untrusted input: one that does not hold a well-formed credential is
 * refused, never overwritten.
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { errnoCode, InvalidConfiguration, ioFailure, RegistryIoError } from "../domain/Errors.js"

/** The prefix (and version) of an orchestrator credential. */
export const ORCHESTRATOR_TOKEN_PREFIX = "sko1"

const WELL_FORMED = /^sko1\.[A-Za-z0-9_-]{43}$/

/** Where the home's orchestrator credential is kept. */
export const orchestratorTokenPath = (home: string) => NodePath.join(home, ".spawnkit-orchestrator.token")

/** A new credential: 32 random bytes. */
export const newOrchestratorToken = () => `${ORCHESTRATOR_TOKEN_PREFIX}.${randomBytes(32).toString("base64url")}`

/** Whether a text is a well-formed orchestrator credential. */
export const isOrchestratorToken = (text: string) => WELL_FORMED.test(text)

const read = (file: string) =>
  Effect.try({
    try: () => Fs.readFileSync(file, "utf8").trim(),
    catch: (e) => new RegistryIoError({ path: file, operation: "read", ...ioFailure(e) })
  })

/**
 * The home's orchestrator credential, created (0600, never over an existing file) when there is none. A file that
 * holds anything else is InvalidConfiguration and left as it is.
 */
export const orchestratorToken = (home: string) =>
  Effect.gen(function*() {
    const file = orchestratorTokenPath(home)
    const created = yield* Effect.try({
      try: () => {
        Fs.mkdirSync(home, { recursive: true })
        const token = newOrchestratorToken()
        try {
          Fs.writeFileSync(file, `${token}\n`, { flag: "wx", mode: 0o600 })
          return token
        } catch (e) {
          if (errnoCode(e) === "EEXIST") return undefined
          throw e
        }
      },
      catch: (e) => new RegistryIoError({ path: file, operation: "create", ...ioFailure(e) })
    })
    if (created !== undefined) return created
    const text = yield* read(file)
    if (!isOrchestratorToken(text)) {
      return yield* new InvalidConfiguration({
        variable: "SPAWNKIT_HTTP_TOKEN",
        reason: `${file} does not hold an orchestrator credential (sko1.<43 base64url characters>); remove it to ` +
          "have a new one drawn, or set SPAWNKIT_HTTP_TOKEN"
      })
    }
    return text
  })
