/**
 * The host's brokers: long-lived spawnkit MCP servers on loopback (`serve --http`) that agents reach with their own
 * bearer tokens instead of each starting a stdio server. A running broker announces itself with a marker
 * `<home>/.spawnkit-brokers/<pid>.json` (`{ "url", "pid" }`) for its life; a spawn looks for a live one.
 *
 * Security: a marker is read as untrusted input: only a loopback `http://` URL of path `/mcp` and a live pid are
 * taken. Without a sandbox, an agent can write the home and so a marker (see the README's threat model).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { ioFailure, RegistryIoError } from "../domain/Errors.js"
import { ProcessId } from "../domain/Ids.js"
import { processAlive } from "./Processes.js"

/** Where brokers' markers are. */
export const brokersDir = (home: string) => NodePath.join(home, ".spawnkit-brokers")

const LOOPBACK_MCP_URL = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d{1,5}\/mcp$/

/** A broker's marker, validated. */
export const BrokerMarker = Schema.Struct({
  url: Schema.String.check(
    Schema.isPattern(LOOPBACK_MCP_URL, { message: "Expected a loopback http URL of path /mcp" })
  ),
  pid: ProcessId
})
/** @see BrokerMarker */
export type BrokerMarker = typeof BrokerMarker.Type

const decodeMarker = Schema.decodeUnknownOption(Schema.fromJsonString(BrokerMarker))

/** Announce this process's broker at `url` for the scope's life (the marker is removed when the scope closes). */
export const announceBroker = (home: string, url: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const dir = brokersDir(home)
        Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
        const file = NodePath.join(dir, `${process.pid}.json`)
        // Written whole, then renamed into place: a spawn looking meanwhile sees no marker or a complete one.
        const partial = NodePath.join(dir, `.${process.pid}.json.partial`)
        Fs.writeFileSync(partial, JSON.stringify({ url, pid: process.pid }), { mode: 0o600 })
        Fs.renameSync(partial, file)
        return file
      },
      catch: (e) => new RegistryIoError({ path: brokersDir(home), operation: "announce the broker", ...ioFailure(e) })
    }),
    (file) => Effect.sync(() => Fs.rmSync(file, { force: true }))
  )

/** The URL of a live broker of this home, if one runs (a marker that does not decode, or of a dead pid, is skipped). */
export const liveBroker = (home: string): string | undefined => {
  let names: ReadonlyArray<string>
  try {
    names = Fs.readdirSync(brokersDir(home))
  } catch {
    return undefined
  }
  for (const name of names) {
    if (!/^\d+\.json$/.test(name)) continue
    let text: string
    try {
      text = Fs.readFileSync(NodePath.join(brokersDir(home), name), "utf8")
    } catch {
      continue
    }
    const marker = decodeMarker(text)
    if (marker._tag === "Some" && `${marker.value.pid}.json` === name && processAlive(marker.value.pid)) {
      return marker.value.url
    }
  }
  return undefined
}
