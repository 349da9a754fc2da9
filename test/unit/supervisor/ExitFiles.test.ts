/**
 * Exit file names: only `<task id>.<agent id>` with both parts valid ids is an exit; names starting with `.` (runner
 * temp files, supervisor markers) are internal; anything else is invalid, whatever it holds.
 */
import { describe, expect, it } from "@effect/vitest"
import { parseExitFileName, supervisorMarkerName } from "../../../src/supervisor/ExitFiles.js"

const TASK = "TASK-20261203-065155-a1570596"
const AGENT = "worker-065156-98a39b4b"

describe("parseExitFileName", () => {
  it("splits a valid name into its task id and agent id", () => {
    expect(parseExitFileName(`${TASK}.${AGENT}`)).toEqual({ _tag: "Exit", taskId: TASK, agentId: AGENT })
  })

  it("keeps agent ids of old registries that start with '-'", () => {
    expect(parseExitFileName(`${TASK}.-old-1`)).toEqual({ _tag: "Exit", taskId: TASK, agentId: "-old-1" })
  })

  it("leaves runner temp files and supervisor markers alone", () => {
    expect(parseExitFileName(`.${TASK}.${AGENT}.4242.tmp`)).toEqual({ _tag: "Internal" })
    expect(parseExitFileName(supervisorMarkerName("ab12cd34", 4242))).toEqual({ _tag: "Internal" })
  })

  it.each([
    ["no dot", `${TASK}${AGENT}`],
    ["no task id", `task-1.${AGENT}`],
    ["an empty agent id", `${TASK}.`],
    ["the ids swapped", `${AGENT}.${TASK}`],
    ["a dot in the agent id", `${TASK}.${AGENT}.tmp`],
    ["a path in the agent id", `${TASK}.a/../b`],
    ["shell syntax", `${TASK}.$(reboot)`],
    ["whitespace", `${TASK}.a b`],
    ["an over-long agent id", `${TASK}.${"a".repeat(65)}`],
    ["a NUL", `${TASK}.a\u0000b`]
  ])("refuses a name with %s", (_what, name) => {
    expect(parseExitFileName(name)._tag).toBe("Invalid")
  })

  it("names a marker so that the runner finds the process id after the last dot", () => {
    const marker = supervisorMarkerName("ab12cd34", 4242)
    expect(marker.startsWith(".supervisor.")).toBe(true)
    expect(marker.slice(marker.lastIndexOf(".") + 1)).toBe("4242")
  })
})
