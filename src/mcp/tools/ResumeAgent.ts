/**
 * The resume_agent tool: resume an ended agent's conversation in a new agent (same type, parent and worktree), with
 * its CLI's own resume; an agent only below itself.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Prompt, SpawnResult } from "../../domain/SpawnRequest.js"
import { DEFAULT_RESUME_PROMPT, resume } from "../../lifecycle/Resume.js"
import { agentIdField, authorizeAgent, define, described, spawnFields, taskIdField, writes } from "./Tool.js"

/** resume_agent */
export const ResumeAgent = define({
  name: "resume_agent",
  title: "Resume an ended agent",
  description: "Resume the conversation of an agent that ended without completing (failed, killed, lost, " +
    "timed_out, stalled, over_budget): a new agent (resumed_from: the old id; same type, parent, engine and " +
    "worktree) runs its CLI's resume (claude --resume, codex exec resume, gemini --resume) with the prompt. It is a " +
    "spawn like any other: admitted against every limit and budget, idempotent with a key. One resumed agent at a " +
    "time per ended one; a running agent cannot be resumed. An agent may resume only agents below itself.",
  input: Schema.Struct({
    task_id: taskIdField,
    agent_id: described(agentIdField, "The ended agent to resume"),
    prompt: Schema.optionalKey(described(Prompt, `What to tell it (default: "${DEFAULT_RESUME_PROMPT}")`)),
    idempotency_key: spawnFields.idempotency_key
  }),
  output: Schema.Struct({ ...SpawnResult.fields, resumed_from: Schema.String }),
  hints: writes,
  run: (input) =>
    authorizeAgent(input.task_id, input.agent_id, true).pipe(
      Effect.andThen(
        resume({
          taskId: input.task_id,
          agentId: input.agent_id,
          ...(input.prompt !== undefined ? { prompt: input.prompt } : {}),
          ...(input.idempotency_key !== undefined ? { idempotencyKey: input.idempotency_key } : {})
        })
      )
    )
})
