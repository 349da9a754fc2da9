/**
 * The stdio transport of `spawnkit serve`: newline-delimited JSON-RPC on stdin and stdout, with a size limit per
 * message. It replaces the SDK's StdioServerTransport, which on a message over its 10 MiB buffer closes itself and
 * pauses stdin without a reply, so the server neither hears its client nor notices it leave. Here an oversized
 * message is skipped without being held, answered with a JSON-RPC error carrying the request's own id, and the server
 * goes on serving; the transport closes (and `closed` settles) when stdin ends, fails or closes, or stdout fails or
 * closes, so the server exits whenever its client goes away.
 */
import { serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  ErrorCode,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  type RequestId
} from "@modelcontextprotocol/sdk/types.js"
import * as Config from "effect/Config"
import * as Schema from "effect/Schema"
import type { Readable, Writable } from "node:stream"

/** Largest stdio message read (SPAWNKIT_STDIO_MAX_MESSAGE_BYTES, default 10 MiB: the SDK transport's own limit). */
export const stdioMaxMessageBytes = Config.schema(
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(1024)),
  "SPAWNKIT_STDIO_MAX_MESSAGE_BYTES"
).pipe(Config.withDefault(10 * 1024 * 1024))

const code = (character: string) => character.charCodeAt(0)
const NEWLINE = code("\n")
const QUOTE = code("\"")
const BACKSLASH = code("\\")
const COLON = code(":")
const COMMA = code(",")
const OPEN_BRACE = code("{")
const CLOSE_BRACE = code("}")
const OPEN_BRACKET = code("[")
const CLOSE_BRACKET = code("]")
const WHITESPACE = new Set([" ", "\t", "\r", "\n"].map(code))
// An id longer than this is no id a client uses; the scanner stops keeping its bytes.
const MAX_ID_BYTES = 256

/**
 * Finds the `id` member of a JSON-RPC message's top-level object in text fed piece by piece, keeping none of the text
 * but the id itself: how a message too large to hold is still answered by its own id. Members are found wherever
 * they stand (the SDK's client writes `id` last, other clients first); anything that is no valid id is ignored.
 */
export class RequestIdScanner {
  private depth = 0
  private inString = false
  private escaped = false
  /** Bytes of the top-level string being read (a key, or an id's value); undefined when it cannot matter. */
  private text: Array<number> | undefined
  private keyIsId = false
  private valueIsId = false
  private number = ""
  /** The top-level `id` read so far. */
  id: RequestId | undefined

  /** Read the next piece of the message. */
  feed(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!
      // The bulk of a large message is the inside of strings it does not keep: passed over here, without a call.
      if (this.inString && this.text === undefined && !this.escaped && byte !== BACKSLASH && byte !== QUOTE) continue
      this.read(byte)
    }
  }

  private read(byte: number) {
    if (this.inString) {
      if (this.escaped) this.escaped = false
      else if (byte === BACKSLASH) this.escaped = true
      else if (byte === QUOTE) return this.endString()
      if (this.text !== undefined) {
        if (this.text.length < MAX_ID_BYTES) this.text.push(byte)
        else this.text = undefined
      }
      return
    }
    switch (byte) {
      case QUOTE:
        this.inString = true
        this.text = this.depth === 1 ? [] : undefined
        return
      case OPEN_BRACE:
      case OPEN_BRACKET:
        this.valueIsId = false
        this.depth++
        return
      case CLOSE_BRACE:
      case CLOSE_BRACKET:
        this.endNumber()
        this.depth--
        return
      case COLON:
        this.valueIsId = this.depth === 1 && this.keyIsId
        this.keyIsId = false
        return
      case COMMA:
        this.endNumber()
        this.keyIsId = false
        return
      default:
        if (WHITESPACE.has(byte)) return this.endNumber()
        if (this.depth === 1 && (this.valueIsId || this.number !== "") && this.number.length < MAX_ID_BYTES) {
          this.number += String.fromCharCode(byte)
        }
        this.valueIsId = false
    }
  }

  private endString() {
    this.inString = false
    const text = this.text
    this.text = undefined
    const wasIdValue = this.valueIsId
    this.valueIsId = false
    if (text === undefined) return
    const value = Buffer.from(text).toString("utf8")
    if (!wasIdValue) {
      this.keyIsId = value === "id"
      return
    }
    try {
      this.id = JSON.parse(`"${value}"`) as string
    } catch {
      // Not a valid JSON string: no id.
    }
  }

  private endNumber() {
    if (this.number === "") return
    const value = Number(this.number)
    this.number = ""
    if (Number.isSafeInteger(value)) this.id = value
  }
}

/** Options of a StdioTransport. */
export interface StdioTransportOptions {
  readonly maxMessageBytes: number
  /** Told what was refused and why (the server logs it; stdout belongs to the protocol). */
  readonly onRefused: (reason: string) => void
}

