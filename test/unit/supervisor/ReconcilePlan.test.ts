/**
 * The reconciler's decision, table-tested: `plan` and `abandoned` are pure functions of an Observation, so every rule
 * is one row here (no tmux, no files, no clock). Tasks are decoded from JSON through the stored schema, so every
 * fixture is a registry spawnkit could actually read. `killTargets` (the kill's choice of records) is pure too.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { type Agent } from "../../../src/domain/Agent.js"
import { AgentId, SessionName, TaskId } from "../../../src/domain/Ids.js"
import { TaskRegistry } from "../../../src/domain/Task.js"
import type { PaneState } from "../../../src/host/Tmux.js"
import { killTargets } from "../../../src/lifecycle/Kill.js"
import {
  abandoned,
  isOfThisHost,
  type Observation,
  type ObservedSession,
  plan,
  type Planned
} from "../../../src/supervisor/ReconcilePlan.js"
import { taskJson as taskRecord } from "../support/Records.js"

// ---------------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------------

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()
const HOME = "/srv/spawnkit-home"
const HOST = "host-a"
const OTHER_HOST = "host-b"
const DEADLINE_MS = 120_000
/** The reconciling process. Deliberately not in LIVE_PIDS: its own reservations and temp files must be judged by pid. */
const SELF = 1001
const LIVE_PID = 2002
const DEAD_PID = 3003

const decodeTask = Schema.decodeUnknownSync(TaskRegistry)
const taskId = Schema.decodeUnknownSync(TaskId)

const T = taskId("TASK-20261202-120000-aaaaaaaa")
const BAD = taskId("TASK-20261202-120000-bbbbbbbb")

/** An agent record as stored (JSON), running since 10 s ago unless overridden. */
const agentJson = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: "worker",
  tmux_session: `agent_${id}`,
  parent: "orchestrator",
  depth: 1,
  status,
  started_at: iso(NOW - 10_000),
  ...extra
})

const reservation = (pid: number, host = HOST, ageMs = 1_000) => ({
  reservation: { owner_pid: pid, owner_host: host, reserved_at: iso(NOW - ageMs) }
})

/** A task registry decoded as spawnkit decodes a stored one (excess keys refused, so a fixture typo fails loudly). */
const task = (id: TaskId, agents: ReadonlyArray<Record<string, unknown>>): TaskRegistry =>
  decodeTask(taskRecord({ task_id: id, created_at: iso(NOW - 3_600_000), workspace: `${HOME}/${id}` }, agents), {
    errors: "all",
    onExcessProperty: "error"
  })

const livePane: PaneState = { paneId: "%1", panePid: 4242, dead: false, exitCode: undefined }
const deadPane = (exitCode: number | undefined): PaneState => ({ paneId: "%1", panePid: 4242, dead: true, exitCode })

const tags = (task: string, agent: string, home = HOME) => ({
  spawnkit_home: home,
  spawnkit_task: task,
  spawnkit_agent: agent
})

/** The session spawnkit makes for an agent, tagged for this home, its pane alive unless given. */
const sessionOf = (task: string, agent: string, pane: PaneState | undefined = livePane): ObservedSession => ({
  name: `agent_${agent}`,
  tags: tags(task, agent),
  pane
})

const observation = (over: Partial<Observation> = {}): Observation => ({
  home: HOME,
  hostId: HOST,
  nowMs: NOW,
  spawnDeadlineMs: DEADLINE_MS,
  pid: SELF,
  sessions: [],
  tasks: [],
  unreadable: [],
  expiredHosts: new Set(),
  agentFiles: [],
  tempFiles: [],
  alive: (pid) => pid === LIVE_PID,
  inFlight: () => false,
  lastOutputMs: () => undefined,
  ...over
})

const unreadableBad = [{ task_id: BAD, location: `${HOME}/${BAD}/AGENT_REGISTRY.json`, reason: "invalid JSON" }]

const id = Schema.decodeUnknownSync(AgentId)
const sessionName = Schema.decodeUnknownSync(SessionName)

// ---------------------------------------------------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------------------------------------------------

