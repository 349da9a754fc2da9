/**
 * The git names spawnkit accepts, table-tested: a base ref reaches git's argv, so each row is a ref that must pass or
 * must be refused with the rule it breaks (option injection, revision syntax, control characters, git's
 * check-ref-format rules, length); commit ids; and the branch of an agent.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import {
  BaseRef,
  baseRefProblem,
  BRANCH_PREFIX,
  branchOf,
  CommitId,
  isSpawnkitBranch
} from "../../../src/domain/GitRef.js"
import { AgentId } from "../../../src/domain/Ids.js"

const SHA1 = "0123456789abcdef0123456789abcdef01234567"
const SHA256 = "0123456789abcdef".repeat(4)

const ACCEPTED = [
  "HEAD",
  "main",
  "feature/x-1",
  "v1.2.3",
  "refs/heads/main",
  "refs/tags/v1.0",
  "origin/main",
  SHA1,
  "abc1234",
  "release_2026.12",
  "a".repeat(200)
]

/** A refused ref and a fragment of the reason given. */
const REFUSED: ReadonlyArray<readonly [string, string]> = [
  ["", "cannot be empty"],
  ["a".repeat(201), "at most 200"],
  ["-b", "start with '-'"],
  ["--upload-pack=x", "start with '-'"],
  ["-", "start with '-'"],
  ["a..b", "'..'"],
  ["main..", "'..'"],
  ["main\n", "control character"],
  ["x\u0007", "control character"],
  ["x\u007f", "control character"],
  ["a\tb", "control character"],
  ["a\0b", "control character"],
  ["a b", "space"],
  ["@{-1}", "'@{'"],
  ["main@{1}", "'@{'"],
  ["@", "'@' alone"],
  ["main~1", "~ ^ :"],
  ["main^", "~ ^ :"],
  ["main:path", "~ ^ :"],
  ["ma?n", "~ ^ :"],
  ["ma*n", "~ ^ :"],
  ["ma[n", "~ ^ :"],
  ["ma\\n", "~ ^ :"],
  ["refs/heads/.hidden", "start with '.'"],
  [".main", "start with '.'"],
  ["x.lock", "'.lock'"],
  ["refs/heads/x.lock/y", "'.lock'"],
  ["ok/", "start or end with '/'"],
  ["/main", "start or end with '/'"],
  ["a//b", "'//'"],
  ["main.", "end with '.'"],
  ["mäin", "printable ASCII"]
]

const decode = Schema.decodeUnknownExit(BaseRef)

describe("BaseRef", () => {
  it.each(ACCEPTED)("accepts %j", (ref) => {
    expect(baseRefProblem(ref)).toBeUndefined()
    expect(decode(ref)._tag).toBe("Success")
  })

  it.each(REFUSED)("refuses %j (%s)", (ref, reason) => {
    expect(baseRefProblem(ref)).toContain(reason)
    const exit = decode(ref)
    expect(exit._tag).toBe("Failure")
    expect(String(exit)).toContain(reason)
  })

  it("refuses what is not a string", () => {
    expect(decode(42)._tag).toBe("Failure")
    expect(decode(undefined)._tag).toBe("Failure")
  })
})

describe("CommitId", () => {
  it.each([SHA1, SHA256])("accepts %s", (id) => expect(Schema.is(CommitId)(id)).toBe(true))
  it.each([SHA1.toUpperCase(), SHA1.slice(1), "abc1234", `${SHA1}0`, SHA256.slice(1), "HEAD", `-${SHA1.slice(1)}`])(
    "refuses %s",
    (id) => expect(Schema.is(CommitId)(id)).toBe(false)
  )
})

describe("branchOf", () => {
  it("is spawnkit/<agent id>, a ref BaseRef accepts and spawnkit owns", () => {
    for (const raw of ["investigator-193600-1a2b3c4d", "-legacy-id", "a", "A_b-9".repeat(12).slice(0, 64)]) {
      const id = Schema.decodeUnknownSync(AgentId)(raw)
      const branch = branchOf(id)
      expect(branch).toBe(`spawnkit/${raw}`)
      expect(branch.startsWith(BRANCH_PREFIX)).toBe(true)
      expect(baseRefProblem(branch)).toBeUndefined()
      expect(isSpawnkitBranch(branch)).toBe(true)
    }
  })

  it("isSpawnkitBranch refuses every other branch", () => {
    for (const branch of ["main", "spawnkit", "spawnkit/", "spawnkit/a/b", "spawnkit/../main", "xspawnkit/a", "-b"]) {
      expect(isSpawnkitBranch(branch)).toBe(false)
    }
  })
})
