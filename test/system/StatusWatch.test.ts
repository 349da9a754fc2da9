/**
 * `spawnkit status --watch` as a person and a script see it (needs `npm run build` first): in a shell in a tmux pane
 * (a tmux server of the test's own, apart from spawnkit's agents' one), it is redrawn on a spawn and on an exit, and
 * after Ctrl-C the shell answers, on the main screen, with the cursor shown and the terminal's modes as they were;
 * with its output piped, it prints one snapshot per change (text or JSON lines) and exits 130 on SIGINT.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import {
  type Backend,
  BACKENDS,
  CLI,
  cli,
  killTmuxServer,
  makeTempDir,
  makeTestEnv,
  stdoutJson,
  type TestEnv,
  tmuxOn,
  waitFor
} from "../support/Harness.js"

/** What each test made, released after it: children, then the test's own tmux servers, then the environments. */
const children: Array<ChildProcess> = []
const terminals: Array<string> = []
const envs: Array<TestEnv> = []
const dirs: Array<string> = []
afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  for (const socket of terminals.splice(0)) killTmuxServer(socket)
  for (const env of envs.splice(0)) env.cleanup()
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

const newEnv = (agentCommand?: string, backend: Backend = "file") => {
  const env = makeTestEnv(agentCommand, backend)
  envs.push(env)
  return env
}

const createTask = (env: TestEnv) =>
  stdoutJson(cli(env, ["task", "create", "--description", "watched", "--json"])).task_id as string

const spawnAgent = (env: TestEnv, taskId: string) => {
  const out = cli(env, ["spawn", "--task", taskId, "--type", "w", "--prompt", "p", "--json"])
  expect(out.status, out.stderr).toBe(0)
  return stdoutJson(out).agent_id as string
}

