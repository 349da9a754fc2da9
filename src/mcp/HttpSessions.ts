/**
 * Which MCP sessions of the HTTP server to close: pure decisions over a snapshot of the sessions' use, applied by
 * Http.ts. A session with a call in flight is never chosen, so closing one never cuts a call short.
 */

/** What the decisions look at in a session. */
export interface SessionUse {
  readonly id: string
  /** When a request of the session last started or ended, in milliseconds of a monotonic clock. */
  readonly lastUsedMs: number
  /** Requests of the session received and not answered yet. */
  readonly callsInFlight: number
}

/** The session to close so that a new client fits under the cap: the least recently used without a call in flight. */
export const sessionToEvict = (sessions: Iterable<SessionUse>): string | undefined => {
  let oldest: SessionUse | undefined
  for (const session of sessions) {
    if (session.callsInFlight === 0 && (oldest === undefined || session.lastUsedMs < oldest.lastUsedMs)) {
      oldest = session
    }
  }
  return oldest?.id
}

/** The sessions without a call in flight and unused for `idleMs` or longer at `nowMs`. */
export const expiredSessions = (sessions: Iterable<SessionUse>, nowMs: number, idleMs: number): Array<string> => {
  const expired: Array<string> = []
  for (const session of sessions) {
    if (session.callsInFlight === 0 && nowMs - session.lastUsedMs >= idleMs) expired.push(session.id)
  }
  return expired
}
