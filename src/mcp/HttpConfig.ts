/**
 * Settings of the HTTP server from the environment: SPAWNKIT_HTTP_HOST (127.0.0.1), SPAWNKIT_HTTP_PORT (7777),
 * SPAWNKIT_HTTP_TOKEN, SPAWNKIT_HTTP_ALLOWED_ORIGINS (comma-separated), SPAWNKIT_HTTP_MAX_BODY_BYTES (4 MiB),
 * SPAWNKIT_HTTP_MAX_SESSIONS (1000), SPAWNKIT_HTTP_SESSION_IDLE_SECONDS (900). A value that does not decode is
 * refused as InvalidConfiguration naming its variable.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { InvalidConfiguration } from "../domain/Errors.js"
import { invalidConfiguration } from "../SpawnkitConfig.js"
import type { HttpSettings } from "./Http.js"

const settings: Config.Config<HttpSettings> = Config.all({
  host: Config.String("SPAWNKIT_HTTP_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), "SPAWNKIT_HTTP_PORT").pipe(
    Config.withDefault(7777)
  ),
  token: Config.option(Config.Redacted("SPAWNKIT_HTTP_TOKEN")),
  origins: Config.String("SPAWNKIT_HTTP_ALLOWED_ORIGINS").pipe(Config.withDefault("")),
  maxBodyBytes: Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1024)), "SPAWNKIT_HTTP_MAX_BODY_BYTES")
    .pipe(
      Config.withDefault(4 * 1024 * 1024)
    ),
  maxSessions: Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), "SPAWNKIT_HTTP_MAX_SESSIONS").pipe(
    Config.withDefault(1000)
  ),
  sessionIdleSeconds: Config.schema(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
    "SPAWNKIT_HTTP_SESSION_IDLE_SECONDS"
  ).pipe(Config.withDefault(900))
}).pipe(
  Config.map((c) => ({
    host: c.host,
    port: c.port,
    token: Option.getOrUndefined(Option.filter(Option.map(c.token, Redacted.value), (t) => t.length > 0)),
    allowedOrigins: c.origins.split(",").map((o) => o.trim()).filter((o) => o.length > 0),
    maxBodyBytes: c.maxBodyBytes,
    maxSessions: c.maxSessions,
    sessionIdleSeconds: c.sessionIdleSeconds
  }))
)

/** The HTTP settings from the environment (or whatever ConfigProvider is installed). */
export const httpSettingsConfig: Effect.Effect<HttpSettings, InvalidConfiguration> = Effect.mapError(
  settings,
  invalidConfiguration
)
