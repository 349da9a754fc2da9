/**
 * The stdio transport on real Node streams: messages framed by newlines whatever the chunking; a message over the
 * limit skipped without being held and answered with a JSON-RPC error carrying its own id (found by the id scanner,
 * wherever the id stands), after which the next message is served; a line that is not JSON-RPC answered too; and the
 * transport closing, with its reason, when its input ends or its output fails.
 */
import { describe, expect, it } from "@effect/vitest"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { PassThrough } from "node:stream"
import { RequestIdScanner, StdioTransport } from "../../../src/mcp/Stdio.js"

const scan = (text: string, pieceBytes = text.length) => {
  const scanner = new RequestIdScanner()
  const bytes = Buffer.from(text)
  for (let i = 0; i < bytes.length; i += pieceBytes) scanner.feed(bytes.subarray(i, i + pieceBytes))
  return scanner.id
}

describe("RequestIdScanner", () => {
  const big = "x".repeat(100_000)
  it.each<[string, string, string | number | undefined]>([
    ["the SDK client's order (id last)", `{"method":"tools/call","params":{"a":"${big}"},"jsonrpc":"2.0","id":7}`, 7],
    ["id first, a string", `{"jsonrpc":"2.0","id":"req-1","method":"m","params":{"a":"${big}"}}`, "req-1"],
    ["spaces around the colon", `{ "id" :  -12 , "method": "m" }`, -12],
    ["an escaped string id", `{"id":"a\\"b\\u0041","method":"m"}`, "a\"bA"],
    ["ids of nested objects do not count", `{"method":"m","params":{"id":1,"arguments":{"id":"x"}}}`, undefined],
    ["a nested id before the top-level one", `{"params":{"id":1,"list":[{"id":2}]},"id":3}`, 3],
    ["a value that reads id is no key", `{"method":"id","params":{},"x":"id"}`, undefined],
    ["an id key inside a string is text", `{"method":"m","params":{"text":"\\"id\\":5"}}`, undefined],
    ["a fractional id is no id", `{"id":1.5,"method":"m"}`, undefined],
    ["null is no id", `{"id":null,"method":"m"}`, undefined],
    ["an object is no id", `{"id":{"n":1},"method":"m"}`, undefined],
    ["a notification has none", `{"jsonrpc":"2.0","method":"notifications/x"}`, undefined]
  ])("%s", (_, text, expected) => {
    expect(scan(text)).toEqual(expected)
    // Fed one byte at a time, and in pieces that split tokens, it finds the same.
    expect(scan(text, 1)).toEqual(expected)
    expect(scan(text, 7)).toEqual(expected)
  })
})

/** A transport on a pair of streams, with everything it wrote, delivered, refused and its close. */
const harness = (maxMessageBytes = 1024) => {
  const input = new PassThrough()
  const output = new PassThrough()
  const written: Array<any> = []
  let pendingOut = ""
  output.setEncoding("utf8").on("data", (d: string) => {
    pendingOut += d
    const lines = pendingOut.split("\n")
    pendingOut = lines.pop()!
    written.push(...lines.map((l) => JSON.parse(l)))
  })
  const refused: Array<string> = []
  const transport = new StdioTransport(input, output, { maxMessageBytes, onRefused: (r) => refused.push(r) })
  const messages: Array<JSONRPCMessage> = []
  transport.onmessage = (m) => messages.push(m)
  let closes = 0
  transport.onclose = () => closes++
  return { input, output, written, refused, transport, messages, closes: () => closes }
}

const settled = () => new Promise((r) => setImmediate(r))

const request = (id: number, params: Record<string, unknown> = {}) =>
  JSON.stringify({ method: "tools/call", params, jsonrpc: "2.0", id })

describe("StdioTransport", () => {
  it("frames messages by newline, whatever the chunks: split, several per chunk, CRLF, blank lines", async () => {
    const h = harness()
    await h.transport.start()
    const [a, b, c] = [request(1), request(2), request(3)]
    h.input.write(a.slice(0, 10))
    h.input.write(a.slice(10) + "\n" + b + "\r\n\n")
    h.input.write(c + "\n")
    await settled()
    expect(h.messages.map((m) => "id" in m && m.id)).toEqual([1, 2, 3])
    expect(h.written).toEqual([])
  })

  it("a message over the limit is answered with its own id and skipped; the next one is served", async () => {
    const h = harness(1024)
    await h.transport.start()
    const huge = request(41, { arguments: { text: "y".repeat(50_000) } })
    for (let i = 0; i < huge.length; i += 999) h.input.write(huge.slice(i, i + 999))
    h.input.write("\n" + request(42) + "\n")
    await settled()
    expect(h.written).toEqual([
      {
        jsonrpc: "2.0",
        id: 41,
        error: {
          code: -32600,
          message: expect.stringContaining(`Message of ${huge.length} bytes is over the limit of 1024 bytes`)
        }
      }
    ])
    expect(h.written[0].error.message).toContain("SPAWNKIT_STDIO_MAX_MESSAGE_BYTES")
    expect(h.messages.map((m) => "id" in m && m.id)).toEqual([42])
    expect(h.refused).toHaveLength(1)
    expect(h.refused[0]).toContain("(id 41)")
  })

  it("a message exactly at the limit is served", async () => {
    const h = harness(1024)
    await h.transport.start()
    const base = request(5, { pad: "" })
    const exact = request(5, { pad: "p".repeat(1024 - base.length) })
    expect(Buffer.byteLength(exact)).toBe(1024)
    h.input.write(exact + "\n")
    h.input.write(request(6, { pad: "p".repeat(1025 - base.length) }) + "\n")
    await settled()
    expect(h.messages.map((m) => "id" in m && m.id)).toEqual([5])
    expect(h.written.map((w) => [w.id, w.error.code])).toEqual([[6, -32600]])
  })

  it("a line that is not JSON gets a parse error; JSON that is not JSON-RPC an invalid-request error with its id", async () => {
    const h = harness()
    await h.transport.start()
    h.input.write("not json\n")
    h.input.write(JSON.stringify({ id: 9, hello: "world" }) + "\n")
    h.input.write(request(10) + "\n")
    await settled()
    expect(h.written).toEqual([
      { jsonrpc: "2.0", error: { code: -32700, message: "Parse error: the line is not JSON" } },
      { jsonrpc: "2.0", id: 9, error: { code: -32600, message: "Invalid request: not a JSON-RPC 2.0 message" } }
    ])
    expect(h.messages.map((m) => "id" in m && m.id)).toEqual([10])
  })

  it("closes once when its input ends, with the reason; sending afterwards fails", async () => {
    const h = harness()
    await h.transport.start()
    h.input.end(request(1).slice(0, 20))
    expect(await h.transport.closed).toBe("stdin ended")
    h.input.destroy()
    await settled()
    expect(h.closes()).toBe(1)
    expect(h.messages).toEqual([])
    await expect(h.transport.send({ jsonrpc: "2.0", id: 1, result: {} })).rejects.toThrow(/closed: stdin ended/)
  })

  it("closes when its output fails (the client's end of stdout is gone)", async () => {
    const h = harness()
    await h.transport.start()
    h.output.destroy(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))
    expect(await h.transport.closed).toBe("stdout failed: write EPIPE")
    expect(h.closes()).toBe(1)
  })

  it("input that ended before it started closes it at once", async () => {
    const h = harness()
    h.input.end()
    h.input.resume()
    await new Promise((r) => h.input.once("end", r))
    await h.transport.start()
    expect(await h.transport.closed).toBe("stdin ended")
  })
})
