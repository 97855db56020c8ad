// The synchronous fast path (edge-worker/src/fast/, driven by shim.mjs)
// against the full Rust path: two gateways with the same configuration, one
// with TIDEGATE_FAST_PATH = "off", asked the same requests (public routes,
// an API key route without a limiter, cached routes, and some the fast path
// declines) with the same request id and trace. Status, headers, body, what the origin
// received and the log line must match (timings, the date, the origin's port
// and the new span id aside).
import { describe, expect, it } from "vitest";
import type { Reply } from "./support/gateway";
import { type Edge, ISSUER, poll, unique, uniqueIp, useEdge } from "./support/harness";
import { claims, rsaKey, signJwt } from "./support/tokens";
import type { Echo } from "./support/origin";

const fast = useEdge();
const full = useEdge({ secrets: { TIDEGATE_FAST_PATH: "off" } });

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const traceparent = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

/**
 * Headers that differ between any two answers: the clock, timings, and a
 * cache entry's age (each gateway stored its own, a moment apart).
 */
const VARYING = new Set(["date", "server-timing", "age"]);

/** The answer's headers, minus those that vary, as sorted pairs. */
function headersOf(res: Reply): [string, string][] {
  return [...res.headers.entries()].filter(([name]) => !VARYING.has(name)).sort(([a], [b]) => a.localeCompare(b));
}

/** Server-Timing's phase names, without their durations. */
function phases(res: Reply): string[] {
  return (res.headers.get("server-timing") ?? "").split(",").map((p) => p.trim().split(";")[0] ?? "");
}

/** The origin's echo with what differs between the two origins taken out. */
function echoShape(text: string, port: string): unknown {
  const echo = JSON.parse(text.replaceAll(port, "PORT")) as Echo;
  // The edge starts a new span for the origin: a new parent id each request.
  const span = (h: string) => h.replace(/^(00-[0-9a-f]{32}-)[0-9a-f]{16}/, "$1SPAN");
  return {
    ...echo,
    headers: Object.fromEntries(Object.entries(echo.headers).map(([n, v]) => [n, n === "traceparent" ? span(v) : v])),
    rawHeaders: echo.rawHeaders.map(([n, v]) => [n, n.toLowerCase() === "traceparent" ? span(v) : v]),
  };
}

/** The one log line carrying request id `id`, its durations reduced to their names. */
async function logLine(edge: Edge, id: string): Promise<Record<string, unknown>> {
  const lines = await poll(
    async () => edge.gateway.logs.filter((l) => l.includes(`"id":"${id}"`)),
    (found) => found.length > 0,
    { timeoutMs: 3_000, intervalMs: 20 },
  );
  expect(lines.length).toBe(1);
  // A connection error may name the port the origin listened on.
  const text = (lines[0] ?? "{}").replaceAll(String(edge.dead), "DEAD").replaceAll(new URL(edge.origin.url).port, "PORT");
  const line = JSON.parse(text) as Record<string, unknown>;
  return { ...line, ms: Object.keys((line.ms ?? {}) as object).sort() };
}

/**
 * Asks both gateways `path` (with `init`, and the headers `perEdge` gives
 * for each: each gateway has its own API keys) and expects the same answer,
 * origin request and log line.
 */
