/**
 * vitest global setup: the PostgreSQL server the tests of the PostgreSQL registry run against.
 *
 * SPAWNKIT_TEST_DATABASE_URL set: that server (tests create and drop their own databases on it). Unset: a throwaway
 * cluster started by scripts/pg-temp.sh in a temp directory (loopback, a free port), shared by the projects of one run
 * (integration and system), stopped and deleted at the last one's teardown.
 * No PostgreSQL binaries and no URL is a failure, never a skip: the suite proves both registries or nothing.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** A URL of the test PostgreSQL server with rights to create databases. */
    readonly databaseUrl: string
    /** The psql binary matching it. */
    readonly psql: string
  }
}

const SCRIPT = NodePath.resolve(import.meta.dirname, "..", "..", "scripts", "pg-temp.sh")

const psqlBinary = (): string => {
  const bin = spawnSync("bash", [SCRIPT, "bindir"], { encoding: "utf8" })
  if (bin.status === 0 && Fs.existsSync(NodePath.join(bin.stdout.trim(), "psql"))) {
    return NodePath.join(bin.stdout.trim(), "psql")
  }
  return "psql"
}

/**
 * The cluster this process started, shared by every project of the run that needs one (the last user stops it). Each
 * project loads this module afresh, so it is kept on the process's global object.
 */
interface SharedCluster {
  readonly url: string
  readonly stop: () => void
  users: number
}
const SHARED = Symbol.for("spawnkit.test.pgCluster")
const sharedSlot = globalThis as { [SHARED]?: SharedCluster | undefined }

const startCluster = (): { readonly url: string; readonly stop: () => void } => {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-pg-"))
  // The server runs as `postgres` when the tests run as root: it must reach its directory.
  Fs.chmodSync(dir, 0o711)
  const cluster = NodePath.join(dir, "cluster")
  const started = spawnSync("bash", [SCRIPT, "start", cluster], { encoding: "utf8" })
  if (started.status !== 0) {
    Fs.rmSync(dir, { recursive: true, force: true })
    throw new Error(
      `the PostgreSQL registry tests need PostgreSQL: ${
        started.stderr.trim() || `pg-temp.sh exited ${started.status}`
      }\n` +
        "Install it (Debian: apt-get install -y postgresql) or set SPAWNKIT_TEST_DATABASE_URL to a server's URL."
    )
  }
  return {
    url: started.stdout.trim(),
    stop: () => {
      spawnSync("bash", [SCRIPT, "destroy", cluster], { stdio: "inherit" })
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

export default function setup(project: TestProject) {
  const given = process.env["SPAWNKIT_TEST_DATABASE_URL"]
  if (given !== undefined && given !== "") {
    project.provide("databaseUrl", given)
    project.provide("psql", psqlBinary())
    return
  }
  const cluster = sharedSlot[SHARED] ?? { ...startCluster(), users: 0 }
  sharedSlot[SHARED] = cluster
  cluster.users++
  project.provide("databaseUrl", cluster.url)
  project.provide("psql", psqlBinary())
  return () => {
    if (--cluster.users > 0) return
    delete sharedSlot[SHARED]
    cluster.stop()
  }
}
