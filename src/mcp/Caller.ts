/**
 * Who is calling: the orchestrator (no agent identity: full rights), or an agent whose server was started with its
 * identity and per-agent secret in the environment (SPAWNKIT_TASK_ID, SPAWNKIT_AGENT_ID, SPAWNKIT_AGENT_SECRET).
 * Security: an agent acts only for itself and its subtree, in its own task; the secret proves the identity, so a
 * process that merely knows an agent id cannot speak for it.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash, timingSafeEqual } from "node:crypto"
import { type Agent, isActiveStatus } from "../domain/Agent.js"
import type { AgentTokenParts } from "../domain/AgentToken.js"
import { parseAgentId, parseTaskId } from "../domain/Decode.js"
import { NotPermitted } from "../domain/Errors.js"
import { type AgentId, ORCHESTRATOR, type TaskId } from "../domain/Ids.js"
import type { TaskRegistry } from "../domain/Task.js"
import { Registry } from "../registry/Registry.js"

/** The caller of a server. */
export type Caller =
  | { readonly _tag: "Orchestrator" }
  | { readonly _tag: "Agent"; readonly taskId: string; readonly agentId: string }

/** The caller service: fixed for the life of a server process. */
export class CallerIdentity extends Context.Service<CallerIdentity, Caller>()("spawnkit/CallerIdentity") {
  /** The orchestrator: full rights. */
  static readonly orchestrator = Layer.succeed(CallerIdentity, { _tag: "Orchestrator" } as Caller)

  /** From the environment: an agent when SPAWNKIT_AGENT_ID is set (its secret checked), else the orchestrator. */
  static readonly fromEnv = (env: Readonly<Record<string, string | undefined>>) =>
    Layer.effect(CallerIdentity, verifyAgent(env))
}

const sha256 = (text: string) => createHash("sha256").update(text).digest()

const verifyAgent = Effect.fn("Caller.verifyAgent")(function*(env: Readonly<Record<string, string | undefined>>) {
  const agentIdText = env["SPAWNKIT_AGENT_ID"]
  if (agentIdText === undefined || agentIdText === "") return { _tag: "Orchestrator" } as Caller
  const taskId = yield* parseTaskId(env["SPAWNKIT_TASK_ID"] ?? "", "SPAWNKIT_TASK_ID")
  const agentId = yield* parseAgentId(agentIdText, "SPAWNKIT_AGENT_ID")
  const agent = yield* agentWithSecret(taskId, agentId, env["SPAWNKIT_AGENT_SECRET"] ?? "")
  if (agent === undefined) {
    return yield* new NotPermitted({ reason: `the secret in this environment does not belong to agent ${agentId}` })
  }
  return { _tag: "Agent", taskId, agentId } as Caller
})

/** Whether a given credential is the expected one, compared in constant time (a wrong length is simply no match). */
export const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The agent record whose stored digest is the secret's, or undefined (compared in constant time). */
const agentWithSecret = (taskId: TaskId, agentId: AgentId, secret: string) =>
  Effect.gen(function*() {
    const task = yield* (yield* Registry).read(taskId)
    const agent = task.agents.find((a) => a.id === agentId)
    const expected = agent?.secret_sha256 === undefined ? undefined : Buffer.from(agent.secret_sha256, "hex")
    const given = sha256(secret)
    return expected !== undefined && expected.length === given.length && timingSafeEqual(expected, given)
      ? agent
      : undefined
  })

/**
 * The caller a broker's bearer token names: an agent token (see AgentToken.ts) whose secret matches its record, of an
 * agent that still holds its slot; NotPermitted otherwise. An agent's token stops working when the agent ends.
 */
export const callerOfToken = Effect.fn("Caller.callerOfToken")(function*(parts: AgentTokenParts) {
  const refused = new NotPermitted({ reason: `the token does not belong to a live agent ${parts.agentId}` })
  const agent = yield* agentWithSecret(parts.taskId, parts.agentId, parts.secret).pipe(
    Effect.catchTag("TaskNotFound", () => Effect.succeed(undefined))
  )
  if (agent === undefined || !isActiveStatus(agent.status)) return yield* refused
  return { _tag: "Agent", taskId: parts.taskId, agentId: parts.agentId } as Caller
})

/** Whether two callers are the same principal. */
export const sameCaller = (a: Caller, b: Caller): boolean =>
  a._tag === "Orchestrator"
    ? b._tag === "Orchestrator"
    : b._tag === "Agent" && a.taskId === b.taskId && a.agentId === b.agentId

/** Whether `agentId` is `ancestorId` or below it in the task's tree. */
export const isInSubtree = (agents: ReadonlyArray<Agent>, ancestorId: string, agentId: string): boolean => {
  const byId = new Map<string, Agent>(agents.map((a) => [a.id, a]))
  let current: string | undefined = agentId
  for (let hops = 0; current !== undefined && hops <= agents.length; hops++) {
    if (current === ancestorId) return true
    current = byId.get(current)?.parent
  }
  return false
}

/** Refuse an agent caller outside its own task. */
export const checkTask = (caller: Caller, taskId: string) =>
  caller._tag === "Orchestrator" || caller.taskId === taskId
    ? Effect.void
    : Effect.fail(new NotPermitted({ reason: `task ${taskId} is not the task of agent ${caller.agentId}` }))

/** Refuse an agent caller acting for an agent outside its subtree (itself included unless `strict`). */
export const checkSubtree = (caller: Caller, task: TaskRegistry, agentId: string, strict = false) => {
  if (caller._tag === "Orchestrator") return Effect.void
  if (caller.taskId !== task.task_id) {
    return Effect.fail(new NotPermitted({ reason: `task ${task.task_id} is not the task of agent ${caller.agentId}` }))
  }
  const allowed = isInSubtree(task.agents, caller.agentId, agentId) && !(strict && agentId === caller.agentId)
  return allowed ? Effect.void : Effect.fail(
    new NotPermitted({
      reason: agentId === ORCHESTRATOR
        ? `agent ${caller.agentId} cannot act as the orchestrator`
        : `agent ${agentId} is not ${strict ? "below" : "in the subtree of"} agent ${caller.agentId}`
    })
  )
}