async function expectSame(
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
  behaviour = {},
  perEdge: (edge: Edge) => Record<string, string> = () => ({}),
  leased = false,
) {
  const id = `rid-fast-${unique()}`;
  const answers: Reply[] = [];
  for (const edge of [fast, full]) {
    const headers = { "x-request-id": id, traceparent, "x-client-says": "hi", ...init.headers, ...perEdge(edge) };
    edge.origin.respond(path.split("?")[0] ?? path, behaviour);
    answers.push(await edge.fetch(path, { ...init, headers }));
  }
  const [a, b] = answers as [Reply, Reply];
  expect(a.status, a.text.slice(0, 300)).toBe(b.status);
  // Two gateways' leases are granted at different instants and sized by
  // each one's observed rate: the reset (`t=`) may differ by a second and one
  // may call its object where the other takes from a slice (each path is
  // compared with itself by the limiter specs); the rest must match.
  const loose = (h: [string, string][]) => (leased ? h.map(([n, v]): [string, string] => [n, v.replace(/;t=\d+/g, ";t=T")]) : h);
  expect(loose(headersOf(a))).toEqual(loose(headersOf(b)));
  expect(phases(a)).toEqual(phases(b));
  const ports = [fast, full].map((e) => new URL(e.origin.url).port);
  const deadPorts = [fast, full].map((e) => String(e.dead));
  const body = (r: Reply, i: number) => r.text.replaceAll(ports[i] ?? "", "PORT").replaceAll(deadPorts[i] ?? "", "DEAD");
  if (a.text.startsWith('{"method":')) {
    expect(echoShape(a.text, ports[0] ?? "")).toEqual(echoShape(b.text, ports[1] ?? ""));
  } else {
    expect(body(a, 0)).toBe(body(b, 1));
  }
  const [la, lb] = [await logLine(fast, id), await logLine(full, id)];
  if (leased) {
    for (const line of [la, lb]) delete line.limiter_calls;
  }
  expect(la).toEqual(lb);
  return { a, b, log: la };
}

describe("the fast path answers a plain proxy request as the full path does", () => {
  it("GET with a query: status, headers, the origin's request, the log line", async () => {
    const { a, log } = await expectSame(`/public/${unique()}?b=2&a=1`, {}, { headers: { "x-origin-says": "hello" } });
    expect(a.status).toBe(200);
    expect(a.headers.get("x-cache-status")).toBe("BYPASS");
    expect(phases(a)).toEqual(["auth", "origin", "total"]);
    expect(log).toMatchObject({ route: "public", status: 200, cache: "BYPASS", trace_id: TRACE_ID });
  });

  it("URLs read off the runtime's text as the url crate reads them: encodings, an empty query, ? and / in the query", async () => {
    for (const tail of ["a%20b/%2F/%E2%9C%93", "x?", "x?q=/a/b?c=d&e", "x?%zz=1&&=", "x;p=1"]) {
      const { a, log } = await expectSame(`/public/${unique()}/${tail}`);
      expect(a.status).toBe(200);
      expect(log).toMatchObject({ route: "public" });
    }
  });

  it("HEAD, and the strip_prefix route", async () => {
    await expectSame(`/public/${unique()}`, { method: "HEAD" });
    await expectSame(`/strip/items/${unique()}?q=a`);
  });

  it("the origin's own error status and its Connection-named fields", async () => {
    const { a } = await expectSame(`/public/${unique()}`, {}, {
      status: 503,
      headers: { connection: "x-hop", "x-hop": "1", "x-end-to-end": "kept" },
    });
    expect(a.status).toBe(503);
    expect(a.headers.get("x-hop")).toBeNull();
    expect(a.headers.get("x-end-to-end")).toBe("kept");
  });

  it("a streamed body, byte for byte", async () => {
    const { a } = await expectSame(`/public/${unique()}`, {}, { bodyBytes: 200_000, chunked: true });
    expect(a.text.length).toBe(200_000);
  });

  it("502 problem+json when the origin refuses the connection", async () => {
    const { a, log } = await expectSame(`/dead/${unique()}`);
    expect(a.status).toBe(502);
    expect(a.headers.get("content-type")).toBe("application/problem+json");
    expect(log).toMatchObject({ status: 502, cache: "BYPASS" });
    expect(typeof log.error).toBe("string");
  });

  it("504 problem+json when the origin is slower than the route's timeout", async () => {
    const { a } = await expectSame(`/slow/${unique()}`, {}, { delayMs: 3_000 });
    expect(a.status).toBe(504);
  });
});

