/**
 * Hostile input, through the programmatic API and through the compiled CLI: ids and agent types built to escape the
 * workspace or reach a shell, oversized and metacharacter-laden prompts, corrupt registries, shell syntax in the agent
 * command, and bad configuration. Every case must end in a clear typed error (or, for prompts, literal delivery) and
 * must create nothing: no directory, no session, no canary file.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { spawn as spawnProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { CLI, fileTree, liveSessions, makeTestEnv, SLEEPER, type TestEnv, waitFor } from "../support/Harness.js"

const envs: Array<TestEnv> = []
afterEach(() => {
  for (const env of envs.splice(0)) env.cleanup()
})

/**
 * A sandbox: the test env's temp dir is the root, spawnkit's home sits two levels below it, so `../` and `../../`
 * from the home still land inside the root, where a snapshot of the whole tree sees them. The CLI runs with the root
 * as its working directory, so a relative CANARY would land there too.
 */
interface Sandbox {
  readonly env: TestEnv
  readonly root: string
  readonly home: string
  /** An absolute canary path: it must never exist. */
  readonly canary: string
  readonly taskId: string
  readonly registryFile: string
  readonly layer: (overrides?: Partial<Spawnkit.SpawnkitSettings>) => ReturnType<TestEnv["layer"]>
}

const setup = async (agentCommand = SLEEPER): Promise<Sandbox> => {
  const env = makeTestEnv(agentCommand)
  envs.push(env)
  const root = env.home
  const home = NodePath.join(root, "a", "b", "home")
  const layer = (overrides: Partial<Spawnkit.SpawnkitSettings> = {}) => env.layer({ home, ...overrides })
  const task = await Effect.runPromise(
    Spawnkit.createTask({ description: "hostile", max_concurrent: 10 }).pipe(Effect.provide(layer()))
  )
  return {
    env,
    root,
    home,
    canary: NodePath.join(root, "CANARY"),
    taskId: task.task_id,
    registryFile: NodePath.join(home, task.task_id, "AGENT_REGISTRY.json"),
    layer
  }
}

/** Files anywhere under `dir` whose name mentions CANARY. */
const canaries = (dir: string) => Object.keys(fileTree(dir)).filter((p) => NodePath.basename(p).includes("CANARY"))

const expectNothingCreated = (sb: Sandbox, before: Record<string, string>) => {
  expect(fileTree(sb.root)).toEqual(before)
  expect(liveSessions(sb.env.socket)).toEqual([])
  expect(canaries(sb.root)).toEqual([])
  expect(Fs.existsSync(NodePath.join(process.cwd(), "CANARY"))).toBe(false)
}

/** Run an effect on the sandbox's layer and return its Exit. */
const runExit = <A, E>(
  sb: Sandbox,
  effect: Effect.Effect<A, E, Spawnkit.Services>,
  overrides: Partial<Spawnkit.SpawnkitSettings> = {}
) => Effect.runPromiseExit(effect.pipe(Effect.provide(sb.layer(overrides))))

