/**
 * AtomicFile and the registry file's integrity with real files and processes: atomic replacement, faults injected
 * between the steps of a write (failure, interruption, SIGKILL), a concurrent reader that must never see a torn
 * document, and FileRegistry's refusal to read or overwrite a corrupt registry file.
 */
import { NodeServices } from "@effect/platform-node"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as Spawnkit from "../../src/index.js"
import { writeAtomic } from "../../src/registry/AtomicFile.js"
import { killAllChildren, startChild, supportScript } from "../support/Children.js"
import { makeTestEnv, runIn, type TestEnv } from "../support/Harness.js"

const { FaultInjection, InjectedFault } = Spawnkit

const READER = supportScript("atomic-reader.mjs")
const WRITER = supportScript("atomic-write.mjs")

const dirs: Array<string> = []
const tempDir = () => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-atomic-"))
  dirs.push(dir)
  return dir
}
const envs: Array<TestEnv> = []

afterEach(async () => {
  await killAllChildren()
  for (const dir of dirs.splice(0)) Fs.rmSync(dir, { recursive: true, force: true })
  for (const env of envs.splice(0)) env.cleanup()
})

const noFaults = FaultInjection.none
const failAt = (step: Spawnkit.FaultStep) =>
  FaultInjection.layer((s) => (s === step ? Effect.fail(new InjectedFault({ step: s })) : Effect.void))

/** writeAtomic with the FaultInjection service taken from `faults`, on Node's file system. */
const write = (target: string, contents: string, faults: Layer.Layer<Spawnkit.FaultInjection>) =>
  Effect.gen(function*() {
    const service = yield* FaultInjection
    return yield* writeAtomic(target, contents, service)
  }).pipe(Effect.provide(faults), Effect.provide(NodeServices.layer))

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex")

/** An old registry-like file with bytes that only an exact copy reproduces (no trailing newline, non-ASCII). */
const OLD_BYTES = Buffer.from("{\"task_id\":\"old\",\"note\":\"ünïcødé \\u0000 ☃\"}", "utf8")