describe("an API key from the API_KEYS secret, checked at once", () => {
  it("is the same caller on both paths: identity headers to the origin, subject and key id in the log", async () => {
    const { a, log } = await expectSame(`/scoped/${unique()}`, {}, {}, (edge) => ({ "x-api-key": edge.apiKeys.acme1 }));
    expect(a.status).toBe(200);
    const echo = a.json<Echo>();
    expect(echo.headers["x-tidegate-subject"]).toBe("acme");
    expect(echo.headers["x-api-key"]).toBeUndefined();
    expect(log).toMatchObject({ route: "scoped", status: 200, subject: "acme", key_id: "key_acme_1" });
  });

  it("refusals answer the same (the full path renders them): a key without the scope, an unknown key, none", async () => {
    const missing = await expectSame(`/scoped/${unique()}`, {}, {}, (edge) => ({ "x-api-key": edge.apiKeys.acme2 }));
    expect(missing.a.status).toBe(403);
    const unknown = await expectSame(`/scoped/${unique()}`, {}, {}, () => ({ "x-api-key": "tdg_not_a_key_at_all_0000000000" }));
    expect(unknown.a.status).toBe(401);
    const none = await expectSame(`/scoped/${unique()}`);
    expect(none.a.status).toBe(401);
  });
});

describe("requests the fast path leaves to the full path", () => {
  it("answer the same: no route, a POST, an authenticated route, a preflight", async () => {
    await expectSame(`/nowhere/${unique()}`);
    await expectSame(`/public/${unique()}`, { method: "POST", body: "hello origin" });
    await expectSame(`/jwt/${unique()}`);
    await expectSame(`/public/${unique()}`, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } });
  });
});

/** A token of `edge`'s issuer key per gateway (each has its own), for `sub` and `extra` claims. */
function tokensFor(sub: string, extra: Record<string, unknown> = {}): Map<Edge, string> {
  return new Map([fast, full].map((edge) => [edge, edge.token(sub, extra)]));
}

/** Sends each gateway its own token once (not compared): the full path verifies and remembers it. */
async function remember(path: string, tokens: Map<Edge, string>, status = 200) {
  for (const edge of [fast, full]) {
    const res = await edge.fetch(path, { headers: { authorization: `Bearer ${tokens.get(edge)}` } });
    expect(res.status).toBe(status);
  }
}

const bearerOf = (tokens: Map<Edge, string>) => (edge: Edge) => ({ authorization: `Bearer ${tokens.get(edge)}` });

/** `edge`'s isolate's fast-path counters (`stats/fast-path`). */
async function fastStats(
  edge: Edge,
): Promise<{ verified: number; verified_then_declined: number; taken_over: number; cache_hits: number; cache_handed_over: number }> {
  const res = await edge.fetch("/__tidegate/stats/fast-path", { headers: { authorization: `Bearer ${edge.adminKey}` } });
  expect(res.status).toBe(200);
  return res.json();
}

/** The new bearer tokens `edge`'s isolate verified and answered on the fast path so far. */
async function fastVerified(edge: Edge): Promise<number> {
  return (await fastStats(edge)).verified;
}

/** `sign(edge)` for each gateway: each has its own issuer key. */
function tokensBy(sign: (edge: Edge) => string): Map<Edge, string> {
  return new Map([fast, full].map((edge) => [edge, sign(edge)]));
}