interface Row {
  readonly name: string
  readonly observation: Observation
  readonly expected: ReadonlyArray<Planned>
}

/** A task holding one reservation of the given owner, with the session the spawn made (so only the rollback shows). */
const reservedBy = (pid: number, host = HOST, ageMs = 1_000, over: Partial<Observation> = {}) =>
  observation({
    tasks: [task(T, [agentJson("r1", "reserved", reservation(pid, host, ageMs))])],
    sessions: [sessionOf(T, "r1")],
    ...over
  })

const reservations: ReadonlyArray<Row> = [
  {
    name: "a reservation whose owner on this host is dead is rolled back (OwnerGone), its session not killed apart",
    observation: reservedBy(DEAD_PID),
    expected: [{
      kind: "rolled_back_reservation",
      taskId: T,
      agentId: id("r1"),
      why: { _tag: "OwnerGone", pid: DEAD_PID, host: HOST }
    }]
  },
  {
    name: "this very process's reservation with no spawn in flight is rolled back (SpawnOver)",
    observation: reservedBy(SELF),
    expected: [{ kind: "rolled_back_reservation", taskId: T, agentId: id("r1"), why: { _tag: "SpawnOver", pid: SELF } }]
  },
  {
    name: "this very process's reservation whose spawn is in flight is left alone",
    observation: reservedBy(SELF, HOST, 1_000, { inFlight: (t, a) => t === T && a === "r1" }),
    expected: []
  },
  {
    name: "a reservation older than the spawn deadline is rolled back though its owner lives (PastDeadline)",
    observation: reservedBy(LIVE_PID, HOST, DEADLINE_MS + 1),
    expected: [{
      kind: "rolled_back_reservation",
      taskId: T,
      agentId: id("r1"),
      why: { _tag: "PastDeadline", pid: LIVE_PID, seconds: 120 }
    }]
  },
  {
    name: "a reservation of a live owner exactly at the spawn deadline is left alone",
    observation: reservedBy(LIVE_PID, HOST, DEADLINE_MS),
    expected: []
  },
  {
    name: "a young reservation of a live owner is left alone",
    observation: reservedBy(LIVE_PID, HOST, 1_000),
    expected: []
  },
  {
    name: "another host's reservation whose lease expired is rolled back (LeaseExpired)",
    observation: observation({
      tasks: [task(T, [agentJson("r1", "reserved", reservation(DEAD_PID, OTHER_HOST, DEADLINE_MS * 10))])],
      expiredHosts: new Set([OTHER_HOST])
    }),
    expected: [{
      kind: "rolled_back_reservation",
      taskId: T,
      agentId: id("r1"),
      why: { _tag: "LeaseExpired", host: OTHER_HOST }
    }]
  },
  {
    name: "another host's reservation with a live lease is left alone, however old, whatever pid it names",
    observation: observation({
      tasks: [task(T, [agentJson("r1", "reserved", reservation(DEAD_PID, OTHER_HOST, DEADLINE_MS * 10))])]
    }),
    expected: []
  }
]