const idOf = (message: unknown): RequestId | undefined => {
  const id = typeof message === "object" && message !== null && "id" in message ? message.id : undefined
  return typeof id === "string" || (typeof id === "number" && Number.isSafeInteger(id)) ? id : undefined
}

/** Newline-delimited JSON-RPC over a pair of streams, each message at most `maxMessageBytes` long. */
export class StdioTransport implements Transport {
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: ((message: JSONRPCMessage) => void) | undefined
  /** Settles with the reason once the transport has closed (its client went away, or the server closed it). */
  readonly closed: Promise<string>

  private closedBecause: string | undefined
  private settle: (reason: string) => void = () => undefined
  private pending: Array<Buffer> = []
  private pendingBytes = 0
  /** The message being skipped because it is over the limit. */
  private oversized: { bytes: number; readonly ids: RequestIdScanner } | undefined
  private readonly detach: Array<() => void> = []

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly options: StdioTransportOptions
  ) {
    this.closed = new Promise((resolve) => {
      this.settle = resolve
    })
  }

  async start(): Promise<void> {
    const on = (stream: Readable | Writable, event: string, listener: (...args: Array<any>) => void) => {
      stream.on(event, listener)
      this.detach.push(() => stream.off(event, listener))
    }
    on(this.input, "data", (chunk: Buffer) => this.read(chunk))
    on(this.input, "end", () => this.end("stdin ended"))
    on(this.input, "close", () => this.end("stdin closed"))
    on(this.input, "error", (e: Error) => this.end(`stdin failed: ${e.message}`))
    on(this.output, "error", (e: Error) => this.end(`stdout failed: ${e.message}`))
    on(this.output, "close", () => this.end("stdout closed"))
    if (this.input.readableEnded || this.input.destroyed) this.end("stdin ended")
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closedBecause !== undefined) {
      return Promise.reject(new Error(`stdio transport closed: ${this.closedBecause}`))
    }
    return new Promise((resolve, reject) => {
      this.output.write(serializeMessage(message), (error) => (error ? reject(error) : resolve()))
    })
  }

  async close(): Promise<void> {
    this.end("the server closed it")
  }

  private end(reason: string) {
    if (this.closedBecause !== undefined) return
    this.closedBecause = reason
    for (const detach of this.detach.splice(0)) detach()
    // Errors after the close (a late EPIPE) must not become uncaught exceptions.
    this.input.on("error", () => undefined)
    this.output.on("error", () => undefined)
    this.input.pause()
    this.pending = []
    this.oversized = undefined
    this.onclose?.()
    this.settle(reason)
  }

  private read(chunk: Buffer) {
    let start = 0
    while (this.closedBecause === undefined) {
      const end = chunk.indexOf(NEWLINE, start)
      this.take(chunk.subarray(start, end === -1 ? chunk.length : end))
      if (end === -1) return
      this.endOfLine()
      start = end + 1
    }
  }

  private take(piece: Buffer) {
    if (this.oversized !== undefined) {
      this.oversized.bytes += piece.length
      this.oversized.ids.feed(piece)
    } else if (this.pendingBytes + piece.length <= this.options.maxMessageBytes) {
      this.pending.push(piece)
      this.pendingBytes += piece.length
    } else {
      const ids = new RequestIdScanner()
      for (const held of this.pending) ids.feed(held)
      ids.feed(piece)
      this.oversized = { bytes: this.pendingBytes + piece.length, ids }
      this.pending = []
      this.pendingBytes = 0
    }
  }

  private endOfLine() {
    if (this.oversized !== undefined) {
      const { bytes, ids } = this.oversized
      this.oversized = undefined
      return this.refuse(
        ids.id,
        ErrorCode.InvalidRequest,
        `Message of ${bytes} bytes is over the limit of ${this.options.maxMessageBytes} bytes ` +
          "(SPAWNKIT_STDIO_MAX_MESSAGE_BYTES); it was not read and nothing was done. Send less, e.g. a file path " +
          "instead of a file's contents."
      )
    }
    const line = Buffer.concat(this.pending, this.pendingBytes).toString("utf8").replace(/\r$/, "")
    this.pending = []
    this.pendingBytes = 0
    if (line.trim() === "") return
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch {
      return this.refuse(undefined, ErrorCode.ParseError, "Parse error: the line is not JSON")
    }
    const message = JSONRPCMessageSchema.safeParse(json)
    if (!message.success) {
      return this.refuse(idOf(json), ErrorCode.InvalidRequest, "Invalid request: not a JSON-RPC 2.0 message")
    }
    this.onmessage?.(message.data)
  }

  private refuse(id: RequestId | undefined, code: number, message: string) {
    this.options.onRefused(
      `refused a stdio message${id === undefined ? "" : ` (id ${JSON.stringify(id)})`}: ${message}`
    )
    this.send({ jsonrpc: "2.0", ...(id === undefined ? {} : { id }), error: { code, message } }).catch((e: unknown) =>
      this.onerror?.(e instanceof Error ? e : new Error(String(e)))
    )
  }
}