// Before any other JWT test of this file: the first token of each isolate
// finds no key set fetched.
describe("a new JWT, its signature checked on the fast path (WebCrypto awaited in JS)", () => {
  it("the isolate's first token goes the full way (keys fetched, key imported); later new tokens are verified on the fast path, GET and HEAD", async () => {
    expect(await fastVerified(fast)).toBe(0);
    const first = tokensFor(unique("sub"));
    const cold = await expectSame(`/jwt/${unique()}`, {}, {}, bearerOf(first));
    expect(cold.a.status).toBe(200);
    expect(cold.log).toMatchObject({ route: "jwt", auth_cache: "miss" });
    expect(await fastVerified(fast)).toBe(0);

    const sub = unique("sub");
    const tokens = tokensFor(sub);
    const { a, log } = await expectSame(`/jwt/${unique()}?q=1`, {}, {}, bearerOf(tokens));
    expect(a.status).toBe(200);
    expect(a.json<Echo>().headers["x-tidegate-subject"]).toBe(sub);
    expect(a.json<Echo>().headers.authorization).toBeUndefined();
    expect(log).toMatchObject({ route: "jwt", status: 200, subject: sub, key_id: "rsa-1", auth_cache: "miss" });
    expect(phases(a)).toEqual(["auth", "origin", "total"]);
    expect(await fastVerified(fast)).toBe(1);
    // Remembered as the full path remembers it: the next request is a hit.
    const again = await expectSame(`/jwt/${unique()}`, {}, {}, bearerOf(tokens));
    expect(again.log).toMatchObject({ auth_cache: "hit" });
    expect(await fastVerified(fast)).toBe(1);

    const head = await expectSame(`/jwt/${unique()}`, { method: "HEAD" }, {}, bearerOf(tokensFor(unique("sub"))));
    expect(head.a.status).toBe(200);
    expect(head.log).toMatchObject({ auth_cache: "miss" });
    expect(await fastVerified(fast)).toBe(2);
    // The full path's gateway never took it.
    expect(await fastVerified(full)).toBe(0);
  });

  it("refusals are the full path's (it checks again): a bad signature, expired, another audience, an unknown kid, over the size bound", async () => {
    const before = await fastVerified(fast);
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, Map<Edge, string>, string][] = [
      // Signed by another key under the published kid.
      ["bad_signature", tokensBy((edge) => signJwt(rsaKey(edge.rsa.kid), claims(ISSUER, { sub: unique("sub") }))), "invalid_token"],
      ["expired", tokensFor(unique("sub"), { iat: now - 600, nbf: now - 600, exp: now - 60 }), "invalid_token"],
      ["wrong_audience", tokensFor(unique("sub"), { aud: "https://other.tidegate.test" }), "invalid_token"],
      ["unknown_key", tokensBy((edge) => signJwt(edge.rsa, claims(ISSUER, { sub: unique("sub") }), { kid: "no-such-kid" })), "invalid_token"],
      ["too_long", tokensFor(unique("sub"), { pad: "x".repeat(13_000) }), "invalid_token"],
    ];
    for (const [name, tokens, challenge] of cases) {
      const { a, log } = await expectSame(`/jwt/${unique()}`, {}, {}, bearerOf(tokens));
      expect(a.status, name).toBe(401);
      expect(a.headers.get("www-authenticate"), name).toContain(challenge);
      expect(a.headers.get("content-type"), name).toBe("application/problem+json");
      expect(typeof log.auth_error, name).toBe("string");
    }
    expect(await fastVerified(fast)).toBe(before);
  });

  it("a new token without the route's scope: 403 from the full path, not remembered by the fast one", async () => {
    const before = await fastVerified(fast);
    const without = tokensFor(unique("sub"), { scope: "orders:write" });
    const refused = await expectSame(`/scoped/${unique()}`, {}, {}, bearerOf(without));
    expect(refused.a.status).toBe(403);
    expect(refused.log).toMatchObject({ route: "scoped", auth_cache: "miss" });
    const scoped = tokensFor(unique("sub"), { scope: "orders:read" });
    const admitted = await expectSame(`/scoped/${unique()}`, {}, {}, bearerOf(scoped));
    expect(admitted.a.status).toBe(200);
    expect(admitted.log).toMatchObject({ route: "scoped", auth_cache: "miss" });
    expect(await fastVerified(fast)).toBe(before + 1);
  });

  it("new tokens on a leased limited route: verified, then admitted from the isolate's slices", async () => {
    // lease-jwt: 1000 per hour per subject, leases on. One subject, a new
    // token each request; sequential requests make the key hot.
    const sub = unique("sub");
    const fresh = () => tokensFor(sub, { jti: unique("jti") });
    // A cold key: verified on the fast path, no slice to admit from, so the
    // full path calls the object, taking the fast path's verification over
    // (not verifying again); the same answer and log line.
    const cold = await fastStats(fast);
    const first = await expectSame("/lease/jwt", {}, {}, bearerOf(fresh()), true);
    expect(first.a.status).toBe(200);
    expect(first.log).toMatchObject({ route: "lease-jwt", limiter: "allowed", auth_cache: "miss", subject: sub });
    const after = await fastStats(fast);
    expect(after.verified_then_declined).toBe(cold.verified_then_declined + 1);
    expect(after.taken_over).toBe(cold.taken_over + 1);
    expect(after.verified).toBe(cold.verified);
    for (const edge of [fast, full]) {
      for (let i = 0; i < 19; i++) {
        const res = await edge.fetch("/lease/jwt", { headers: { authorization: `Bearer ${edge.token(sub, { jti: unique("jti") })}` } });
        expect(res.status).toBe(200);
      }
    }
    const before = await fastVerified(fast);
    for (let i = 0; i < 6; i++) {
      const { a, log } = await expectSame("/lease/jwt", {}, {}, bearerOf(fresh()), true);
      expect(a.status).toBe(200);
      expect(a.headers.get("ratelimit")).toContain(`;r=${1_000 - 21 - i};`);
      expect(log).toMatchObject({ route: "lease-jwt", limiter: "allowed", auth_cache: "miss", subject: sub });
      expect(phases(a)).toEqual(["auth", "throttle", "origin", "total"]);
    }
    expect(await fastVerified(fast)).toBeGreaterThan(before);
  });
});

