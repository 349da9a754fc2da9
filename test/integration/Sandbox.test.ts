/**
 * The sandbox's argv run by the real bubblewrap (Debian package; `.ci/run` installs it): inside, the hidden home is
 * empty, the agent's own working directory is writable, its configuration readable and not writable, other
 * processes are invisible, and (as root) the hiding cannot be undone.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { sandboxArgv } from "../../src/host/Sandbox.js"

const dirs: Array<string> = []
afterEach(() => {
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
})

const layout = () => {
  const root = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sk-sandbox-"))
  dirs.push(root)
  const home = NodePath.join(root, "home")
  const work = NodePath.join(home, ".spawnkit-worktrees", "TASK-1", "a-1")
  const config = NodePath.join(home, "TASK-1", "prompts", "a-1.mcp.json")
  const sibling = NodePath.join(home, "TASK-1", "prompts", "b-1.prompt")
  Fs.mkdirSync(work, { recursive: true })
  Fs.mkdirSync(NodePath.dirname(config), { recursive: true })
  Fs.writeFileSync(config, "{}")
  Fs.writeFileSync(sibling, "a sibling's prompt")
  return { home, work, config, sibling }
}

const runIn = (paths: ReturnType<typeof layout>, script: string) => {
  const argv = sandboxArgv(
    {
      workDir: paths.work,
      hide: [paths.home],
      readOnly: [paths.config],
      readWrite: [],
      asRoot: process.getuid?.() === 0,
      bwrap: "bwrap"
    },
    ["sh", "-c", script]
  )
  return spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" })
}

describe("the bubblewrap sandbox", () => {
  it("hides the home but the agent's own paths, and other processes", () => {
    const paths = layout()
    const r = runIn(
      paths,
      [
        `test -e ${paths.sibling} && echo SIBLING-VISIBLE`,
        `echo work > ${paths.work}/out.txt && echo WORK-WRITABLE`,
        `cat ${paths.config} && echo CONFIG-READABLE`,
        `(echo x > ${paths.config}) 2>/dev/null && echo CONFIG-WRITABLE`,
        "echo PROCESSES $(ls /proc | grep -c '^[0-9]')",
        "pwd"
      ].join("; ")
    )
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).not.toContain("SIBLING-VISIBLE")
    expect(r.stdout).toContain("WORK-WRITABLE")
    expect(r.stdout).toContain("CONFIG-READABLE")
    expect(r.stdout).not.toContain("CONFIG-WRITABLE")
    // sh, the command substitution's subshell and ls (and bwrap's own init): a handful, not the host's hundreds.
    expect(Number(/PROCESSES (\d+)/.exec(r.stdout)?.[1])).toBeLessThan(10)
    expect(r.stdout.trim().split("\n").at(-1)).toBe(paths.work)
    // What it wrote is on the host, in its working directory only.
    expect(Fs.readFileSync(NodePath.join(paths.work, "out.txt"), "utf8")).toBe("work\n")
  })

  it("cannot undo the hiding, even when spawnkit runs as root", () => {
    const paths = layout()
    const r = runIn(paths, `umount ${paths.home} 2>/dev/null; test -e ${paths.sibling} && echo SIBLING-VISIBLE; true`)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).not.toContain("SIBLING-VISIBLE")
  })
})
