/**
 * vitest global setup of the tiers that start tmux: the run gets a fresh TMUX_TMPDIR, and at teardown no tmux socket
 * may be left in it. Every test's tmux server lives on a socket path in the test's own temp directory (`tmux -S`), so
 * a socket here means a tmux started by name (`-L`, or no socket at all), outside any test's clean-up: the run fails,
 * naming the sockets, after killing their servers.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"

/** Every path below `dir` (depth first). */
const walk = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = NodePath.join(dir, entry.name)
    return entry.isDirectory() ? [path, ...walk(path)] : [path]
  })

export default function setup() {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sk-tmux-"))
  const previous = process.env["TMUX_TMPDIR"]
  // Test workers are started after global setup and inherit this environment, and so do the processes they start.
  process.env["TMUX_TMPDIR"] = dir
  return () => {
    if (previous === undefined) delete process.env["TMUX_TMPDIR"]
    else process.env["TMUX_TMPDIR"] = previous
    const sockets = walk(dir).filter((path) => Fs.statSync(path).isSocket())
    for (const socket of sockets) spawnSync("tmux", ["-S", socket, "kill-server"], { stdio: "ignore" })
    Fs.rmSync(dir, { recursive: true, force: true })
    if (sockets.length > 0) {
      throw new Error(
        `tmux sockets were left in the run's TMUX_TMPDIR (a tmux server started outside a test's own directory): ${
          sockets.map((s) => NodePath.relative(dir, s)).join(", ")
        }`
      )
    }
  }
}
