/**
 * Small pure helpers over agent records shared by the spawn and lifecycle steps.
 */
import type { Agent } from "../domain/Agent.js"
import type { TaskRegistry } from "../domain/Task.js"

/** The task with one agent record replaced (by id). */
export const replaceAgent = (task: TaskRegistry, agent: Agent): TaskRegistry => ({
  ...task,
  agents: task.agents.map((a) => (a.id === agent.id ? agent : a))
})

/** The task without one agent record. */
export const removeAgent = (task: TaskRegistry, agentId: string): TaskRegistry => ({
  ...task,
  agents: task.agents.filter((a) => a.id !== agentId)
})

/** The record without its reservation (it has become a committed agent). */
export const withoutReservation = (agent: Agent): Agent => {
  const { reservation: _reservation, ...rest } = agent
  return rest
}

/** Current time as the registry writes it. */
export const isoOf = (millis: number) => new Date(millis).toISOString()

/** Lines of output kept with an agent that ended. */
export const EXIT_TAIL_LINES = 20