describe("a JWT the isolate's cache of verified tokens remembers, taken at once", () => {
  it("a remembered token: the same caller on both paths, a hit in the log", async () => {
    const sub = unique("sub");
    const tokens = tokensFor(sub);
    await remember(`/jwt/${unique()}`, tokens);
    const { a, log } = await expectSame(`/jwt/${unique()}?q=1`, {}, {}, bearerOf(tokens));
    expect(a.status).toBe(200);
    expect(a.json<Echo>().headers["x-tidegate-subject"]).toBe(sub);
    expect(a.json<Echo>().headers.authorization).toBeUndefined();
    expect(log).toMatchObject({ route: "jwt", status: 200, subject: sub, auth_cache: "hit" });
    expect(phases(a)).toEqual(["auth", "origin", "total"]);
    // HEAD too.
    await expectSame(`/jwt/${unique()}`, { method: "HEAD" }, {}, bearerOf(tokens));
  });

  it("a token not seen before: a miss, verified (on the fast path by the fast gateway)", async () => {
    const tokens = tokensFor(unique("sub"));
    const { a, log } = await expectSame(`/jwt/${unique()}`, {}, {}, bearerOf(tokens));
    expect(a.status).toBe(200);
    expect(log).toMatchObject({ route: "jwt", auth_cache: "miss" });
  });

  it("a remembered token past exp and leeway is refused as the full path refuses it", async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = tokensFor(unique("sub"), { iat: now - 10, nbf: now - 10, exp: now + 1 });
    await remember(`/jwt/${unique()}`, tokens);
    // exp + the issuer's 5 s leeway, and a margin for the second the clock reads.
    await new Promise((resolve) => setTimeout(resolve, 7_500));
    const { a, log } = await expectSame(`/jwt/${unique()}`, {}, {}, bearerOf(tokens));
    expect(a.status).toBe(401);
    expect(a.headers.get("www-authenticate")).toContain("invalid_token");
    expect(log).toMatchObject({ auth_cache: "miss", auth_error: "expired" });
  }, 20_000);

  it("scopes are checked on every hit: a remembered token without the route's scope is 403, with it 200", async () => {
    const without = tokensFor(unique("sub"), { scope: "orders:write" });
    await remember(`/scoped/${unique()}`, without, 403);
    const refused = await expectSame(`/scoped/${unique()}`, {}, {}, bearerOf(without));
    expect(refused.a.status).toBe(403);
    expect(refused.log).toMatchObject({ route: "scoped", auth_cache: "hit" });
    const scoped = tokensFor(unique("sub"), { scope: "orders:read orders:write" });
    await remember(`/scoped/${unique()}`, scoped);
    const admitted = await expectSame(`/scoped/${unique()}`, {}, {}, bearerOf(scoped));
    expect(admitted.a.status).toBe(200);
    expect(admitted.log).toMatchObject({ route: "scoped", auth_cache: "hit" });
  });

  it("a tampered copy of a remembered token is another token: verified, refused", async () => {
    const tokens = tokensFor(unique("sub"));
    await remember(`/jwt/${unique()}`, tokens);
    const tampered = new Map([...tokens].map(([edge, t]) => [edge, `${t.slice(0, -2)}${t.endsWith("AA") ? "BB" : "AA"}`]));
    const { a } = await expectSame(`/jwt/${unique()}`, {}, {}, bearerOf(tampered));
    expect(a.status).toBe(401);
  });
});