describe("status --watch in a terminal", () => {
  /** A shell in a pane of a tmux server of the test's own, with spawnkit's environment; its pane, its flags. */
  const openTerminal = (env: TestEnv) => {
    const socket = NodePath.join(env.dir, "term")
    terminals.push(socket)
    const { TMUX: _, TMUX_PANE: __, ...inherited } = process.env
    const tmux = (...args: ReadonlyArray<string>) => {
      const r = spawnSync("tmux", tmuxOn(socket, ...args), {
        encoding: "utf8",
        env: { ...inherited, ...env.env, PS1: "$ ", TERM: "xterm-256color" }
      })
      if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`)
      return r.stdout
    }
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "shell", "-x", "160", "-y", "40", "bash --norc --noprofile")
    return {
      /** Type a line and press Enter. */
      type: (line: string) => {
        tmux("send-keys", "-t", "shell", "-l", line)
        tmux("send-keys", "-t", "shell", "Enter")
      },
      key: (key: string) => tmux("send-keys", "-t", "shell", key),
      /** What the pane shows now, wrapped lines joined. */
      screen: () => tmux("capture-pane", "-p", "-J", "-t", "shell"),
      /** Whether the pane is on the alternate screen, and whether its cursor is shown. */
      modes: () => {
        const [alternate, cursor] = tmux("display-message", "-p", "-t", "shell", "#{alternate_on} #{cursor_flag}")
          .trim().split(" ")
        return { alternate: alternate === "1", cursorShown: cursor === "1" }
      }
    }
  }

  it("is redrawn on a spawn and on an exit; after Ctrl-C the shell answers on the main screen, cursor shown", async () => {
    // An agent that ends (exit 3) when the test creates its gate file.
    const gate = makeTempDir("sk-gate-")
    dirs.push(gate)
    Fs.writeFileSync(
      NodePath.join(gate, "agent.sh"),
      `while [ ! -e ${gate}/go ]; do sleep 0.1; done\nexit 3\n`
    )
    const env = newEnv(`sh ${gate}/agent.sh`)
    const taskId = createTask(env)
    const term = openTerminal(env)
    term.type(`${process.execPath} ${CLI} status --watch --task ${taskId}`)
    await waitFor("the first snapshot", () => term.screen().includes("active 0/20"))
    expect(term.screen()).toMatch(/^spawnkit status --watch {2}seq 0 {2}\S+ {2}\(Ctrl-C quits\)$/m)
    expect(term.modes()).toEqual({ alternate: true, cursorShown: false })

    const agentId = spawnAgent(env, taskId)
    await waitFor("the spawn redrawn", () => term.screen().includes(`● ${agentId}  [running]`))
    expect(term.screen()).toContain("active 1/20")

    Fs.writeFileSync(NodePath.join(gate, "go"), "")
    await waitFor("the exit redrawn", () => term.screen().includes(`○ ${agentId}  [failed]`))
    expect(term.screen()).toContain("exit 3")
    expect(term.screen()).toContain("active 0/20")
    // Redrawn in place: one tree on the screen, never two.
    expect(term.screen().split(taskId).length - 1).toBe(1)

    term.key("C-c")
    await waitFor("the main screen back, cursor shown", () => {
      const m = term.modes()
      return !m.alternate && m.cursorShown
    })
    // The shell's answer: the watch's exit status, the terminal's modes, and a line only the shell can print.
    const tag = `still-here-${process.pid}`
    term.type(`echo "exited $?"; stty -a; echo ${tag}-$((6*7))-marker`)
    const answered = await waitFor("the shell's answer", () => {
      const screen = term.screen()
      return screen.includes(`${tag}-42-marker`) && screen
    })
    const lines = answered.split("\n")
    const exited = lines.indexOf("exited 130")
    expect(exited, answered).toBeGreaterThan(0)
    // The terminal's modes as a shell needs them: echo, line editing, Ctrl-C as SIGINT.
    const modes = lines.slice(exited + 1, lines.indexOf(`${tag}-42-marker`)).join(" ").split(/\s+/)
    for (const mode of ["echo", "icanon", "isig"]) expect(modes).toContain(mode)
    for (const mode of ["-echo", "-icanon", "-isig"]) expect(modes).not.toContain(mode)
    // The snapshot was drawn on the alternate screen, and left with it.
    expect(answered).not.toContain("active 0/20")
  })
})

describe.each(BACKENDS)("status --watch with its output piped (%s registry)", (backend) => {
  /** `status --watch` in the background, stdout piped: what it printed so far, and how it ended. */
  const watcher = (env: TestEnv, args: ReadonlyArray<string>) => {
    const child = spawn(process.execPath, [CLI, "status", "--watch", ...args], {
      env: { ...process.env, ...env.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.push(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    )
    return { child, stdout: () => stdout, stderr: () => stderr, exit }
  }

  /** The text snapshots printed: each header's seq and time, and the snapshot under it. */
  const snapshots = (out: string) => {
    const [before, ...parts] = out.split(/^--- seq /m)
    expect(before).toBe("")
    return parts.map((part) => {
      const [header, ...body] = part.split("\n")
      const m = /^(\d+) {2}(\S+) ---$/.exec(header!)
      if (m === null) throw new Error(`not a snapshot's header: --- seq ${header}`)
      return { seq: Number(m[1]), at: m[2]!, body: body.join("\n").trimEnd() }
    })
  }

  /** The JSON snapshots printed, one per line: each agent's status. */
  const documents = (out: string) =>
    out.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l).agents.map((a: any) => a.status))

  it("prints one snapshot per change (text or JSON lines), no escape codes, and exits 130 on SIGINT", async () => {
    const env = newEnv(undefined, backend)
    const taskId = createTask(env)
    const text = watcher(env, ["--task", taskId])
    const json = watcher(env, ["--task", taskId, "--json"])
    await waitFor(
      "the first snapshots",
      () => snapshots(text.stdout()).length === 1 && documents(json.stdout()).length === 1
    )

    const agentId = spawnAgent(env, taskId)
    await waitFor(
      "the spawn printed",
      () =>
        text.stdout().includes(`● ${agentId}  [running]`) && documents(json.stdout()).some((d) => d[0] === "running")
    )
    const killed = cli(env, ["kill", "--task", taskId, "--agent", agentId])
    expect(killed.status, killed.stderr).toBe(0)
    await waitFor(
      "the kill printed",
      () => text.stdout().includes(`○ ${agentId}  [killed]`) && documents(json.stdout()).some((d) => d[0] === "killed")
    )

    const printed = snapshots(text.stdout())
    expect(text.stdout()).not.toContain("\x1b")
    // Every snapshot is printed whole, under its own header, separated by a blank line.
    expect(printed.map((s) => s.body.split("\n")[0])).toEqual(printed.map(() => `${taskId}  watched`))
    expect(text.stdout().split("\n\n--- seq ").length).toBe(printed.length)
    // The first as of the journal's head before the spawn, then one per change, in order, ending with the kill.
    const journal = cli(env, ["events", "--task", taskId]).stdout.trim().split("\n").map((l) => JSON.parse(l))
    expect(journal.map((e) => e.kind)).toEqual(["spawned", "killed"])
    expect(printed[0]).toMatchObject({ seq: 0 })
    expect(printed[0]!.body).not.toContain(agentId)
    expect(printed.map((s) => s.seq)).toEqual([...printed.map((s) => s.seq)].sort((a, b) => a - b))
    expect(new Set(printed.map((s) => s.seq)).size).toBe(printed.length)
    expect(printed.at(-1)!.seq).toBe(journal.at(-1).seq)
    expect(printed.find((s) => s.body.includes(`● ${agentId}  [running]`))).toMatchObject({ seq: journal[0].seq })
    // The same changes as JSON documents, one per line: none, running, killed.
    expect(documents(json.stdout())).toEqual([[], ["running"], ["killed"]])

    for (const w of [text, json]) w.child.kill("SIGINT")
    for (const w of [text, json]) {
      const exit = await w.exit
      expect(exit, w.stderr()).toEqual({ code: 130, signal: null })
      expect(w.stderr()).toBe("")
    }
  })

  it("ends quietly, exit 0, when its reader has gone (status --watch | head -1)", async () => {
    const env = newEnv(undefined, backend)
    const taskId = createTask(env)
    const w = watcher(env, ["--task", taskId])
    await waitFor("the first snapshot", () => w.stdout().includes("active 0/20"))
    w.child.stdout!.destroy()
    // The next snapshot finds no reader.
    spawnAgent(env, taskId)
    const exit = await w.exit
    expect(exit, w.stderr()).toEqual({ code: 0, signal: null })
    expect(w.stderr()).toBe("")
  })
})