describe("AtomicFile.writeAtomic", () => {
  it("creates and then replaces the target, leaving no temp file", async () => {
    const dir = tempDir()
    const target = NodePath.join(dir, "AGENT_REGISTRY.json")
    await Effect.runPromise(write(target, "first\n", noFaults))
    expect(Fs.readFileSync(target, "utf8")).toBe("first\n")
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])

    const second = JSON.stringify({ version: 2, agents: Array.from({ length: 500 }, (_, i) => ({ id: i })) }, null, 2)
    await Effect.runPromise(write(target, second, noFaults))
    expect(Fs.readFileSync(target, "utf8")).toBe(second)
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])

    // Shorter than before: no trailing bytes of the longer old content survive.
    await Effect.runPromise(write(target, "{}", noFaults))
    expect(Fs.readFileSync(target, "utf8")).toBe("{}")
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])
  })

  for (const step of ["registry-after-write", "registry-after-fsync"] as const) {
    it(`a fault at ${step} keeps the old bytes exactly and removes the temp file`, async () => {
      const dir = tempDir()
      const target = NodePath.join(dir, "AGENT_REGISTRY.json")
      Fs.writeFileSync(target, OLD_BYTES)
      const exit = await Effect.runPromise(Effect.exit(write(target, "{\"new\": true}\n", failAt(step))))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.findErrorOption(exit)
      expect(Option.isSome(error)).toBe(true)
      expect(Option.getOrThrow(error)).toBeInstanceOf(InjectedFault)
      expect(Option.getOrThrow(error)).toMatchObject({ _tag: "InjectedFault", step })
      expect(Fs.readFileSync(target).equals(OLD_BYTES)).toBe(true)
      expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])
    })

    it(`a fault at ${step} on the first write leaves no target and no temp file`, async () => {
      const dir = tempDir()
      const target = NodePath.join(dir, "AGENT_REGISTRY.json")
      const exit = await Effect.runPromise(Effect.exit(write(target, "{\"new\": true}\n", failAt(step))))
      expect(Option.getOrThrow(Exit.findErrorOption(exit))).toMatchObject({ _tag: "InjectedFault", step })
      expect(Fs.readdirSync(dir)).toEqual([])
    })
  }

  it("a fault at registry-after-rename reports the failure with the new bytes in place and no temp file", async () => {
    const dir = tempDir()
    const target = NodePath.join(dir, "AGENT_REGISTRY.json")
    Fs.writeFileSync(target, OLD_BYTES)
    const exit = await Effect.runPromise(
      Effect.exit(write(target, "{\"new\": true}\n", failAt("registry-after-rename")))
    )
    expect(Option.getOrThrow(Exit.findErrorOption(exit))).toMatchObject({
      _tag: "InjectedFault",
      step: "registry-after-rename"
    })
    expect(Fs.readFileSync(target, "utf8")).toBe("{\"new\": true}\n")
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])
  })

  it("a write interrupted between writing and fsyncing the temp file keeps the old bytes and removes the temp file", async () => {
    const dir = tempDir()
    const target = NodePath.join(dir, "AGENT_REGISTRY.json")
    Fs.writeFileSync(target, OLD_BYTES)
    const hangAfterWrite = FaultInjection.layer((s) => (s === "registry-after-write" ? Effect.never : Effect.void))
    const result = await Effect.runPromise(Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(write(target, "{\"new\": true}\n", hangAfterWrite))
      // Wait until the temp file exists (the write is parked at the fault point), then interrupt.
      let listing = Fs.readdirSync(dir)
      for (let i = 0; i < 1000 && listing.length < 2; i++) {
        yield* Effect.sleep(10)
        listing = Fs.readdirSync(dir)
      }
      yield* Fiber.interrupt(fiber)
      return { during: listing, exit: yield* Fiber.await(fiber) }
    }))
    expect(result.during).toHaveLength(2)
    expect(result.during.find((name) => name !== "AGENT_REGISTRY.json")).toMatch(
      new RegExp(`^AGENT_REGISTRY\\.json\\.tmp-${process.pid}-[0-9a-f]+$`)
    )
    expect(Exit.hasInterrupts(result.exit)).toBe(true)
    expect(Fs.readFileSync(target).equals(OLD_BYTES)).toBe(true)
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])
  })

  for (const step of ["registry-after-write", "registry-after-fsync"] as const) {
    it(`a writer process SIGKILLed at ${step} leaves the old bytes exactly (and at most its own temp file)`, async () => {
      const dir = tempDir()
      const target = NodePath.join(dir, "AGENT_REGISTRY.json")
      const source = NodePath.join(tempDir(), "new.json")
      Fs.writeFileSync(target, OLD_BYTES)
      Fs.writeFileSync(source, JSON.stringify({ new: true, pad: "n".repeat(100_000) }))
      const child = startChild(WRITER, [target, source, `${step}:kill`])
      const exit = await child.exited
      expect(exit.signal).toBe("SIGKILL")
      expect(child.lines).not.toContain("written")
      expect(Fs.readFileSync(target).equals(OLD_BYTES)).toBe(true)
      // A crashed writer cannot clean up: what is left is named for its pid, so a reconciler can remove it.
      const leftovers = Fs.readdirSync(dir).filter((name) => name !== "AGENT_REGISTRY.json")
      for (const name of leftovers) {
        expect(name).toMatch(new RegExp(`^AGENT_REGISTRY\\.json\\.tmp-${child.pid}-[0-9a-f]+$`))
      }
    })
  }

  it("a writer process SIGKILLed at registry-after-rename leaves exactly the new bytes and no temp file", async () => {
    const dir = tempDir()
    const target = NodePath.join(dir, "AGENT_REGISTRY.json")
    const source = NodePath.join(tempDir(), "new.json")
    const contents = JSON.stringify({ new: true, pad: "n".repeat(100_000) })
    Fs.writeFileSync(target, OLD_BYTES)
    Fs.writeFileSync(source, contents)
    const child = startChild(WRITER, [target, source, "registry-after-rename:kill"])
    expect((await child.exited).signal).toBe("SIGKILL")
    expect(Fs.readFileSync(target, "utf8")).toBe(contents)
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])
  })

  it("a reader process never sees a torn document during 300 rewrites of documents of varied sizes", async () => {
    const dir = tempDir()
    const target = NodePath.join(dir, "AGENT_REGISTRY.json")
    // Sizes from a few bytes to ~150 KB, in an order that makes consecutive versions differ widely in length.
    const counts = [0, 1800, 3, 700, 2100, 40, 1, 1200, 90, 2000, 250, 0, 1500, 12]
    const doc = (version: number) => {
      const count = counts[version % counts.length]! + (version % 7)
      const agents = Array.from({ length: count }, (_, k) => ({ id: `agent-${version}-${k}`, status: "running" }))
      return JSON.stringify({ version, count, agents }, null, 2) + "\n"
    }
    const versions = 300
    const written = new Map<string, number>()
    const initial = doc(0)
    written.set(sha256(initial), 0)
    Fs.writeFileSync(target, initial)

    const reader = startChild(READER, [target])
    await reader.waitForLine("ready")
    await Effect.runPromise(Effect.forEach(
      Array.from({ length: versions }, (_, i) => i + 1),
      (version) =>
        Effect.suspend(() => {
          const contents = doc(version)
          written.set(sha256(contents), version)
          return write(target, contents, noFaults)
        }),
      { discard: true }
    ))
    reader.send("stop")
    expect((await reader.exited).code).toBe(0)
    const report = JSON.parse(reader.lines.find((l) => l.startsWith("{")) ?? "null") as {
      reads: number
      errorCount: number
      errors: Array<string>
      seen: Record<string, number>
    }
    console.log(
      `[AtomicFile] reader: ${report.reads} reads during ${versions} rewrites, ` +
        `${Object.keys(report.seen).length} distinct versions seen, ${report.errorCount} torn`
    )
    expect(report.errors).toEqual([])
    expect(report.errorCount).toBe(0)
    // Every read was byte for byte one of the written versions.
    const unknown = Object.keys(report.seen).filter((hash) => !written.has(hash))
    expect(unknown).toEqual([])
    // The reader really ran during the rewrites: it saw more than one version.
    expect(Object.keys(report.seen).length).toBeGreaterThan(1)
    expect(Fs.readFileSync(target, "utf8")).toBe(doc(versions))
    expect(Fs.readdirSync(dir)).toEqual(["AGENT_REGISTRY.json"])
  })
})

