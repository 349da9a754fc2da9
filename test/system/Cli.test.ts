import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { CLI, cli, liveSessions, stdoutJson, type TestEnv, testEnvs, waitFor } from "../support/Harness.js"

const newEnv = testEnvs()
const json = stdoutJson

/** A CLI run in the background: its output so far, and its end. */
const cliBackground = (env: TestEnv, args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code) => resolve(code))
  })
  return { stdout: () => stdout, stderr: () => stderr, exit, kill: () => child.kill("SIGKILL") }
}

describe("spawnkit CLI", () => {
  it("creates a task, spawns agents and reports them with snake_case JSON", () => {
    const env = newEnv()
    const created = cli(env, ["task", "create", "--description", "cli test", "--max-concurrent", "1", "--json"])
    expect(created.status).toBe(0)
    const taskId = json(created).task_id
    expect(taskId).toMatch(/^TASK-\d{8}-\d{6}-[0-9a-f]{8}$/)

    const spawned = cli(env, ["spawn", "--task", taskId, "--type", "worker", "--prompt", "hello", "--json"])
    expect(spawned.status).toBe(0)
    const agent = json(spawned)
    expect(agent).toMatchObject({ task_id: taskId, status: "running", depth: 1, parent: "orchestrator" })
    expect(agent.tmux_session).toBe(`agent_${agent.agent_id}`)
    expect(liveSessions(env.socket)).toEqual([agent.tmux_session])

    const status = json(cli(env, ["status", "--task", taskId, "--json"]))
    expect(status.task_id).toBe(taskId)
    expect(status.agents).toHaveLength(1)
    expect(status.agents[0]).toMatchObject({ id: agent.agent_id, status: "running", parent: "orchestrator", depth: 1 })

    const all = json(cli(env, ["status", "--json"]))
    expect(all.tasks.map((t: { task_id: string }) => t.task_id)).toEqual([taskId])

    const text = cli(env, ["status"])
    expect(text.stdout).toContain(agent.agent_id)
    expect(text.stdout).toContain("[running]")
  })

  it("exits non-zero with a JSON error naming the tag on a rejection, and changes nothing", () => {
    const env = newEnv()
    const taskId = json(cli(env, ["task", "create", "--description", "x", "--max-concurrent", "1", "--json"])).task_id
    expect(cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "one", "--json"]).status).toBe(0)
    const before = Fs.readFileSync(`${env.home}/${taskId}/AGENT_REGISTRY.json`)

    const rejected = cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "two", "--json"])
    expect(rejected.status).not.toBe(0)
    const error = json(rejected).error
    expect(error.tag).toBe("LimitReached")
    expect(error.message).toContain("max_concurrent")
    expect(Fs.readFileSync(`${env.home}/${taskId}/AGENT_REGISTRY.json`)).toEqual(before)
    expect(liveSessions(env.socket)).toHaveLength(1)

    const missing = cli(env, ["spawn", "--task", "TASK-nope", "--type", "a", "--prompt", "p", "--json"])
    expect(missing.status).not.toBe(0)
    expect(json(missing).error.tag).toBe("TaskNotFound")

    const plain = cli(env, ["spawn", "--task", "TASK-nope", "--type", "a", "--prompt", "p"])
    expect(plain.status).not.toBe(0)
    expect(plain.stderr).toContain("error [TaskNotFound]")
  })

  it(
    "a bad, missing or unknown flag: the JSON error with --json, one line on stderr without; non-zero exit, nothing created",
    () => {
      const env = newEnv()
      const withJson: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["task", "create", "--max-concurrent", "2", "--json"], "--description"],
        [["task", "create", "--description", "d", "--max-concurrent", "many", "--json"], "--max-concurrent"],
        [["spawn", "--task", "TASK-x", "--prompt", "p", "--json"], "--type"],
        [["spawn", "--task", "TASK-x", "--type", "a", "--prompt", "p", "--engine", "bogus", "--json"], "--engine"],
        [["status", "--bogus", "--json"], "--bogus"],
        [["output", "--task", "TASK-x", "--agent", "a", "--tail", "abc", "--json=true"], "--tail"],
        [["kill", "--task", "TASK-x", "--json"], "--agent"],
        [["reconcile", "--dry-run=maybe", "--json"], "--dry-run"],
        [["bench", "--processes", "x", "--json"], "--processes"]
      ]
      for (const [args, flag] of withJson) {
        const out = cli(env, args)
        const what = `${args.join(" ")}\nstdout: ${out.stdout}\nstderr: ${out.stderr}`
        expect(out.status, what).not.toBe(0)
        expect(out.status, what).not.toBe(null)
        const error = json(out).error
        expect(error.tag, what).toBe("InvalidInput")
        expect(error.message, what).toContain(flag)
        expect(error.message, what).toContain("--help")
      }
      const plain = cli(env, ["spawn", "--task", "TASK-x", "--prompt", "p"])
      expect(plain.status).not.toBe(0)
      expect(plain.stdout).toBe("")
      expect(plain.stderr.trim().split("\n")).toHaveLength(1)
      expect(plain.stderr).toContain("error [InvalidInput]: Missing required flag: --type")
      // --json=false is no JSON; a command without --json (serve) reports on stderr whatever argv holds.
      expect(cli(env, ["spawn", "--task", "TASK-x", "--json=false"]).stderr).toContain("error [InvalidInput]")
      const serve = cli(env, ["serve", "--json"])
      expect(serve.status).not.toBe(0)
      expect(serve.stdout).toBe("")
      expect(serve.stderr).toContain("Unrecognized flag: --json")
      // Help asked for is still help.
      const help = cli(env, ["spawn", "--help"])
      expect(help.status).toBe(0)
      expect(help.stdout).toContain("--prompt")
      expect(Fs.readdirSync(env.home).filter((n) => n.startsWith("TASK-"))).toEqual([])
      // 14 CLI starts, one after another: 46 s measured with the machine's load at 8 on 2 cores.
    },
    180_000
  )

  it("returns the same agent for a retried idempotency key and kills it idempotently", () => {
    const env = newEnv()
    const taskId = json(cli(env, ["task", "create", "--description", "x", "--json"])).task_id
    const args = ["spawn", "--task", taskId, "--type", "a", "--prompt", "p", "--idempotency-key", "k-1", "--json"]
    const first = json(cli(env, args))
    const second = json(cli(env, args))
    expect(second.agent_id).toBe(first.agent_id)
    expect(second.existing).toBe(true)
    expect(liveSessions(env.socket)).toHaveLength(1)

    const killed = cli(env, ["kill", "--task", taskId, "--agent", first.agent_id, "--json"])
    expect(killed.status).toBe(0)
    expect(json(killed)).toMatchObject({ status: "killed", killed: true })
    expect(json(cli(env, ["kill", "--task", taskId, "--agent", first.agent_id, "--json"]))).toMatchObject({
      status: "killed",
      killed: false
    })
    expect(liveSessions(env.socket)).toEqual([])
  })

  it("shows the tail of an agent's output, filtered, as text and JSON", async () => {
    const env = newEnv(`sh -c "cat; echo; echo MARKER-one; echo other; echo MARKER-two; exec sleep 600"`)
    const taskId = json(cli(env, ["task", "create", "--description", "x", "--json"])).task_id
    const agent = json(cli(env, ["spawn", "--task", taskId, "--type", "a", "--prompt", "the prompt", "--json"]))
    const deadline = Date.now() + 10_000
    let out = cli(env, ["output", "--task", taskId, "--agent", agent.agent_id])
    while (!out.stdout.includes("MARKER-two") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
      out = cli(env, ["output", "--task", taskId, "--agent", agent.agent_id])
    }
    expect(out.status).toBe(0)
    expect(out.stdout).toContain("the prompt")
    const filtered = cli(env, ["output", "--task", taskId, "--agent", agent.agent_id, "--filter", "^MARKER", "--json"])
    expect(json(filtered)).toMatchObject({ agent_id: agent.agent_id, lines: 2, output: "MARKER-one\nMARKER-two" })
    const last = json(cli(env, ["output", "--task", taskId, "--agent", agent.agent_id, "--tail", "1", "--json"]))
    expect(last.output).toBe("MARKER-two")
    const badRegex = cli(env, ["output", "--task", taskId, "--agent", agent.agent_id, "--filter", "(", "--json"])
    expect(badRegex.status).not.toBe(0)
    expect(json(badRegex).error.tag).toBe("InvalidInput")
  })

  it("output --follow prints what the agent writes until it ends", () => {
    const env = newEnv(`sh -c "echo one; sleep 1; echo two; sleep 1; echo three"`)
    const taskId = json(cli(env, ["task", "create", "--description", "follow", "--json"])).task_id
    const agent = json(cli(env, ["spawn", "--task", taskId, "--type", "talker", "--prompt", "p", "--json"]))
    const followed = cli(env, ["output", "--task", taskId, "--agent", agent.agent_id, "--follow"])
    expect(followed.status).toBe(0)
    const lines = followed.stdout.split("\n").filter((l) => ["one", "two", "three"].includes(l.trim()))
    expect(lines.map((l) => l.trim())).toEqual(["one", "two", "three"])
    expect(json(cli(env, ["status", "--task", taskId, "--json"])).agents[0].status).toBe("completed")
  })

  it("output --follow applies --filter, --format and --json to the lines it follows, not only to the tail", async () => {
    // The agent writes three lines, waits for the test's go file, then writes more (one in two pieces) and exits.
    const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-follow-"))
    const go = NodePath.join(dir, "go")
    const result = "{\"type\":\"result\",\"subtype\":\"success\",\"result\":\"KEEP done\",\"total_cost_usd\":0.5}"
    Fs.writeFileSync(
      NodePath.join(dir, "agent.sh"),
      [
        "echo 'KEEP tail one'",
        "echo 'drop tail'",
        `echo '{"type":"system","subtype":"init"}'`,
        `while [ ! -f '${go}' ]; do sleep 0.1; done`,
        "echo 'KEEP followed two'",
        "echo 'drop followed'",
        `echo '${result}'`,
        "printf 'KEEP partial'; sleep 0.5; echo ' completed'",
        "echo 'not json KEEP'"
      ].join("\n") + "\n"
    )
    const followers: Array<ReturnType<typeof cliBackground>> = []
    try {
      const env = newEnv(`sh ${NodePath.join(dir, "agent.sh")}`)
      const taskId = json(cli(env, ["task", "create", "--description", "follow formats", "--json"])).task_id
      const agent = json(cli(env, ["spawn", "--task", taskId, "--type", "talker", "--prompt", "p", "--json"]))
      const log = NodePath.join(env.home, taskId, "logs", `${agent.agent_id}.log`)
      await waitFor(
        "the agent's first lines",
        () => Fs.existsSync(log) && Fs.readFileSync(log, "utf8").includes("\"init\"")
      )
      const base = ["output", "--task", taskId, "--agent", agent.agent_id, "--follow"]
      const cases = [
        {
          args: [...base, "--filter", "KEEP", "--json"],
          tail: [{ line: "KEEP tail one" }],
          followed: [{ line: "KEEP followed two" }, { line: result }, { line: "KEEP partial completed" }, {
            line: "not json KEEP"
          }]
        },
        {
          args: [...base, "--format", "jsonl", "--json"],
          tail: [{ event: { type: "system", subtype: "init" } }],
          followed: [{ event: JSON.parse(result) }]
        },
        {
          args: [...base, "--format", "parsed", "--filter", "KEEP|system"],
          tail: ["KEEP tail one", "[system] init"],
          followed: [
            "KEEP followed two",
            "[result success] KEEP done (cost $0.5000)",
            "KEEP partial completed",
            "not json KEEP"
          ]
        }
      ]
      const lines = (text: string, asJson: boolean) =>
        text.split("\n").filter((l) => l !== "").map((l) => (asJson ? JSON.parse(l) : l))
      for (const c of cases) followers.push(cliBackground(env, c.args))
      // Each follower has printed its tail (and so is following) before the agent writes on.
      for (const [i, c] of cases.entries()) {
        const asJson = c.args.includes("--json")
        await waitFor(
          `follower ${i} printed its tail`,
          () => lines(followers[i]!.stdout(), asJson).length >= c.tail.length
        )
      }
      Fs.writeFileSync(go, "")
      for (const [i, c] of cases.entries()) {
        const code = await followers[i]!.exit
        expect(code, followers[i]!.stderr()).toBe(0)
        expect(lines(followers[i]!.stdout(), c.args.includes("--json")), c.args.join(" ")).toEqual([
          ...c.tail,
          ...c.followed
        ])
      }
      expect(json(cli(env, ["status", "--task", taskId, "--json"])).agents[0].status).toBe("completed")
    } finally {
      for (const f of followers) f.kill()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("kill --cascade stops an agent, its children and grandchildren, and every process of theirs", async () => {
    // Each agent leaves a background child in its process group, and ignores nothing: the group must go.
    const env = newEnv(`sh -c "sleep 601 & exec sleep 602"`)
    const taskId = json(cli(env, ["task", "create", "--description", "tree", "--json"])).task_id
    const spawnUnder = (type: string, parent?: string) =>
      json(
        cli(env, [
          "spawn",
          "--task",
          taskId,
          "--type",
          type,
          "--prompt",
          type,
          ...(parent ? ["--parent", parent] : []),
          "--json"
        ])
      )
    const root = spawnUnder("root")
    const child = spawnUnder("child", root.agent_id)
    const grandchild = spawnUnder("grandchild", child.agent_id)
    const bystander = spawnUnder("bystander")
    const pgids = (names: Array<string>) =>
      names.map((n) =>
        Number(
          spawnSync("tmux", ["-S", env.socket, "list-panes", "-t", `=${n}:`, "-F", "#{pane_pid}"], { encoding: "utf8" })
            .stdout.trim()
        )
      )
    const tree = pgids([root.tmux_session, child.tmux_session, grandchild.tmux_session])
    const [bystanderGroup] = pgids([bystander.tmux_session])
    // Groups with a running member (a zombie has ended; this machine's init may never reap it).
    const groupsAlive = () =>
      new Set(
        execFileSync("ps", ["-eo", "pgid=,stat="], { encoding: "utf8" }).split("\n")
          .map((l) => l.trim().split(/\s+/))
          .filter(([, stat]) => stat !== undefined && !stat.startsWith("Z"))
          .map(([group]) => Number(group))
      )
    for (const g of [...tree, bystanderGroup]) expect(groupsAlive().has(g!)).toBe(true)

    const killed = cli(env, ["kill", "--task", taskId, "--agent", root.agent_id, "--cascade", "--json"])
    expect(killed.status).toBe(0)
    expect(json(killed)).toMatchObject({
      status: "killed",
      killed: true,
      cascaded: [grandchild.agent_id, child.agent_id]
    })
    // The process table, not only tmux: no process of the tree's groups is left; the bystander's group lives.
    const alive = groupsAlive()
    for (const g of tree) expect(alive.has(g)).toBe(false)
    expect(alive.has(bystanderGroup!)).toBe(true)
    expect(liveSessions(env.socket)).toEqual([bystander.tmux_session])
    const statuses = Object.fromEntries(
      json(cli(env, ["status", "--task", taskId, "--json"])).agents.map((
        a: { id: string; status: string }
      ) => [a.id, a.status])
    )
    expect(statuses).toEqual({
      [root.agent_id]: "killed",
      [child.agent_id]: "killed",
      [grandchild.agent_id]: "killed",
      [bystander.agent_id]: "running"
    })
  })

  it("runs the demo end to end and leaves no session or demo task behind", () => {
    const env = newEnv()
    const demo = cli(env, ["demo"], { SPAWNKIT_AGENT_COMMAND: "" })
    expect(demo.status).toBe(0)
    expect(demo.stdout).toContain("refused [DuplicateAgent]")
    expect(demo.stdout).toContain("refused [DepthExceeded]")
    expect(demo.stdout).toContain("refused [LimitReached]")
    expect(demo.stdout).toContain("(existing, not spawned again)")
    expect(demo.stdout).toContain("[killed]")
    // The queued fifth spawn got the slot the killed agent freed, as the journal tells.
    expect(demo.stdout).toMatch(/spawn fifth agent again, with queue: true \(waits for a slot\): extra-/)
    expect(demo.stdout).toContain("wait_for_agents says: killed")
    expect(demo.stdout).toMatch(/events journaled meanwhile .*: queued, killed, dequeued, spawned/)
    // The budget: both spenders stopped by the supervisor, the next spawn refused.
    expect(demo.stdout).toMatch(
      /spender-a-\S+: over_budget \(over budget: the task's budget is spent \(\d+ tokens spent of 3000\)\)/
    )
    expect(demo.stdout).toMatch(/spender-b-\S+: over_budget/)
    expect(demo.stdout).toContain("spawn spender-c: refused [BudgetExceeded]")
    // Worktrees: the committing agent's is kept (one commit ahead), the other's removed with its branch.
    expect(demo.stdout).toMatch(/fixer-\S+: completed; worktree kept/)
    expect(demo.stdout).toMatch(/reader-\S+: completed; worktree removed/)
    expect(demo.stdout).toMatch(/fixer-\S+\s+completed\s+spawnkit\/fixer-\S+\s+1 ahead/)
    const repo = /removed the demo repository (\S+) and its worktrees/.exec(demo.stdout)?.[1]
    expect(repo !== undefined && !Fs.existsSync(repo)).toBe(true)
    expect(liveSessions(env.socket)).toEqual([])
    expect(Fs.readdirSync(env.home).filter((n) => n.startsWith("TASK-"))).toEqual([])
    expect(Fs.readdirSync(NodePath.join(env.home, ".spawnkit-worktrees"))).toEqual([])
  })
})