const liveAgents: ReadonlyArray<Row> = [
  {
    name: "a live agent whose pane died has its exit recorded, with the pane's exit code",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running")])],
      sessions: [sessionOf(T, "a1", deadPane(3))]
    }),
    expected: [{ kind: "recorded_exit", taskId: T, agentId: id("a1"), exitCode: 3 }]
  },
  {
    name: "a live agent whose pane died with no status known has its exit recorded with an unknown code",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "working")])],
      sessions: [sessionOf(T, "a1", deadPane(undefined))]
    }),
    expected: [{ kind: "recorded_exit", taskId: T, agentId: id("a1"), exitCode: undefined }]
  },
  {
    name: "a live agent whose session is missing is to be marked lost (after confirmation)",
    observation: observation({ tasks: [task(T, [agentJson("a1", "blocked")])] }),
    expected: [{ kind: "marked_lost", taskId: T, agentId: id("a1") }]
  },
  {
    name: "a live agent past its wall-clock limit is timed out, whatever its pane",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running", { timeout_seconds: 60, started_at: iso(NOW - 61_000) })])],
      sessions: [sessionOf(T, "a1", deadPane(0))]
    }),
    expected: [{ kind: "timed_out", taskId: T, agentId: id("a1"), reason: "ran longer than its limit of 60 s" }]
  },
  {
    name: "a live agent whose last output is older than its stall limit is stalled",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running", { stall_timeout_seconds: 30, started_at: iso(NOW - 100_000) })])],
      sessions: [sessionOf(T, "a1")],
      lastOutputMs: (t, a) => (t === T && a === "a1" ? NOW - 31_000 : undefined)
    }),
    expected: [{ kind: "stalled", taskId: T, agentId: id("a1"), reason: "no new output for more than 30 s" }]
  },
  {
    name: "a live agent that wrote output recently is not stalled, though it started long ago",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running", { stall_timeout_seconds: 30, started_at: iso(NOW - 100_000) })])],
      sessions: [sessionOf(T, "a1")],
      lastOutputMs: (t, a) => (t === T && a === "a1" ? NOW - 5_000 : undefined)
    }),
    expected: []
  },
  {
    name: "a live agent within its limits, with a live pane, needs nothing",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running", { timeout_seconds: 60, stall_timeout_seconds: 30 })])],
      sessions: [sessionOf(T, "a1")]
    }),
    expected: []
  },
  {
    name: "another host's live agent is never judged here: no session here, past its limit, still nothing",
    observation: observation({
      tasks: [
        task(T, [
          agentJson("a1", "running", { host: OTHER_HOST, timeout_seconds: 1, started_at: iso(NOW - 3_600_000) })
        ])
      ]
    }),
    expected: []
  },
  {
    name: "an ended agent with no session needs nothing",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "completed", { completed_at: iso(NOW - 1_000) })])]
    }),
    expected: []
  }
]

/** A task with one live agent `a1` and its session, beside which the sessions under test are observed. */
const withLiveAgent = (sessions: ReadonlyArray<ObservedSession>, over: Partial<Observation> = {}) =>
  observation({ tasks: [task(T, [agentJson("a1", "running")])], sessions: [sessionOf(T, "a1"), ...sessions], ...over })

const sessions: ReadonlyArray<Row> = [
  {
    name: "a session tagged for this home that no active record owns is killed as an orphan",
    observation: withLiveAgent([sessionOf(T, "ghost-1")]),
    expected: [{ kind: "killed_orphan_session", session: sessionName("agent_ghost-1"), taskId: T, agentId: "ghost-1" }]
  },
  {
    name: "a session of an ended agent is an orphan",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "killed", { completed_at: iso(NOW - 1_000) })])],
      sessions: [sessionOf(T, "a1")]
    }),
    expected: [{ kind: "killed_orphan_session", session: sessionName("agent_a1"), taskId: T, agentId: "a1" }]
  },
  {
    name: "a foreign session without tags is never planned for, even one named like an agent's",
    observation: withLiveAgent([
      { name: "foreign", tags: {}, pane: livePane },
      { name: "agent_lookalike", tags: {}, pane: deadPane(1) }
    ]),
    expected: []
  },
  {
    name: "another home's session is never planned for",
    observation: withLiveAgent([{ name: "agent_ghost-2", tags: tags(T, "ghost-2", "/elsewhere"), pane: livePane }]),
    expected: []
  },
  {
    name: "a session tagged for this home whose name is not an agent session name is left alone",
    observation: withLiveAgent([{ name: "my work", tags: tags(T, "ghost-3"), pane: livePane }]),
    expected: []
  },
  {
    name: "a session of a task that could not be read is left untouched",
    observation: withLiveAgent([sessionOf(BAD, "b1")], { unreadable: unreadableBad }),
    expected: []
  }
]

