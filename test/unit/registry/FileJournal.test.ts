/**
 * The file journal's commit protocol on real files: a batch counts once marked or once its registry shows it; the
 * next writer marks a committed unmarked batch, cuts off an uncommitted or torn one, and finds the head.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import {
  appendBatch,
  appendMark,
  type Batch,
  compact,
  linesOf,
  parseLine,
  settle
} from "../../../src/registry/FileJournal.js"

const AT = "2026-01-15T12:00:00.000Z"
const batch = (first: number, count: number, task = "TASK-a"): Batch => ({
  tx: first + count - 1,
  events: Array.from({ length: count }, (_, i) => ({
    seq: first + i,
    at: AT,
    task_id: task,
    agent_id: `a${first + i}`,
    kind: "spawned",
    status: "running"
  })) as unknown as Batch["events"]
})
const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => Fs.rmSync(d, { recursive: true, force: true })))
const journal = () => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "sk-journal-"))
  dirs.push(dir)
  return NodePath.join(dir, "events.jsonl")
}
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

describe("file journal", () => {
  it("parses batches and marks, and nothing else", () => {
    expect(parseLine(JSON.stringify({ ok: 3 }))).toEqual({ ok: 3 })
    expect(parseLine(JSON.stringify(batch(1, 2)))).toMatchObject({ tx: 2 })
    for (const bad of ["", "{", "{\"ok\":0}", "{\"ok\":\"1\"}", "{\"tx\":1,\"events\":[]}", "[]", "null"]) {
      expect(parseLine(bad)).toBeUndefined()
    }
    const text = `${JSON.stringify({ ok: 1 })}\n${JSON.stringify({ ok: 2 })}\npartial`
    expect(linesOf(text, 100).map((l) => [l.start, l.line])).toEqual([[100, { ok: 1 }], [109, { ok: 2 }]])
  })

  it("settle: an empty journal is at 0; a marked batch is the head", async () => {
    const file = journal()
    expect(await run(settle(file, () => Effect.succeed(false)))).toEqual({ seq: 0, size: 0 })
    await run(appendBatch(file, batch(1, 2)))
    await run(appendMark(file, 2))
    expect((await run(settle(file, () => Effect.die("not asked")))).seq).toBe(2)
  })

  it("settle marks an unmarked batch whose registry shows it, and cuts off one whose registry does not", async () => {
    const file = journal()
    await run(appendBatch(file, batch(1, 1)))
    await run(appendMark(file, 1))
    await run(appendBatch(file, batch(2, 2)))
    const committed = await run(settle(file, (b) => Effect.succeed(b.tx === 3)))
    expect(committed.seq).toBe(3)
    expect(Fs.readFileSync(file, "utf8").trim().split("\n").at(-1)).toBe(JSON.stringify({ ok: 3 }))
    const before = Fs.statSync(file).size
    await run(appendBatch(file, batch(4, 1)))
    const cut = await run(settle(file, () => Effect.succeed(false)))
    expect(cut).toEqual({ seq: 3, size: before })
    expect(Fs.statSync(file).size).toBe(before)
  })

  it("settle cuts off a torn last line (a crash mid-append)", async () => {
    const file = journal()
    await run(appendBatch(file, batch(1, 1)))
    await run(appendMark(file, 1))
    const size = Fs.statSync(file).size
    Fs.appendFileSync(file, "{\"tx\":2,\"events\":[{\"se")
    expect(await run(settle(file, () => Effect.succeed(true)))).toEqual({ seq: 1, size })
    expect(Fs.statSync(file).size).toBe(size)
  })

  it("compact keeps the newest whole batches holding at least `retain` events, once there are twice as many", async () => {
    const file = journal()
    for (let i = 1; i <= 10; i++) {
      await run(appendBatch(file, batch(i, 1)))
      await run(appendMark(file, i))
    }
    const write = (f: string, text: string) => Effect.sync(() => Fs.writeFileSync(f, text))
    const untouched = Fs.statSync(file).size
    expect(await run(compact(file, 5, write))).toBe(untouched)
    await run(compact(file, 3, write))
    const kept = linesOf(Fs.readFileSync(file, "utf8"), 0).flatMap((
      l
    ) => (l.line !== undefined && "tx" in l.line ? [l.line.tx] : []))
    expect(kept).toEqual([8, 9, 10])
  })
})
