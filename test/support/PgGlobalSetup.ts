/**
 * vitest global setup: the PostgreSQL server the tests of the PostgreSQL registry run against.
 *
 * SPAWNKIT_TEST_DATABASE_URL set: that server (tests create and drop their own databases on it). Unset: a throwaway
 * cluster started by scripts/pg-temp.sh in a temp directory (loopback, a free port), stopped and deleted at teardown.
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

export default function setup(project: TestProject) {
  const given = process.env["SPAWNKIT_TEST_DATABASE_URL"]
  if (given !== undefined && given !== "") {
    project.provide("databaseUrl", given)
    project.provide("psql", psqlBinary())
    return
  }
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "spawnkit-pg-"))
  // The server runs as `postgres` when the tests run as root: it must reach its directory.
  Fs.chmodSync(dir, 0o711)
  const cluster = NodePath.join(dir, "cluster")
  const started = spawnSync("bash", [SCRIPT, "start", cluster], { encoding: "utf8" })
  if (started.status !== 0) {
    Fs.rmSync(dir, { recursive: true, force: true })
    throw new Error(
      `the PostgreSQL registry tests need PostgreSQL: ${started.stderr.trim() || `pg-temp.sh exited ${started.status}`}\n` +
        "Install it (Debian: apt-get install -y postgresql) or set SPAWNKIT_TEST_DATABASE_URL to a server's URL."
    )
  }
  project.provide("databaseUrl", started.stdout.trim())
  project.provide("psql", psqlBinary())
  return () => {
    spawnSync("bash", [SCRIPT, "destroy", cluster], { stdio: "inherit" })
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}