describe("a rate-limited route with a remembered token, a limit too small to lease (the full path decides)", () => {
  it("admitted, then refused with 429: the same RateLimit headers and log lines", async () => {
    // limit-subject: 2 per hour per subject.
    const tokens = tokensFor(unique("sub"));
    await remember("/limits/subject", tokens);
    const admitted = await expectSame("/limits/subject", {}, {}, bearerOf(tokens));
    expect(admitted.a.status).toBe(200);
    expect(admitted.log).toMatchObject({ route: "limit-subject", limiter: "allowed", auth_cache: "hit" });
    const refused = await expectSame("/limits/subject", {}, {}, bearerOf(tokens));
    expect(refused.a.status).toBe(429);
    expect(refused.a.headers.get("retry-after")).not.toBeNull();
    expect(refused.log).toMatchObject({ limiter: "denied" });
  });
});

describe("a limited route whose lease admits at once", () => {
  it("a hot key admitted from the isolate's slices: the same RateLimit headers and log line", async () => {
    // lease-exact: 100 per hour per client IP, leases on (auto). Sequential
    // requests make the key hot in each gateway's isolate (8 a second and up).
    const ip = uniqueIp();
    const headers = { "cf-connecting-ip": ip };
    for (const edge of [fast, full]) {
      for (let i = 0; i < 20; i++) expect((await edge.fetch("/lease/exact", { headers })).status).toBe(200);
    }
    for (let i = 0; i < 6; i++) {
      const { a, log } = await expectSame("/lease/exact", { headers }, {}, () => ({}), true);
      expect(a.status).toBe(200);
      // Both gateways counted 21 + i requests against 100.
      expect(a.headers.get("ratelimit")).toContain(`;r=${100 - 21 - i};`);
      expect(log).toMatchObject({ route: "lease-exact", limiter: "allowed" });
      expect(phases(a)).toEqual(["auth", "throttle", "origin", "total"]);
    }
  });

  it("refused past the limit, with the full path's 429", async () => {
    // lease-shadow is shadow mode; lease-multi refuses on its small limit (3 per hour).
    const ip = uniqueIp();
    const headers = { "cf-connecting-ip": ip };
    for (let i = 0; i < 3; i++) {
      const { a } = await expectSame("/lease/multi", { headers }, {}, () => ({}), true);
      expect(a.status).toBe(200);
    }
    const { a, log } = await expectSame("/lease/multi", { headers }, {}, () => ({}), true);
    expect(a.status).toBe(429);
    expect(log).toMatchObject({ route: "lease-multi", limiter: "denied" });
  });
});