/** The typed failure of an Exit; throws (failing the test) on success, defect or interruption. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>, what = ""): E => {
  if (Exit.isSuccess(exit)) throw new Error(`${what}: expected a failure, got success ${JSON.stringify(exit.value)}`)
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) throw new Error(`${what}: expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return error.value
}

interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Run the compiled CLI (asynchronously, so several can run at once) in the sandbox. */
const runCli = (sb: Sandbox, args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  new Promise<CliResult>((resolve, reject) => {
    const child = spawnProcess(process.execPath, [CLI, ...args], {
      cwd: sb.root,
      env: { ...process.env, ...sb.env.env, SPAWNKIT_HOME: sb.home, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/** Run CLI invocations with at most `limit` at once, in order of results. */
const cliAll = async <T>(items: ReadonlyArray<T>, run: (item: T) => Promise<CliResult>, limit = 2) => {
  const results: Array<CliResult> = Array.from({ length: items.length })
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await run(items[i]!)
      }
    })
  )
  return results
}

/** The `{"error":{tag,message}}` a failing `--json` command prints, after checking it failed. */
const cliError = (r: CliResult, what: string): { tag: string; message: string } => {
  const context = `${what}\nexit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`
  expect(r.code, context).not.toBe(0)
  expect(r.code, context).not.toBe(null)
  const lines = r.stdout.trim().split("\n")
  let parsed: any
  try {
    parsed = JSON.parse(lines[lines.length - 1] ?? "")
  } catch {
    throw new Error(`no JSON error on stdout: ${context}`)
  }
  expect(parsed.error, context).toBeDefined()
  return parsed.error
}

const show = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…(${s.length} chars)` : s)

/** Task ids that must all be refused; relative canaries land in the CLI's cwd (the sandbox root). */
const hostileTaskIds = (canary: string) => [
  "../escape",
  "../../escape",
  "TASK-../../escape",
  "TASK-a/b",
  "/etc",
  `TASK-$(touch ${canary})`,
  "TASK-$(touch CANARY)",
  "TASK-`touch CANARY`",
  "TASK-it's",
  "TASK-say\"hi\"",
  "TASK-a\nb",
  "TASK-ok\n",
  "TASK-a\0b",
  "TASK-a b",
  " TASK-ok",
  "TASK-ok ",
  "",
  "TASK-",
  "TASK-" + "a".repeat(100_000),
  "TASK-\uff41",
  "TASK-a;b",
  "TASK-#{session_name}",
  "TASK-*"
]

const hostileAgentTypes = (canary: string) => [
  "../x",
  "a/b",
  "/",
  `$(touch ${canary})`,
  "$(touch CANARY)",
  "`touch CANARY`",
  "it's",
  "\"quoted\"",
  "a\nb",
  "worker\n",
  "a\0b",
  "a b",
  "",
  "a".repeat(41),
  "x".repeat(100_000),
  "worker;",
  "#{session_name}",
  "*"
]

const AGENT_ID = /^[A-Za-z0-9_-]{1,64}$/

/**
 * What the CLI is tried with: one of each kind (each CLI run costs a Node start-up). NUL cannot be passed in an argv
 * at all, so it is covered through the API only.
 */
const CLI_TASK_IDS = [
  "../../escape",
  "TASK-a/b",
  "TASK-$(touch CANARY)",
  "TASK-`touch CANARY`",
  "TASK-it's",
  "TASK-say\"hi\"",
  "TASK-a\nb",
  "TASK-ok\n",
  "TASK-a b",
  "",
  "TASK-" + "a".repeat(100_000)
]
const CLI_AGENT_TYPES = [
  "../x",
  "a/b",
  "$(touch CANARY)",
  "`touch CANARY`",
  "it's",
  "\"quoted\"",
  "worker\n",
  "a b",
  "",
  "x".repeat(100_000)
]

describe("hostile task ids and agent types", () => {
  it("are refused with InvalidInput by the API, creating nothing", async () => {
    const sb = await setup()
    const before = fileTree(sb.root)
    for (const taskId of hostileTaskIds(sb.canary)) {
      const spawnError = failureOf(
        await runExit(sb, Spawnkit.spawn({ taskId, agentType: "worker", prompt: "p" })),
        `spawn task ${show(taskId)}`
      )
      expect(spawnError, `spawn task ${show(taskId)}`).toBeInstanceOf(Spawnkit.InvalidInput)
      expect(spawnError).toMatchObject({ _tag: "InvalidInput", field: "taskId" })
      const statusError = failureOf(await runExit(sb, Spawnkit.status(taskId)), `status ${show(taskId)}`)
      expect(statusError, `status ${show(taskId)}`).toMatchObject({ _tag: "InvalidInput" })
      const killError = failureOf(await runExit(sb, Spawnkit.kill(taskId, "worker-1")), `kill ${show(taskId)}`)
      expect(killError, `kill ${show(taskId)}`).toMatchObject({ _tag: "InvalidInput" })
    }
    for (const agentType of hostileAgentTypes(sb.canary)) {
      const spawnError = failureOf(
        await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType, prompt: "p" })),
        `spawn type ${show(agentType)}`
      )
      expect(spawnError, `spawn type ${show(agentType)}`).toMatchObject({ _tag: "InvalidInput", field: "agentType" })
      // The same strings as agent ids (41 letters is a valid agent id, merely unknown).
      if (!AGENT_ID.test(agentType)) {
        const killError = failureOf(await runExit(sb, Spawnkit.kill(sb.taskId, agentType)), `kill ${show(agentType)}`)
        expect(killError, `kill agent ${show(agentType)}`).toMatchObject({ _tag: "InvalidInput" })
      }
    }
    expectNothingCreated(sb, before)
  })

  it("are refused with a JSON InvalidInput error and a non-zero exit by the CLI, creating nothing", async () => {
    const sb = await setup()
    const before = fileTree(sb.root)
    const calls: Array<{ what: string; args: Array<string> }> = [
      ...CLI_TASK_IDS.map((t) => ({
        what: `spawn --task ${show(t)}`,
        args: ["spawn", "--task", t, "--type", "worker", "--prompt", "p", "--json"]
      })),
      ...CLI_AGENT_TYPES.map((t) => ({
        what: `spawn --type ${show(t)}`,
        args: ["spawn", "--task", sb.taskId, "--type", t, "--prompt", "p", "--json"]
      })),
      ...CLI_TASK_IDS.slice(0, 3).map((t) => ({
        what: `status --task ${show(t)}`,
        args: ["status", "--task", t, "--json"]
      })),
      ...CLI_TASK_IDS.slice(0, 2).map((t) => ({
        what: `kill --task ${show(t)}`,
        args: ["kill", "--task", t, "--agent", "worker-1", "--json"]
      })),
      ...CLI_AGENT_TYPES.slice(0, 3).map((t) => ({
        what: `kill --agent ${show(t)}`,
        args: ["kill", "--task", sb.taskId, "--agent", t, "--json"]
      }))
    ]
    const results = await cliAll(calls, (c) => runCli(sb, c.args))
    calls.forEach((c, i) => {
      const error = cliError(results[i]!, c.what)
      expect(error.tag, c.what).toBe("InvalidInput")
      expect(error.message, c.what).toMatch(/^Invalid /)
    })
    expectNothingCreated(sb, before)
  })
})

describe("a hostile parent id", () => {
  const parents = (canary: string) => [
    "../x",
    "../../escape",
    `$(touch ${canary})`,
    "`touch CANARY`",
    "orchestrator\n",
    "orchestrator/../x",
    "orchestrator ",
    "Orchestrator",
    "it's \"quoted\"",
    "#{session_name}",
    "",
    "x".repeat(100_000)
  ]
  // A parent outside the id allow-list is refused by validation; an allow-listed one that names no agent, by admission.
  const expectedTag = (parent: string) => (/^[A-Za-z0-9_-]{1,64}$/.test(parent) ? "ParentNotFound" : "InvalidInput")

  it("is refused with a typed error by the API and the CLI, creating nothing", async () => {
    const sb = await setup()
    const before = fileTree(sb.root)
    for (const parent of [...parents(sb.canary), "orchestrator\0"]) {
      const error = failureOf(
        await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType: "worker", prompt: "p", parent })),
        `parent ${show(parent)}`
      )
      expect((error as any)._tag, `parent ${show(parent)}`).toBe(expectedTag(parent))
    }
    const cliParents = ["../../escape", "$(touch CANARY)", "`touch CANARY`", "orchestrator\n", "x".repeat(100_000)]
    const results = await cliAll(
      cliParents,
      (parent) =>
        runCli(sb, ["spawn", "--task", sb.taskId, "--type", "worker", "--prompt", "p", "--parent", parent, "--json"])
    )
    cliParents.forEach((parent, i) => {
      const error = cliError(results[i]!, `--parent ${show(parent)}`)
      expect(error.tag, `--parent ${show(parent)}`).toBe(expectedTag(parent))
    })
    expectNothingCreated(sb, before)
  })
})

/** The agent copies its stdin (the prompt) to received.txt in its working directory, the task directory. */
const RECEIVER = `sh -c "cat > received.txt; sleep 600"`

/** Wait until the agent has received exactly `expected` (byte for byte) and return what it got. */
const received = async (sb: Sandbox, taskId: string, expected: Buffer) => {
  const file = NodePath.join(sb.home, taskId, "received.txt")
  await waitFor(
    `the agent received ${expected.length} bytes`,
    () => Fs.existsSync(file) && Fs.statSync(file).size >= expected.length ? true : undefined
  )
  return Fs.readFileSync(file)
}

describe("prompt size", () => {
  it("a 10 MB prompt, and one byte over the 1 MB limit, are refused with InvalidInput, creating nothing", async () => {
    const sb = await setup()
    const before = fileTree(sb.root)
    const tenMb = "x".repeat(10 * 1024 * 1024)
    // Two-byte characters: under the limit in characters, one byte over it in UTF-8 bytes.
    const overByOne = "\u00e9".repeat(Spawnkit.MAX_PROMPT_BYTES / 2) + "x"
    expect(Buffer.byteLength(overByOne)).toBe(Spawnkit.MAX_PROMPT_BYTES + 1)
    for (const [what, prompt] of [["10 MB", tenMb], ["limit + 1 byte", overByOne]] as const) {
      const error = failureOf(await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType: "big", prompt })), what)
      expect(error, what).toBeInstanceOf(Spawnkit.InvalidInput)
      expect(error, what).toMatchObject({ _tag: "InvalidInput", field: "prompt" })
      expect((error as Spawnkit.InvalidInput).reason, what).toContain(`${Spawnkit.MAX_PROMPT_BYTES} bytes`)
    }
    for (const [what, prompt] of [["empty", ""], ["NUL", "before\0after"]] as const) {
      const error = failureOf(await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType: "big", prompt })), what)
      expect(error, what).toMatchObject({ _tag: "InvalidInput", field: "prompt" })
    }
    expectNothingCreated(sb, before)
  })

  it("a prompt of exactly 1 MB reaches the agent byte-identical", async () => {
    const sb = await setup(RECEIVER)
    const unit = "ascii \u00e9\u00e8 \u65e5\u672c\u8a9e \ud83d\ude42 tab\t crlf\r\n quote'\" back\\slash $HOME `x`\n"
    let prompt = unit.repeat(Math.floor(Spawnkit.MAX_PROMPT_BYTES / Buffer.byteLength(unit)))
    prompt += "z".repeat(Spawnkit.MAX_PROMPT_BYTES - Buffer.byteLength(prompt))
    const bytes = Buffer.from(prompt, "utf8")
    expect(bytes.length).toBe(Spawnkit.MAX_PROMPT_BYTES)
    const exit = await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType: "big", prompt }))
    if (Exit.isFailure(exit)) throw new Error(Cause.pretty(exit.cause))
    expect(exit.value.status).toBe("running")
    const got = await received(sb, sb.taskId, bytes)
    expect(got.length).toBe(bytes.length)
    expect(got.equals(bytes)).toBe(true)
  })
})

/** A prompt made of everything a shell or tmux would interpret. */
const metacharPrompt = (canary: string) =>
  [
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `; touch ${canary}`,
    `| touch ${canary}`,
    `&& touch ${canary}`,
    `|| touch ${canary}`,
    `> ${canary}`,
    "$(touch CANARY) `touch CANARY`",
    "'\"\\",
    "$HOME ${HOME} $0 $$ $(id) ~ !!",
    "* ? [a-z] {a,b}",
    `#{session_name} #{pane_id} #(touch ${canary})`,
    ";",
    "\\;",
    "",
    "   leading and trailing spaces   ",
    "tab\there\r\ncarriage return",
    "--help -- -x",
    "<<EOF",
    "heredoc",
    "EOF",
    "\u00e9 \u65e5\u672c \ud83d\ude42",
    "no newline at the end"
  ].join("\n")

describe("a prompt full of shell and tmux metacharacters", () => {
  it("reaches the agent literally through the API, and no canary appears", async () => {
    const sb = await setup(RECEIVER)
    const prompt = metacharPrompt(sb.canary)
    const exit = await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType: "meta", prompt }))
    if (Exit.isFailure(exit)) throw new Error(Cause.pretty(exit.cause))
    const bytes = Buffer.from(prompt, "utf8")
    const got = await received(sb, sb.taskId, bytes)
    expect(got.toString("utf8")).toBe(prompt)
    expect(got.equals(bytes)).toBe(true)
    const record = JSON.parse(Fs.readFileSync(sb.registryFile, "utf8")).agents[0]
    expect(record.prompt).toBe(prompt.slice(0, 200))
    expect(canaries(sb.root)).toEqual([])
    expect(Fs.existsSync(NodePath.join(process.cwd(), "CANARY"))).toBe(false)
  })

  it("reaches the agent literally through the CLI, and no canary appears", async () => {
    const sb = await setup(RECEIVER)
    const prompt = metacharPrompt(sb.canary)
    const r = await runCli(sb, ["spawn", "--task", sb.taskId, "--type", "meta", "--prompt", prompt, "--json"])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ status: "running", task_id: sb.taskId })
    const bytes = Buffer.from(prompt, "utf8")
    const got = await received(sb, sb.taskId, bytes)
    expect(got.toString("utf8")).toBe(prompt)
    expect(got.equals(bytes)).toBe(true)
    expect(canaries(sb.root)).toEqual([])
    expect(Fs.existsSync(NodePath.join(process.cwd(), "CANARY"))).toBe(false)
  })
})

