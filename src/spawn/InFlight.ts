/**
 * The spawns this process has in flight: reservations it made whose spawn has neither committed nor rolled back.
 * Process-wide, not per layer, because a reservation's owner is a process (its pid is on the record): a reconciler
 * in the same process tells its own live spawns from reservations whose spawn is over (a rollback that could not be
 * written) by asking here, under the registry lock.
 */

const inFlight = new Set<string>()

const keyOf = (home: string, taskId: string, agentId: string) => `${home}\u0000${taskId}\u0000${agentId}`

/** Note a spawn as in flight (inside the transaction that writes its reservation). */
export const beginSpawn = (home: string, taskId: string, agentId: string): void => {
  inFlight.add(keyOf(home, taskId, agentId))
}

/** Note a spawn as over (committed, rolled back, or failed to roll back). */
export const endSpawn = (home: string, taskId: string, agentId: string): void => {
  inFlight.delete(keyOf(home, taskId, agentId))
}

/** Whether this process has that spawn in flight. */
export const isSpawnInFlight = (home: string, taskId: string, agentId: string): boolean =>
  inFlight.has(keyOf(home, taskId, agentId))