describe("a cached route: a fresh entry answered on the fast path (one Cache API lookup in JS)", () => {
  /**
   * Stores `path`'s entry in each gateway (`headers` per gateway) and waits
   * until it is a HIT. The stored body is the origin's echo of the first
   * request: the same request id and trace on both gateways.
   */
  async function prime(path: string, perEdge: (edge: Edge) => Record<string, string> = () => ({}), behaviour = {}) {
    const id = `rid-prime-${unique()}`;
    for (const edge of [fast, full]) {
      edge.origin.respond(path.split("?")[0] ?? path, behaviour);
      await poll(
        () => edge.fetch(path, { headers: { "x-request-id": id, traceparent, ...perEdge(edge) } }),
        (r) => r.headers.get("x-cache-status") === "HIT",
        { timeoutMs: 5_000, intervalMs: 30 },
      );
    }
  }

  it("a public HIT, GET and HEAD: the same answer, Age, headers and log line; counted as the fast path's", async () => {
    const path = `/cache/shared/${unique()}?page=2`;
    await prime(path, () => ({}), { etag: '"v1"', headers: { "x-origin-says": "stored" } });
    const before = await fastStats(fast);
    const { a, log } = await expectSame(path);
    expect(a.status).toBe(200);
    expect(a.headers.get("x-cache-status")).toBe("HIT");
    expect(a.headers.get("x-origin-says")).toBe("stored");
    expect(a.headers.get("age")).toMatch(/^\d+$/);
    expect(phases(a)).toEqual(["auth", "cache", "total"]);
    expect(log).toMatchObject({ route: "cache-shared", status: 200, cache: "HIT" });
    const head = await expectSame(path, { method: "HEAD" });
    expect(head.a.headers.get("x-cache-status")).toBe("HIT");
    expect(head.a.text).toBe("");
    const after = await fastStats(fast);
    expect(after.cache_hits).toBe(before.cache_hits + 2);
    expect(after.cache_handed_over).toBe(before.cache_handed_over);
    expect((await fastStats(full)).cache_hits).toBe(0);
  });

  it("the client's conditional request met by a fresh entry: 304 on both paths", async () => {
    const path = `/rfc/origin/${unique()}`;
    await prime(path, () => ({}), { etag: '"v7"', headers: { "cache-control": "max-age=60" } });
    const before = await fastStats(fast);
    // Over node:http: fetch() would add no-cache to a conditional request.
    const [a, b] = await Promise.all([fast, full].map((edge) => edge.gateway.raw(path, { method: "GET", headers: { "if-none-match": '"v7"' } })));
    for (const res of [a, b]) {
      expect(res?.status).toBe(304);
      expect(res?.headers.get("x-cache-status")).toBe("HIT");
      expect(res?.headers.get("etag")).toBe('"v7"');
      expect(res?.text).toBe("");
    }
    expect(headersOf(a as Reply).filter(([n]) => n !== "x-request-id")).toEqual(headersOf(b as Reply).filter(([n]) => n !== "x-request-id"));
    expect((await fastStats(fast)).cache_hits).toBe(before.cache_hits + 1);
  });

  it("a MISS is filled on the fast path: the origin sees the keyed query only, one origin request, stored, then a HIT", async () => {
    const base = `/cache/shared/${unique()}`;
    const path = `${base}?page=3&utm_source=mail`;
    const before = await fastStats(fast);
    const { a, log } = await expectSame(path);
    expect(a.headers.get("x-cache-status")).toBe("MISS");
    expect(JSON.parse(a.text).url).toMatch(/\?page=3$/);
    expect(phases(a)).toEqual(["auth", "cache", "origin", "total"]);
    expect(log).toMatchObject({ cache: "MISS" });
    const after = await fastStats(fast);
    expect(after.cache_filled).toBe(before.cache_filled + 1);
    expect(after.cache_handed_over).toBe(before.cache_handed_over);
    expect(after.cache_hits).toBe(before.cache_hits);
    expect(fast.origin.requests(base).length).toBe(1);
    const hit = await poll(
      () => fast.fetch(path),
      (r) => r.headers.get("x-cache-status") === "HIT",
      { timeoutMs: 5_000, intervalMs: 30 },
    );
    expect(hit.text).toBe(a.text);
    expect(fast.origin.requests(base).length).toBe(1);
  });

  it("concurrent misses of one key: one fills it, the others wait for it on the full path (one origin request)", async () => {
    const path = `/cache/shared/${unique()}`;
    fast.origin.respond(path, { delayMs: 150 });
    const before = await fastStats(fast);
    const answers = await Promise.all(Array.from({ length: 4 }, () => fast.fetch(path)));
    for (const res of answers) expect(res.status).toBe(200);
    expect(answers.map((r) => r.headers.get("x-cache-status")).sort()).toEqual(["HIT", "HIT", "HIT", "MISS"]);
    expect(new Set(answers.map((r) => r.text)).size).toBe(1);
    expect(fast.origin.requests(path).length).toBe(1);
    const after = await fastStats(fast);
    expect(after.cache_filled).toBe(before.cache_filled + 1);
    expect(after.cache_handed_over).toBe(before.cache_handed_over + 3);
  });

  it("a filled miss the policy will not store (an origin error, no-store) is answered as the full path answers it; a HEAD miss stays the full path's", async () => {
    const before = await fastStats(fast);
    for (const behaviour of [{ status: 503 }, { headers: { "cache-control": "no-store" } }]) {
      const path = `/cache/shared/${unique()}`;
      const { a, log } = await expectSame(path, {}, behaviour);
      expect(a.headers.get("x-cache-status")).toBe("MISS");
      expect(log).toMatchObject({ cache: "MISS" });
      // Not stored: the next request asks the origin again.
      await expectSame(path, {}, behaviour);
      expect(fast.origin.requests(path).length).toBe(2);
    }
    // HEAD does not store what it gets: handed the lookup.
    const path = `/cache/shared/${unique()}`;
    const { a } = await expectSame(path, { method: "HEAD" });
    expect(a.status).toBe(200);
    const after = await fastStats(fast);
    expect(after.cache_filled).toBe(before.cache_filled + 4);
    expect(after.cache_handed_over).toBe(before.cache_handed_over + 1);
  });

  it("a client's no-cache and a stale entry go the full way, handed the lookup: revalidated and stale answers match", async () => {
    // The bodies are not compared: each gateway's entry may have been
    // refreshed in the background by a different request while priming.
    const path = `/cache/shared/${unique()}`;
    await prime(path, () => ({}), { etag: '"n1"' });
    const swr = `/cache/swr/${unique()}`;
    await prime(swr);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const before = await fastStats(fast);
    for (const [target, headers, expected] of [
      [path, { "cache-control": "no-cache" }, ["REVALIDATED", "MISS"]],
      [swr, {}, ["STALE"]],
    ] as const) {
      const [a, b] = await Promise.all([fast, full].map((edge) => edge.fetch(target, { headers })));
      expect(a?.status).toBe(b?.status);
      expect(a?.headers.get("x-cache-status")).toBe(b?.headers.get("x-cache-status"));
      expect(expected).toContain(a?.headers.get("x-cache-status"));
    }
    const after = await fastStats(fast);
    expect(after.cache_handed_over).toBe(before.cache_handed_over + 2);
    expect(after.cache_hits).toBe(before.cache_hits);
  });

  it("a private route: a remembered token and a new token each get their own entry; another caller's miss is filled", async () => {
    const sub = unique("sub");
    const tokens = tokensFor(sub);
    const path = `/cache/private/${unique()}`;
    await prime(path, bearerOf(tokens));
    const hit = await expectSame(path, {}, {}, bearerOf(tokens));
    expect(hit.a.headers.get("x-cache-status")).toBe("HIT");
    expect(hit.log).toMatchObject({ route: "cache-private", cache: "HIT", subject: sub, auth_cache: "hit" });
    // A new token of the same subject: verified on the fast path, the same entry.
    const before = await fastStats(fast);
    const fresh = await expectSame(path, {}, {}, bearerOf(tokensFor(sub, { jti: unique("jti") })));
    expect(fresh.a.headers.get("x-cache-status")).toBe("HIT");
    expect(fresh.log).toMatchObject({ cache: "HIT", subject: sub, auth_cache: "miss" });
    const after = await fastStats(fast);
    expect(after.verified).toBe(before.verified + 1);
    expect(after.cache_hits).toBe(before.cache_hits + 1);
    // Another subject, a new token: verified, no entry of its own: the miss
    // is filled on the fast path, under that subject's key.
    const other = await expectSame(path, {}, {}, bearerOf(tokensFor(unique("sub"))));
    expect(other.a.headers.get("x-cache-status")).toBe("MISS");
    const last = await fastStats(fast);
    expect(last.verified).toBe(after.verified + 1);
    expect(last.verified_then_declined).toBe(after.verified_then_declined);
    expect(last.cache_filled).toBe(after.cache_filled + 1);
    expect(last.cache_handed_over).toBe(after.cache_handed_over);
  });

  it("refusals on a cached route stay the full path's: no token, a bad token", async () => {
    const path = `/cache/private/${unique()}`;
    expect((await expectSame(path)).a.status).toBe(401);
    const bad = tokensBy((edge) => signJwt(rsaKey(edge.rsa.kid), claims(ISSUER, { sub: unique("sub") })));
    expect((await expectSame(path, {}, {}, bearerOf(bad))).a.status).toBe(401);
  });
});