describe("a corrupt registry file", () => {
  const validRegistry = (sb: Sandbox) => JSON.parse(Fs.readFileSync(sb.registryFile, "utf8"))
  const variants = (sb: Sandbox): Array<readonly [string, Buffer]> => {
    const valid = validRegistry(sb)
    const text = JSON.stringify(valid, null, 2)
    return [
      ["garbage bytes", Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0x0a, 0x80, 0xc3, 0x28, 0x1b, 0x5b, 0x41, 0x7d])],
      ["truncated JSON", Buffer.from(text.slice(0, Math.floor(text.length / 2)))],
      ["empty file", Buffer.alloc(0)],
      ["JSON null", Buffer.from("null\n")],
      ["JSON array", Buffer.from("[]\n")],
      ["wrong types", Buffer.from(JSON.stringify({ ...valid, active_count: "1", agents: "none" }))],
      ["missing fields", Buffer.from(JSON.stringify({ task_id: valid.task_id }))],
      [
        "an agent with an unknown status",
        Buffer.from(JSON.stringify({
          ...valid,
          agents: [{
            id: "worker-1",
            type: "worker",
            tmux_session: "agent_worker-1",
            parent: "orchestrator",
            depth: 1,
            status: "bogus",
            started_at: valid.created_at
          }]
        }))
      ]
    ]
  }

  it("makes spawn, status and kill fail with RegistryCorrupt through the API, leaving its bytes alone", async () => {
    const sb = await setup()
    for (const [what, bytes] of variants(sb)) {
      Fs.writeFileSync(sb.registryFile, bytes)
      const before = fileTree(sb.root)
      const operations = [
        ["spawn", Spawnkit.spawn({ taskId: sb.taskId, agentType: "worker", prompt: "p" })],
        ["status of the task", Spawnkit.status(sb.taskId)],
        ["kill", Spawnkit.kill(sb.taskId, "worker-1")]
      ] as const
      for (const [op, effect] of operations) {
        const error = failureOf(await runExit(sb, effect as Effect.Effect<unknown, unknown, Spawnkit.Services>), op)
        expect(error, `${what}: ${op}`).toBeInstanceOf(Spawnkit.RegistryCorrupt)
        expect(error, `${what}: ${op}`).toMatchObject({ _tag: "RegistryCorrupt", path: sb.registryFile })
      }
      // A listing goes on past it, naming it among the tasks it could not read.
      const page = await runExit(sb, Spawnkit.listTasks({ scope: "all" }))
      expect(Exit.isSuccess(page) ? page.value.unreadable : page, what).toMatchObject([{
        task_id: sb.taskId,
        location: sb.registryFile
      }])
      expect(Fs.readFileSync(sb.registryFile).equals(bytes), what).toBe(true)
      expectNothingCreated(sb, before)
    }
  })

  it("makes the CLI print a RegistryCorrupt JSON error and exit non-zero, leaving its bytes alone", async () => {
    const sb = await setup()
    for (const [what, bytes] of variants(sb).filter(([w]) => w === "garbage bytes" || w === "wrong types")) {
      Fs.writeFileSync(sb.registryFile, bytes)
      const before = fileTree(sb.root)
      const calls = [
        ["spawn", "--task", sb.taskId, "--type", "worker", "--prompt", "p", "--json"],
        ["status", "--task", sb.taskId, "--json"],
        ["kill", "--task", sb.taskId, "--agent", "worker-1", "--json"]
      ]
      const results = await cliAll([...calls, ["status", "--all", "--json"]], (args) => runCli(sb, args))
      calls.forEach((args, i) => {
        const error = cliError(results[i]!, `${what}: ${args[0]}`)
        expect(error.tag, `${what}: ${args.join(" ")}`).toBe("RegistryCorrupt")
        expect(error.message).toContain(sb.registryFile)
        expect(error.message).toContain(`spawnkit task quarantine --task ${sb.taskId}`)
      })
      // The listing goes on past the task and names it.
      const listing = results[calls.length]!
      expect(listing.code, `${what}: status --all`).toBe(0)
      expect(JSON.parse(listing.stdout).unreadable).toMatchObject([{ task_id: sb.taskId, location: sb.registryFile }])
      expect(Fs.readFileSync(sb.registryFile).equals(bytes), what).toBe(true)
      expectNothingCreated(sb, before)
    }
  })
})

