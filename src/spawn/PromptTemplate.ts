/**
 * The agent prompt template in use: the built-in one, or the file SPAWNKIT_PROMPT_TEMPLATE names, read once per
 * process (a spawn reuses the text read by the first; a read that fails is not kept, so the next spawn reports it too).
 */
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import { InvalidConfiguration } from "../domain/Errors.js"
import { DEFAULT_PROMPT_TEMPLATE } from "./AgentPrompt.js"

const read = new Map<string, string>()

/** The template text: the default when no file is configured, else that file's text (cached by path). */
export const promptTemplate = (file: Option.Option<string>) =>
  Option.match(file, {
    onNone: () => Effect.succeed(DEFAULT_PROMPT_TEMPLATE),
    onSome: (path) => {
      const cached = read.get(path)
      if (cached !== undefined) return Effect.succeed(cached)
      return FileSystem.FileSystem.use((fs) => fs.readFileString(path)).pipe(
        Effect.tap((text) => Effect.sync(() => void read.set(path, text))),
        Effect.mapError((e) =>
          new InvalidConfiguration({
            variable: "SPAWNKIT_PROMPT_TEMPLATE",
            reason: `cannot read ${path}: ${e.message}`
          })
        )
      )
    }
  })