const files: ReadonlyArray<Row> = [
  {
    name: "an agent file no active record owns is removed as an orphan",
    observation: withLiveAgent([], { agentFiles: [{ taskId: T, name: "ghost-1.prompt" }] }),
    expected: [{ kind: "removed_orphan_file", taskId: T, agentId: id("ghost-1"), name: "ghost-1.prompt" }]
  },
  {
    name: "the prompt and MCP config of an active record (live or reserved) are kept",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running"), agentJson("r1", "reserved", reservation(LIVE_PID))])],
      sessions: [sessionOf(T, "a1"), sessionOf(T, "r1")],
      agentFiles: [
        { taskId: T, name: "a1.prompt" },
        { taskId: T, name: "a1.mcp.json" },
        { taskId: T, name: "r1.prompt" }
      ]
    }),
    expected: []
  },
  {
    name: "the files of an ended agent are orphans",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "failed", { completed_at: iso(NOW - 1_000) })])],
      agentFiles: [{ taskId: T, name: "a1.mcp.json" }]
    }),
    expected: [{ kind: "removed_orphan_file", taskId: T, agentId: id("a1"), name: "a1.mcp.json" }]
  },
  {
    name: "files that are not agent files, or name no valid agent id, are left alone",
    observation: withLiveAgent([], {
      agentFiles: [
        { taskId: T, name: "notes.txt" },
        { taskId: T, name: "a b.prompt" },
        { taskId: T, name: "..prompt" },
        { taskId: T, name: ".mcp.json" }
      ]
    }),
    expected: []
  },
  {
    name: "files of a task that could not be read are left untouched",
    observation: withLiveAgent([], {
      unreadable: unreadableBad,
      agentFiles: [{ taskId: BAD, name: "ghost-1.prompt" }]
    }),
    expected: []
  },
  {
    name: "a registry temp file of a dead writer is removed",
    observation: withLiveAgent([], {
      tempFiles: [{ taskId: T, name: `AGENT_REGISTRY.json.tmp-${DEAD_PID}-abcdef12` }]
    }),
    expected: [{
      kind: "removed_temp_file",
      taskId: T,
      name: `AGENT_REGISTRY.json.tmp-${DEAD_PID}-abcdef12`,
      writer: DEAD_PID
    }]
  },
  {
    name: "a registry temp file of a live writer is left alone",
    observation: withLiveAgent([], {
      tempFiles: [{ taskId: T, name: `AGENT_REGISTRY.json.tmp-${LIVE_PID}-abcdef12` }]
    }),
    expected: []
  },
  {
    name: "this very process's registry temp file is left alone (judged by pid, not by liveness)",
    observation: withLiveAgent([], { tempFiles: [{ taskId: T, name: `AGENT_REGISTRY.json.tmp-${SELF}-abcdef12` }] }),
    expected: []
  },
  {
    name: "a dead writer's temp file in a task that could not be read is left untouched",
    observation: withLiveAgent([], {
      unreadable: unreadableBad,
      tempFiles: [{ taskId: BAD, name: `AGENT_REGISTRY.json.tmp-${DEAD_PID}-abcdef12` }]
    }),
    expected: []
  }
]

const ordering: ReadonlyArray<Row> = [
  {
    name: "every repair a pass calls for, in order: records task by task, then sessions, agent files, temp files",
    observation: observation({
      tasks: [
        task(T, [
          agentJson("r1", "reserved", reservation(DEAD_PID)),
          agentJson("a1", "running"),
          agentJson("a2", "running")
        ]),
        task(taskId("TASK-20261202-120000-cccccccc"), [agentJson("c1", "running", { timeout_seconds: 5 })])
      ],
      sessions: [
        sessionOf(T, "ghost-1"),
        sessionOf(T, "a2", deadPane(137)),
        sessionOf("TASK-20261202-120000-cccccccc", "c1")
      ],
      agentFiles: [{ taskId: T, name: "ghost-1.prompt" }],
      tempFiles: [{ taskId: T, name: `AGENT_REGISTRY.json.tmp-${DEAD_PID}-0a` }]
    }),
    expected: [
      {
        kind: "rolled_back_reservation",
        taskId: T,
        agentId: id("r1"),
        why: { _tag: "OwnerGone", pid: DEAD_PID, host: HOST }
      },
      { kind: "marked_lost", taskId: T, agentId: id("a1") },
      { kind: "recorded_exit", taskId: T, agentId: id("a2"), exitCode: 137 },
      {
        kind: "timed_out",
        taskId: taskId("TASK-20261202-120000-cccccccc"),
        agentId: id("c1"),
        reason: "ran longer than its limit of 5 s"
      },
      { kind: "killed_orphan_session", session: sessionName("agent_ghost-1"), taskId: T, agentId: "ghost-1" },
      { kind: "removed_orphan_file", taskId: T, agentId: id("ghost-1"), name: "ghost-1.prompt" },
      { kind: "removed_temp_file", taskId: T, name: `AGENT_REGISTRY.json.tmp-${DEAD_PID}-0a`, writer: DEAD_PID }
    ]
  }
]

