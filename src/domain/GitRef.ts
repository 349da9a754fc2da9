/**
 * Git names spawnkit handles, pure (no I/O): the base ref a caller gives for an agent's worktree, the commit ids git
 * answers with, and the branch spawnkit gives each agent (`spawnkit/<agent id>`).
 *
 * Security: a base ref reaches git's argv. Every one passes BaseRef first, so none can be read as an option (`-b`,
 * `--upload-pack=…`), a revision range (`a..b`), a reflog or revision expression (`@{-1}`, `x^`, `x~2`, `x:path`), a
 * glob, or carry a control character, whatever the git call's own `--end-of-options`/`--` guards.
 */
import * as Schema from "effect/Schema"
import type { AgentId } from "./Ids.js"

/** Longest base ref accepted, in characters (git's own limit is far higher; no real ref name comes close). */
export const MAX_REF_LENGTH = 200

/** Prefix of every branch spawnkit creates; spawnkit only ever deletes branches under it. */
export const BRANCH_PREFIX = "spawnkit/"

const hasControl = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/**
 * Rules of `git check-ref-format` (git-check-ref-format(1), numbered as there), each with what is wrong:
 * 1. no slash-separated component begins with `.` or ends with `.lock`;
 * 2. (at least one `/`: not required here, a one-level name such as `main` or `HEAD` is a branch shorthand);
 * 3. no `..`;
 * 4. no ASCII control character (below 0x20, or DEL), space, `~`, `^` or `:`;
 * 5. no `?`, `*` or `[`;
 * 6. does not begin or end with `/`, no `//`;
 * 7. does not end with `.`;
 * 8. no `@{`;
 * 9. is not `@` alone;
 * 10. no `\`.
 * Stricter than git: not empty, at most MAX_REF_LENGTH characters, never a leading `-` (it would read as an option),
 * and printable ASCII only (git would take other bytes; spawnkit refuses them rather than judge Unicode look-alikes).
 */
const RULES: ReadonlyArray<readonly [(ref: string) => boolean, string]> = [
  [(r) => r.length === 0, "a ref name cannot be empty"],
  [(r) => r.length > MAX_REF_LENGTH, `a ref name has at most ${MAX_REF_LENGTH} characters`],
  [(r) => r.startsWith("-"), "a ref name cannot start with '-' (it would be read as an option)"],
  [(r) => hasControl(r), "a ref name cannot contain a control character (line break, tab, DEL…)"],
  [(r) => r.includes(" "), "a ref name cannot contain a space"],
  [(r) => /[^\x21-\x7e]/.test(r), "a ref name may contain printable ASCII characters only"],
  [(r) => /[~^:?*[\\]/.test(r), "a ref name cannot contain any of ~ ^ : ? * [ \\ (revision syntax, globs)"],
  [(r) => r.includes(".."), "a ref name cannot contain '..' (a revision range)"],
  [(r) => r.includes("@{"), "a ref name cannot contain '@{' (reflog syntax)"],
  [(r) => r === "@", "a ref name cannot be '@' alone"],
  [(r) => r.startsWith("/") || r.endsWith("/"), "a ref name cannot start or end with '/'"],
  [(r) => r.includes("//"), "a ref name cannot contain '//'"],
  [(r) => r.endsWith("."), "a ref name cannot end with '.'"],
  [(r) => r.split("/").some((c) => c.startsWith(".")), "no component of a ref name can start with '.'"],
  [(r) => r.split("/").some((c) => c.endsWith(".lock")), "no component of a ref name can end with '.lock'"]
]

/** Why a string is not an acceptable base ref (the first rule it breaks), or undefined when it is one. */
export const baseRefProblem = (ref: string): string | undefined => RULES.find(([breaks]) => breaks(ref))?.[1]

/**
 * A base ref given by a caller: a branch, tag or full ref name (`main`, `feature/x-1`, `v1.2.3`, `refs/heads/main`,
 * `HEAD`) or a commit id (7 to 64 hex digits, which these rules accept as they stand). Whether it names a commit of
 * the repository is git's answer (Git.resolveCommit); this only decides whether it may be asked.
 */
export const BaseRef = Schema.String.check(
  Schema.makeFilter((ref: string) => {
    const problem = baseRefProblem(ref)
    return problem === undefined ? true : `Expected a branch, tag or commit id: ${problem}`
  }),
  // Last, with a JSON Schema form, so a tool's description of the field reaches its listed schema.
  Schema.isMinLength(1),
  Schema.isMaxLength(MAX_REF_LENGTH)
)
/** @see BaseRef */
export type BaseRef = typeof BaseRef.Type

/** A full commit id as git prints it: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits. */
export const CommitId = Schema.String.check(
  Schema.isPattern(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/u, {
    message: "Expected a commit id of 40 or 64 lower-case hex digits"
  })
)
/** @see CommitId */
export type CommitId = typeof CommitId.Type

/** Whether a string is a full commit id (see CommitId). */
export const isCommitId = (s: string): s is CommitId => /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(s)

/**
 * The branch of an agent's worktree: `spawnkit/<agent id>`.
 * Invariant: an AgentId matches `^[A-Za-z0-9_-]{1,64}$`, so the branch is always a valid ref name, holds no glob
 * character, and starts with BRANCH_PREFIX (never with `-`).
 */
export const branchOf = (id: AgentId): string => `${BRANCH_PREFIX}${id}`

/**
 * Whether a branch name is one spawnkit made (`spawnkit/` and an agent id): the only branches spawnkit deletes, and the
 * only ones its git calls take.
 */
export const isSpawnkitBranch = (branch: string): boolean => /^spawnkit\/[A-Za-z0-9_-]{1,64}$/.test(branch)
