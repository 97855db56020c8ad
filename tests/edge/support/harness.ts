// Shared setup for the end-to-end specs, one environment per spec file (so
// Durable Object state, the cache and the Worker's JWKS cache never leak
// between files): an echo origin, a second origin the cache spec may stop,
// a refused port, a JWKS server, keys and API keys minted for this run, the
// test config, and the Worker in Miniflare with every binding.
import { afterAll, beforeAll } from "vitest";
import { randomBytes } from "node:crypto";
import { makeApiKeys, type ApiKeys } from "./apikeys";
import { testConfig } from "./config";
import { Gateway, type GatewayOptions, type Reply } from "./gateway";
import { JwksServer } from "./jwks";
import { deadPort, startOrigin, type Origin } from "./origin";
import { claims, ecKey, hmacSecret, rsaKey, signJwt, type SigningKey } from "./tokens";

export const AUDIENCE = "https://api.tidegate.test";
export const ISSUER = "https://idp.tidegate.test/";
export const ROTATING_ISSUER = "https://rotating.tidegate.test/";
export const DOWN_ISSUER = "https://down.tidegate.test/";
export const HMAC_ISSUER = "https://hmac.tidegate.test/";
export const JWKS_STEADY = "/steady/jwks.json";
export const JWKS_ROTATING = "/rotating/jwks.json";
/** Settings of gateway.test.toml the specs rely on. */
export const ROTATING_COOLDOWN_MS = 1_000;

export interface Edge {
  gateway: Gateway;
  /** The echo origin of most routes. */
  origin: Origin;
  /** The origin of the stale-if-error route, which specs stop and restart. */
  flaky: Origin;
  jwks: JwksServer;
  /** A port nothing listens on. */
  dead: number;
  /** Published at JWKS_STEADY. */
  rsa: SigningKey;
  /** Published at JWKS_STEADY. */
  ec: SigningKey;
  /** Published at JWKS_ROTATING at first. */
  rotating: SigningKey;
  /** The inline HS256 secret of hmac-idp (base64url). */
  hsSecret: string;
  apiKeys: ApiKeys;
  adminKey: string;
  /** The TIDEGATE_CONFIG text. */
  config: string;
  /** A request through dispatchFetch (path relative to http://gateway.test). */
  fetch: Gateway["fetch"];
  /** A valid RS256 token of test-idp for `sub`, with extra claims. */
  token(sub?: string, extra?: Record<string, unknown>): string;
  /** `{ authorization: "Bearer …" }` for a valid token. */
  bearer(sub?: string, extra?: Record<string, unknown>): Record<string, string>;
}

/** Additions to the environment a spec file may ask for. */
export interface EdgeExtras {
  /**
   * TOML appended to the filled-in test config, called in beforeAll (after
   * the spec's own earlier beforeAll hooks, so it may name their servers'
   * ports), e.g. a `[purge]` section pointing at a stand-in API.
   */
  appendConfig?: () => string;
}

/** Starts the environment before the file's tests and stops it after; fields are set in beforeAll. */
export function useEdge(overrides: Partial<GatewayOptions> = {}, extra: EdgeExtras = {}): Edge {
  const edge = {} as Edge;
  const started: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    const [origin, flaky, jwks, dead] = await Promise.all([startOrigin(), startOrigin(), JwksServer.start(), deadPort()]);
    started.push({ close: () => origin.stop() }, { close: () => flaky.stop() }, jwks);
    const rsa = rsaKey("rsa-1");
    const ec = ecKey("ec-1");
    const rotating = rsaKey("rot-1");
    jwks.setKeys(JWKS_STEADY, [rsa.jwk, ec.jwk]);
    jwks.setKeys(JWKS_ROTATING, [rotating.jwk]);
    const hsSecret = hmacSecret();
    const apiKeys = makeApiKeys();
    const adminKey = `admin_${randomBytes(24).toString("base64url")}`;
    const config =
      testConfig({
        ORIGIN: origin.url,
        FLAKY: flaky.url,
        DEAD: `http://127.0.0.1:${dead}`,
        JWKS: jwks.url,
        HS_SECRET: hsSecret,
      }) + (extra.appendConfig?.() ?? "");
    const gateway = await Gateway.start({ config, apiKeys: apiKeys.json, adminKey, ...overrides });
    started.push({ close: () => gateway.dispose() });
    const token = (sub = "user-1", extra: Record<string, unknown> = {}) =>
      signJwt(rsa, claims(ISSUER, { sub, ...extra }));
    Object.assign(edge, {
      gateway,
      origin,
      flaky,
      jwks,
      dead,
      rsa,
      ec,
      rotating,
      hsSecret,
      apiKeys,
      adminKey,
      config,
      fetch: gateway.fetch.bind(gateway),
      token,
      bearer: (sub?: string, extra?: Record<string, unknown>) => ({ authorization: `Bearer ${token(sub, extra)}` }),
    } satisfies Edge);
  }, 90_000);
  afterAll(async () => {
    const results = await Promise.allSettled(started.reverse().map((s) => s.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed && failed.status === "rejected") throw failed.reason;
  }, 30_000);
  return edge;
}

let counter = 0;
const runTag = randomBytes(3).toString("hex");

/** A path segment no other test of this run uses. */
export function unique(prefix = "t"): string {
  counter += 1;
  return `${prefix}-${runTag}-${counter}`;
}

/** An IPv4 address (198.18.0.0/15, benchmarking) no other test of this file uses. */
export function uniqueIp(): string {
  counter += 1;
  return `198.18.${(counter >> 8) & 255}.${counter & 255}`;
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `attempt` until `done(result)` or `timeoutMs` passes (bounded: no
 * endless loops), `intervalMs` apart; returns the last result.
 */
export async function poll<T>(
  attempt: () => Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs = 10_000, intervalMs = 200 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await attempt();
  while (!done(value) && Date.now() < deadline) {
    await sleep(intervalMs);
    value = await attempt();
  }
  return value;
}

export type { Reply };