/** Rows where nothing is to be done, or nothing is spawnkit's to touch. */
const nothing: ReadonlyArray<Row> = [
  {
    name: "an empty home: no task, no session, no file, nothing to do",
    observation: observation(),
    expected: []
  },
  {
    name:
      "a healthy task (live agents with live panes, their files, a young reservation, an ended agent): nothing to do",
    observation: observation({
      tasks: [task(T, [
        agentJson("a1", "running", { timeout_seconds: 60, stall_timeout_seconds: 30 }),
        agentJson("a2", "working", { parent: "a1", depth: 2 }),
        agentJson("r1", "reserved", reservation(LIVE_PID)),
        agentJson("done", "completed", { completed_at: iso(NOW - 5_000) })
      ])],
      sessions: [sessionOf(T, "a1"), sessionOf(T, "a2"), sessionOf(T, "r1")],
      agentFiles: [{ taskId: T, name: "a1.prompt" }, { taskId: T, name: "a2.mcp.json" }, {
        taskId: T,
        name: "r1.prompt"
      }],
      tempFiles: [{ taskId: T, name: `AGENT_REGISTRY.json.tmp-${LIVE_PID}-abcdef12` }],
      lastOutputMs: () => NOW - 1_000
    }),
    expected: []
  },
  {
    name: "a live agent at its wall-clock limit to the millisecond is not yet timed out",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running", { timeout_seconds: 60, started_at: iso(NOW - 60_000) })])],
      sessions: [sessionOf(T, "a1")]
    }),
    expected: []
  },
  {
    name: "a live agent quiet for exactly its stall limit is not yet stalled",
    observation: observation({
      tasks: [task(T, [agentJson("a1", "running", { stall_timeout_seconds: 30, started_at: iso(NOW - 100_000) })])],
      sessions: [sessionOf(T, "a1")],
      lastOutputMs: () => NOW - 30_000
    }),
    expected: []
  },
  {
    name: "not ours: other homes' and untagged sessions, another host's records, a task that could not be read",
    observation: observation({
      tasks: [task(T, [
        agentJson("far", "running", { host: OTHER_HOST, timeout_seconds: 1, started_at: iso(NOW - 3_600_000) }),
        agentJson("farres", "reserved", reservation(DEAD_PID, OTHER_HOST, 3_600_000))
      ])],
      unreadable: unreadableBad,
      sessions: [
        { name: "agent_x1", tags: tags(T, "x1", "/another/home"), pane: deadPane(1) },
        { name: "agent_x2", tags: {}, pane: livePane },
        { name: "agent_x3", tags: tags(BAD, "x3"), pane: livePane }
      ],
      agentFiles: [{ taskId: BAD, name: "x3.prompt" }],
      tempFiles: [{ taskId: BAD, name: `AGENT_REGISTRY.json.tmp-${DEAD_PID}-abcdef12` }]
    }),
    expected: []
  }
]