describe("FileRegistry with a corrupt registry file", () => {
  const corruptions: ReadonlyArray<{ name: string; bytes: (valid: Buffer, taskId: string) => Buffer }> = [
    {
      name: "garbage bytes",
      bytes: () => Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x22, 0x80, 0x0a, 0xc3, 0x28, 0x5d, 0x00, 0x7d])
    },
    {
      name: "a truncated document (the first half of a valid one)",
      bytes: (valid) => valid.subarray(0, Math.floor(valid.length / 2))
    },
    {
      name: "valid JSON that fails the schema (wrong field types)",
      bytes: (valid) => {
        const json = JSON.parse(valid.toString("utf8"))
        return Buffer.from(JSON.stringify({ ...json, max_concurrent: "lots", agents: {} }, null, 2) + "\n")
      }
    },
    {
      name: "valid JSON that fails the schema (required fields missing)",
      bytes: (_valid, taskId) => Buffer.from(JSON.stringify({ task_id: taskId, agents: [] }))
    }
  ]

  for (const corruption of corruptions) {
    it(`update and read fail with RegistryCorrupt on ${corruption.name}, leaving the bytes unchanged`, async () => {
      const env = makeTestEnv()
      envs.push(env)
      const created = await runIn(env, Spawnkit.createTask({ description: "corruption test" }))
      const taskId = created.task_id as Spawnkit.TaskId
      const file = NodePath.join(env.home, taskId, "AGENT_REGISTRY.json")
      const valid = Fs.readFileSync(file)
      const corrupt = corruption.bytes(valid, taskId)
      Fs.writeFileSync(file, corrupt)
      const listingBefore = Fs.readdirSync(NodePath.dirname(file)).sort()

      let transactionsRun = 0
      const outcome = await runIn(
        env,
        Effect.gen(function*() {
          const registry = yield* Spawnkit.Registry
          const update = yield* Effect.flip(registry.update(taskId, ({ task }) =>
            Effect.sync(() => {
              transactionsRun++
              return { result: "written", next: { ...task, task_description: "overwritten" } }
            })))
          const read = yield* Effect.flip(registry.read(taskId))
          const list = yield* registry.list({ scope: "all" })
          return { update, read, list }
        })
      )
      for (const error of [outcome.update, outcome.read]) {
        expect(error).toBeInstanceOf(Spawnkit.RegistryCorrupt)
        expect(error).toMatchObject({ _tag: "RegistryCorrupt", path: file, taskId })
      }
      // A listing reports the task it cannot read instead of failing.
      expect(outcome.list.tasks).toEqual([])
      expect(outcome.list.unreadable).toMatchObject([{ task_id: taskId, location: file }])
      expect(transactionsRun).toBe(0)
      expect(Fs.readFileSync(file).equals(corrupt)).toBe(true)
      expect(Fs.readdirSync(NodePath.dirname(file)).sort()).toEqual(listingBefore)

      // Control: with the valid bytes back, the same transaction goes through.
      Fs.writeFileSync(file, valid)
      const result = await runIn(
        env,
        Effect.gen(function*() {
          const registry = yield* Spawnkit.Registry
          return yield* registry.update(
            taskId,
            ({ task }) => Effect.succeed({ result: "written", next: { ...task, task_description: "repaired" } })
          )
        })
      )
      expect(result).toBe("written")
      expect(JSON.parse(Fs.readFileSync(file, "utf8")).task_description).toBe("repaired")
    })
  }
})