describe("shell syntax in SPAWNKIT_AGENT_COMMAND", () => {
  const templates = (canary: string) => [
    `sleep 1; touch ${canary}`,
    `sleep $(touch ${canary})`,
    `sleep 1 | touch ${canary}`,
    `sleep 1 && touch ${canary}`,
    `sleep 1 || touch ${canary}`,
    `sleep 1 & touch ${canary}`,
    `sleep 1 > ${canary}`,
    `sleep 600\ntouch ${canary}`,
    `sleep \`touch ${canary}\``
  ]

  it("is refused with InvalidConfiguration through the API: no session, no record, no canary", async () => {
    const sb = await setup()
    const before = fileTree(sb.root)
    for (const [i, template] of templates(sb.canary).entries()) {
      const error = failureOf(
        await runExit(sb, Spawnkit.spawn({ taskId: sb.taskId, agentType: "worker", prompt: `p${i}` }), {
          agentCommand: Option.some(template)
        }),
        show(template)
      )
      expect(error, show(template)).toBeInstanceOf(Spawnkit.InvalidConfiguration)
      expect(error, show(template)).toMatchObject({ _tag: "InvalidConfiguration", variable: "SPAWNKIT_AGENT_COMMAND" })
    }
    // The refused spawns were rolled back: the registry reads as before (it may have been rewritten).
    expect(JSON.parse(Fs.readFileSync(sb.registryFile, "utf8"))).toMatchObject({
      agents: [],
      active_count: 0,
      total_spawned: 0
    })
    const { [sb.registryFile]: _registry, ...rest } = before
    const { [sb.registryFile]: _after, ...restAfter } = fileTree(sb.root)
    expect(restAfter).toEqual(rest)
    expect(liveSessions(sb.env.socket)).toEqual([])
    expect(canaries(sb.root)).toEqual([])
  })

  it("is refused with a JSON InvalidConfiguration error by the CLI: no session, no record, no canary", async () => {
    const sb = await setup()
    const list = [0, 1, 2, 7, 8].map((i) => templates(sb.canary)[i]!)
    const results = await cliAll(
      list,
      (template) =>
        runCli(sb, ["spawn", "--task", sb.taskId, "--type", "worker", "--prompt", `p ${template}`, "--json"], {
          SPAWNKIT_AGENT_COMMAND: template
        })
    )
    list.forEach((template, i) => {
      const error = cliError(results[i]!, show(template))
      expect(error.tag, show(template)).toBe("InvalidConfiguration")
      expect(error.message, show(template)).toContain("SPAWNKIT_AGENT_COMMAND")
    })
    expect(JSON.parse(Fs.readFileSync(sb.registryFile, "utf8"))).toMatchObject({
      agents: [],
      active_count: 0,
      total_spawned: 0
    })
    expect(liveSessions(sb.env.socket)).toEqual([])
    expect(canaries(sb.root)).toEqual([])
  })
})