describe("plan", () => {
  describe.each(
    [
      ["reservations", reservations],
      ["live agents", liveAgents],
      ["sessions", sessions],
      ["files", files],
      ["order", ordering],
      ["nothing to do, or not ours", nothing]
    ] as const
  )("%s", (_, rows) => {
    for (const row of rows) {
      it(row.name, () => {
        expect(plan(row.observation)).toEqual(row.expected)
      })
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// abandoned
// ---------------------------------------------------------------------------------------------------------------------

describe("abandoned", () => {
  const only = (o: Observation): Agent => o.tasks[0]!.agents[0]!

  it("answers the same reason plan gives, for each kind of abandoned reservation", () => {
    for (const row of reservations) {
      const expected = row.expected.length === 0 ? undefined : (row.expected[0] as { why: unknown }).why
      expect(abandoned(only(row.observation), T, row.observation), row.name).toEqual(expected)
    }
  })

  it("is undefined for a record that is not a reservation, even one still carrying an owner", () => {
    const o = observation({ tasks: [task(T, [agentJson("a1", "running", reservation(DEAD_PID))])] })
    expect(abandoned(only(o), T, o)).toBeUndefined()
  })

  it("asks whether the spawn is in flight for this very task and agent", () => {
    const asked: Array<string> = []
    const o = reservedBy(SELF, HOST, 1_000, {
      inFlight: (t, a) => {
        asked.push(`${t}/${a}`)
        return true
      }
    })
    expect(abandoned(only(o), T, o)).toBeUndefined()
    expect(asked).toEqual([`${T}/r1`])
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// killTargets
// ---------------------------------------------------------------------------------------------------------------------

describe("killTargets", () => {
  const agentsOf = (records: ReadonlyArray<Record<string, unknown>>) => task(T, records).agents
  const child = (childId: string, parent: string, status = "running", depth = 2) =>
    agentJson(childId, status, { parent, depth, ...(status === "reserved" ? reservation(LIVE_PID) : {}) })
  const cascaded = (root: string) => `parent ${root} was killed (cascade)`

  // root ── c1 ── g1
  //      └─ c2 (a reservation: a child whose spawn is in flight)
  // other (a sibling of root, untouched)
  const tree = agentsOf([
    agentJson("root", "running"),
    child("c1", "root"),
    child("g1", "c1", "running", 3),
    child("c2", "root", "reserved"),
    agentJson("other", "running")
  ])

  it("with cascade: every agent below the root, each after its own descendants, reservations included, root last", () => {
    expect(killTargets(tree, id("root"), true, "stop")).toEqual([
      { agentId: "g1", reason: cascaded("root") },
      { agentId: "c1", reason: cascaded("root") },
      { agentId: "c2", reason: cascaded("root") },
      { agentId: "root", reason: "stop" }
    ])
  })

  it("without cascade: the root only", () => {
    expect(killTargets(tree, id("root"), false, "stop")).toEqual([{ agentId: "root", reason: "stop" }])
  })

  it("a cycle in a hand-edited record is visited once: the root is never its own descendant", () => {
    // root's parent is g1, g1's is c1, c1's is root: the stored schema cannot see a cycle, so killTargets must.
    const cycle = agentsOf([
      agentJson("root", "running", { parent: "g1" }),
      child("c1", "root"),
      child("g1", "c1", "running", 3)
    ])
    expect(killTargets(cycle, id("root"), true, "stop")).toEqual([
      { agentId: "g1", reason: cascaded("root") },
      { agentId: "c1", reason: cascaded("root") },
      { agentId: "root", reason: "stop" }
    ])
  })

  it("a record naming itself as its parent is visited once", () => {
    const selfParent = agentsOf([agentJson("root", "running", { parent: "root" })])
    expect(killTargets(selfParent, id("root"), true, "stop")).toEqual([{ agentId: "root", reason: "stop" }])
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// isOfThisHost
// ---------------------------------------------------------------------------------------------------------------------

describe("isOfThisHost", () => {
  it("an abandoned reservation of this host has its files and session here; another host's expired one does not", () => {
    expect(isOfThisHost({ _tag: "OwnerGone", pid: DEAD_PID, host: HOST })).toBe(true)
    expect(isOfThisHost({ _tag: "SpawnOver", pid: SELF })).toBe(true)
    expect(isOfThisHost({ _tag: "PastDeadline", pid: LIVE_PID, seconds: 120 })).toBe(true)
    expect(isOfThisHost({ _tag: "LeaseExpired", host: OTHER_HOST })).toBe(false)
  })
})
