// The isolate's cache of verified tokens ([gateway.token_cache]): a token sent
// again is not verified again (the log line says auth_cache "hit"), yet every
// decision stays the one a full check would make: an expired token is refused
// though cached, a JWKS refetch that drops the kid refuses it, a route that
// takes another issuer refuses it, scopes are checked per route, and with the
// switch off nothing is reused.
import { describe, expect, it } from "vitest";
import { expectProblem } from "./support/expect";
import { ISSUER, JWKS_ROTATING, ROTATING_ISSUER, poll, unique, useEdge, type Edge } from "./support/harness";
import { claims, nowSecs, rsaKey, signJwt } from "./support/tokens";

type Log = Record<string, unknown>;

/** The JSON log line of the request to `path` (logs arrive asynchronously). */
async function logLine(edge: Edge, path: string): Promise<Log> {
  const find = () =>
    edge.gateway.logs
      .map((l) => {
        try {
          return JSON.parse(l) as Log;
        } catch {
          return undefined;
        }
      })
      .find((l) => l?.path === path);
  const found = await poll(async () => find(), (line) => line !== undefined, { timeoutMs: 3_000, intervalMs: 20 });
  expect(found, `no log line for ${path}`).toBeDefined();
  return found as Log;
}

/** Sends `token` to a fresh path under `prefix`; the answer and its log line. */
async function send(edge: Edge, token: string, prefix = "/jwt") {
  const path = `${prefix}/${unique()}`;
  const res = await edge.fetch(path, { headers: { authorization: `Bearer ${token}` } });
  return { res, log: await logLine(edge, path) };
}

const subjectOf = (res: { json<T>(): T }) => res.json<{ headers: Record<string, string> }>().headers["x-tidegate-subject"];

describe("with the token cache on (the default)", () => {
  const edge = useEdge();
  const sent: string[] = [];
  const track = (token: string) => (sent.push(token), token);

  it("reuses a verified token: the second request is a hit with the same identity", async () => {
    const token = track(edge.token(`reuse-${unique()}`, { scope: "a b" }));
    const first = await send(edge, token);
    const second = await send(edge, token);
    expect(first.res.status).toBe(200);
    expect(second.res.status).toBe(200);
    expect(first.log.auth_cache).toBe("miss");
    expect(second.log.auth_cache).toBe("hit");
    expect(subjectOf(second.res)).toBe(subjectOf(first.res));
    const scopes = (r: typeof first) => r.res.json<{ headers: Record<string, string> }>().headers["x-tidegate-scopes"];
    expect(scopes(second)).toBe(scopes(first));
  });

  it("refuses an expired token exactly as without the cache, though it was cached", async () => {
    // test-idp's leeway is 5s: exp 3s ago leaves the token 1–2 s of life.
    const token = track(signJwt(edge.rsa, claims(ISSUER, { sub: `expiring-${unique()}`, iat: nowSecs() - 60, nbf: nowSecs() - 60, exp: nowSecs() - 3 })));
    const first = await send(edge, token);
    expect(first.res.status, first.res.text).toBe(200);
    const second = await send(edge, token);
    expect(second.res.status).toBe(200);
    expect(second.log.auth_cache).toBe("hit");
    const refused = await poll(() => send(edge, token), (r) => r.res.status !== 200, { timeoutMs: 6_000, intervalMs: 100 });
    expectProblem(refused.res, 401, "invalid-token");
    expect(refused.log.auth_error).toBe("expired");
    expect(refused.log.auth_cache).toBe("miss");
  });

  it("refuses a cached token once a JWKS refetch drops its kid", async () => {
    // rotating-idp: ttl, cooldown and negative TTL 1s.
    const token = track(signJwt(edge.rotating, claims(ROTATING_ISSUER, { sub: `rotated-${unique()}` })));
    expect((await send(edge, token)).res.status).toBe(200);
    const hit = await poll(() => send(edge, token), (r) => r.log.auth_cache === "hit", { timeoutMs: 5_000, intervalMs: 50 });
    expect(hit.res.status).toBe(200);
    expect(hit.log.auth_cache).toBe("hit");

    const next = rsaKey("rot-next");
    edge.jwks.setKeys(JWKS_ROTATING, [next.jwk]);
    const refused = await poll(() => send(edge, token), (r) => r.res.status === 401, { timeoutMs: 10_000, intervalMs: 100 });
    expectProblem(refused.res, 401, "invalid-token");
    expect(refused.log.auth_cache).toBe("miss");
    // And it stays refused: no stale entry brings it back.
    for (let i = 0; i < 3; i++) expect((await send(edge, token)).res.status).toBe(401);
    // The new key's tokens are cached in turn.
    const fresh = track(signJwt(next, claims(ROTATING_ISSUER, { sub: `after-${unique()}` })));
    expect((await send(edge, fresh)).res.status).toBe(200);
    edge.jwks.setKeys(JWKS_ROTATING, [edge.rotating.jwk, next.jwk]);
  });

  it("refuses on a route of another issuer a token cached on a route that takes it", async () => {
    // /jwt takes every issuer; /steady-only only test-idp.
    const token = track(signJwt(edge.rotating, claims(ROTATING_ISSUER, { sub: `route-${unique()}` })));
    edge.jwks.setKeys(JWKS_ROTATING, [edge.rotating.jwk]);
    const cached = await poll(() => send(edge, token), (r) => r.log.auth_cache === "hit", { timeoutMs: 5_000, intervalMs: 50 });
    expect(cached.res.status).toBe(200);
    const other = await send(edge, token, "/steady-only");
    expectProblem(other.res, 401, "invalid-token");
    expect(other.log.auth_cache).toBe("miss");
    expect(other.log.auth_error).toBe("wrong_issuer");
    // Still good where it is accepted.
    expect((await send(edge, token)).res.status).toBe(200);
  });

  it("checks the route's scopes on every request, hit or not", async () => {
    const token = track(edge.token(`scopes-${unique()}`, { scope: "orders:write" }));
    await send(edge, token);
    const hit = await send(edge, token);
    expect(hit.log.auth_cache).toBe("hit");
    const scoped = await send(edge, token, "/scoped");
    expect(scoped.log.auth_cache).toBe("hit");
    expectProblem(scoped.res, 403, "insufficient-scope");
    const allowed = track(edge.token(`scopes-ok-${unique()}`, { scope: "orders:read" }));
    await send(edge, allowed);
    const ok = await send(edge, allowed, "/scoped");
    expect(ok.log.auth_cache).toBe("hit");
    expect(ok.res.status).toBe(200);
  });

  it("says nothing about the cache for API keys and public routes, and never logs a token", async () => {
    const keyPath = `/scoped/${unique()}`;
    expect((await edge.fetch(keyPath, { headers: { "x-api-key": edge.apiKeys.acme1 } })).status).toBe(200);
    expect((await logLine(edge, keyPath)).auth_cache).toBeUndefined();
    const logs = edge.gateway.logs.join("\n");
    expect(sent.length).toBeGreaterThan(5);
    for (const token of sent) {
      expect(logs).not.toContain(token.split(".")[2]);
    }
  });
});

describe("with the token cache off", () => {
  const edge = useEdge({}, { appendConfig: () => "\n[gateway.token_cache]\nenabled = false\n" });

  it("verifies every request in full and logs no auth_cache", async () => {
    const token = edge.token(`off-${unique()}`);
    for (let i = 0; i < 3; i++) {
      const { res, log } = await send(edge, token);
      expect(res.status).toBe(200);
      expect(log.auth_cache).toBeUndefined();
    }
  });
});