describe("bad configuration in the environment", () => {
  const bad: ReadonlyArray<readonly [string, string]> = [
    ["SPAWNKIT_MAX_CONCURRENT", "abc"],
    ["SPAWNKIT_MAX_CONCURRENT", "0"],
    ["SPAWNKIT_MAX_AGENTS", "-5"],
    ["SPAWNKIT_GLOBAL_MAX_CONCURRENT", "1.5"],
    ["SPAWNKIT_ENGINE", "bogus"],
    ["SPAWNKIT_TMUX_SOCKET", "sock;touch CANARY"]
  ]

  it("makes the CLI exit non-zero with a message naming the variable, creating nothing", async () => {
    const sb = await setup()
    const before = fileTree(sb.root)
    const calls = [
      ...bad.map(([name, value]) => ({
        name,
        value,
        json: true,
        args: ["task", "create", "--description", "d", "--json"]
      })),
      ...bad.slice(0, 2).map(([name, value]) => ({
        name,
        value,
        json: true,
        args: ["spawn", "--task", sb.taskId, "--type", "worker", "--prompt", "p", "--json"]
      })),
      ...bad.slice(3, 5).map(([name, value]) => ({ name, value, json: false, args: ["status"] }))
    ]
    const results = await cliAll(calls, (c) => runCli(sb, c.args, { [c.name]: c.value }))
    calls.forEach((c, i) => {
      const r = results[i]!
      const what = `${c.name}=${c.value} ${c.args.join(" ")}`
      if (c.json) {
        const error = cliError(r, what)
        expect(error.tag, what).toBe("InvalidConfiguration")
        expect(error.message, what).toContain(c.name)
      } else {
        expect(r.code, what).not.toBe(0)
        expect(r.code, what).not.toBe(null)
        expect(r.stderr, what).toContain("InvalidConfiguration")
        expect(r.stderr, what).toContain(c.name)
      }
    })
    expectNothingCreated(sb, before)
  })
})
