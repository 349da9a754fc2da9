/**
 * The bubblewrap sandbox of an agent, as a pure argv builder (no I/O): what the agent's command runs inside when its
 * task or spawn asks for `sandbox: bwrap`. The agent's runner stays outside (it feeds the prompt, copies the output to
 * the log, writes the exit file); only the agent's own command runs in the sandbox, which shows it:
 * - the whole system read-only (`--ro-bind / /`), a fresh `/dev`, a private `/proc` and process namespace
 *   (`--unshare-pid`: other processes, and their `/proc/<pid>/environ`, are invisible), a private `/tmp`;
 * - nothing of spawnkit's home (registries, other agents' prompts, logs and secrets), nor of the worktrees root, nor
 *   of the tmux socket's directory: each is covered by an empty tmpfs;
 * - then, mounted over those, its working directory read-write (its worktree when isolated), the files it must read
 *   (its MCP configuration) read-only, and the directories its CLI keeps its state in read-write (e.g. `~/.claude`,
 *   so a conversation can be resumed);
 * - no capability when spawnkit runs as root (`--cap-drop ALL`): root inside could otherwise unmount what hides a path
 *   or remount `/` read-write (seen with bubblewrap 0.8 here).
 * The network stays the host's: agents need their APIs, and the broker listens on loopback.
 *
 * Security: every path comes from spawnkit's configuration and validated ids, never from stored data; the order of the
 * flags is the order bwrap mounts them in (hide first, then expose), which the unit tests pin.
 */

/** What an agent's sandbox shows it. */
export interface SandboxSpec {
  /** The agent's working directory, read-write (its worktree when isolated). */
  readonly workDir: string
  /** Paths covered by an empty tmpfs: spawnkit's home, the worktrees root, the tmux socket's directory. */
  readonly hide: ReadonlyArray<string>
  /** Files or directories mounted read-only over the hidden ones (the agent's MCP configuration). */
  readonly readOnly: ReadonlyArray<string>
  /** Directories mounted read-write (the CLI's own state, e.g. `~/.claude`). */
  readonly readWrite: ReadonlyArray<string>
  /** Whether spawnkit runs as root: then every capability is dropped inside. */
  readonly asRoot: boolean
  /** The bwrap binary (SPAWNKIT_BWRAP_BIN; Debian package `bubblewrap`). */
  readonly bwrap: string
}

/** The argv that runs `command` in the agent's sandbox. */
export const sandboxArgv = (spec: SandboxSpec, command: ReadonlyArray<string>): ReadonlyArray<string> => [
  spec.bwrap,
  "--ro-bind",
  "/",
  "/",
  "--dev",
  "/dev",
  "--proc",
  "/proc",
  "--tmpfs",
  "/tmp",
  ...spec.hide.flatMap((path) => ["--tmpfs", path]),
  ...spec.readOnly.flatMap((path) => ["--ro-bind", path, path]),
  ...spec.readWrite.flatMap((path) => ["--bind", path, path]),
  "--bind",
  spec.workDir,
  spec.workDir,
  "--chdir",
  spec.workDir,
  "--unshare-pid",
  "--die-with-parent",
  ...(spec.asRoot ? ["--cap-drop", "ALL"] : []),
  "--",
  ...command
]

/**
 * Where each engine's CLI keeps its own state (conversations, settings, credentials), relative to the user's home:
 * shown read-write in its sandbox so it works, and can be resumed.
 */
export const CLI_STATE: Readonly<Record<string, ReadonlyArray<string>>> = {
  claude: [".claude", ".claude.json"],
  codex: [".codex"],
  gemini: [".gemini"],
  custom: []
}
