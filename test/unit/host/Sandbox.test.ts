/**
 * The sandbox's argv, pinned: bwrap mounts in the order of its flags, so what is hidden must come before what is shown
 * again over it, and the command comes after `--` untouched.
 */
import { describe, expect, it } from "@effect/vitest"
import { sandboxArgv, type SandboxSpec } from "../../../src/host/Sandbox.js"

const spec: SandboxSpec = {
  workDir: "/home/u/.agent-workspace/.spawnkit-worktrees/TASK-1/a-1",
  hide: ["/home/u/.agent-workspace", "/tmp/spawnkit-sockets"],
  readOnly: ["/home/u/.agent-workspace/TASK-1/prompts/a-1.mcp.json"],
  readWrite: ["/home/u/.claude"],
  asRoot: false,
  bwrap: "/usr/bin/bwrap"
}

const indexOf = (argv: ReadonlyArray<string>, ...flag: ReadonlyArray<string>) =>
  argv.findIndex((_, i) => flag.every((f, j) => argv[i + j] === f))

describe("sandboxArgv", () => {
  it("shows the system read-only, hides the home first and shows the agent's own paths over it", () => {
    const argv = sandboxArgv(spec, ["claude", "--print"])
    expect(argv.slice(0, 4)).toEqual(["/usr/bin/bwrap", "--ro-bind", "/", "/"])
    const hideHome = indexOf(argv, "--tmpfs", "/home/u/.agent-workspace")
    const config = indexOf(argv, "--ro-bind", spec.readOnly[0]!, spec.readOnly[0]!)
    const work = indexOf(argv, "--bind", spec.workDir, spec.workDir)
    expect(hideHome).toBeGreaterThan(0)
    expect(config).toBeGreaterThan(hideHome)
    expect(work).toBeGreaterThan(hideHome)
    expect(indexOf(argv, "--tmpfs", "/tmp/spawnkit-sockets")).toBeGreaterThan(0)
    expect(indexOf(argv, "--bind", "/home/u/.claude", "/home/u/.claude")).toBeGreaterThan(hideHome)
    expect(indexOf(argv, "--chdir", spec.workDir)).toBeGreaterThan(work)
    expect(argv).toContain("--unshare-pid")
    expect(argv).toContain("--die-with-parent")
    expect(argv).not.toContain("--cap-drop")
    expect(argv.slice(argv.indexOf("--") + 1)).toEqual(["claude", "--print"])
  })

  it("drops every capability when spawnkit runs as root", () => {
    const argv = sandboxArgv({ ...spec, asRoot: true }, ["sh"])
    expect(indexOf(argv, "--cap-drop", "ALL")).toBeLessThan(argv.indexOf("--"))
  })

  it("passes the command after -- as it is, however it looks", () => {
    const command = ["sh", "-c", "echo --tmpfs / ; rm -rf ~", "--bind", "/", "/"]
    const argv = sandboxArgv(spec, command)
    expect(argv.slice(argv.lastIndexOf("--", argv.length - command.length) + 1)).toEqual(command)
  })
})
