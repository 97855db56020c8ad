// Faults around the gateway: an origin that resets connections (before the
// headers or mid-body), hangs or answers slowly (502/504, stale-if-error),
// a JWKS endpoint that goes down, is slow or answers garbage (cached keys
// keep working until max_stale, then a clear 503 problem; a recovered
// endpoint is picked up again), and a Throttle Durable Object whose RPC method
// throws, hangs or answers garbage (each route fails open or closed as configured).
import { describe, expect, it } from "vitest";
import { cacheStatus, expectProblem } from "../support/expect";
import type { Reply } from "../support/gateway";
import { poll, sleep, unique, uniqueIp } from "../support/harness";
import { claims, signJwt } from "../support/tokens";
import { jwksBody, useFaultEdge, type ThrottleFault } from "./support/fault-edge";

const edge = useFaultEdge();
const FLAKY = "https://flaky.tidegate.test/";
const SLOW = "https://slow.tidegate.test/";
const BROKEN = "https://broken.tidegate.test/";

const withToken = (token: string) => edge.fetch(`/jwt/${unique()}`, { headers: { authorization: `Bearer ${token}` } });

/** 503 auth-unavailable: a problem, no challenge (it is not the token's fault). */
function expectKeysUnavailable(res: Reply) {
  expectProblem(res, 503, "auth-unavailable");
  expect(res.headers.get("www-authenticate")).toBeNull();
}

describe("origin faults", () => {
  it("a connection reset before the headers is a 502 problem", async () => {
    const path = `/faulty/${unique()}`;
    edge.fault.set(path, { kind: "reset-before-headers" });
    expectProblem(await edge.fetch(path), 502, "bad-gateway");
  });

  it("a reset in the middle of the body cuts the stream; the gateway keeps serving", async () => {
    const path = `/faulty/${unique()}`;
    edge.fault.set(path, { kind: "reset-mid-body" });
    const res = await edge.fetch(path);
    // Headers had arrived: the client gets them and a body that ends early, or a 502.
    expect([200, 502]).toContain(res.status);
    if (res.status === 200) expect(() => JSON.parse(res.text)).toThrow();
    const ok = `/faulty/${unique()}`;
    edge.fault.set(ok, { kind: "ok", body: '{"fine":true}' });
    const next = await edge.fetch(ok);
    expect(next.status).toBe(200);
    expect(next.json()).toEqual({ fine: true });
  });

  it("an origin that never answers, or answers after the route timeout, is a 504 problem", async () => {
    const hang = `/faulty/${unique()}`;
    edge.fault.set(hang, { kind: "hang" });
    expectProblem(await edge.fetch(hang), 504, "gateway-timeout");
    const slow = `/faulty/${unique()}`;
    edge.fault.set(slow, { kind: "slow", delayMs: 3_000, body: "{}" });
    expectProblem(await edge.fetch(slow), 504, "gateway-timeout");
  });

  it("the origin's own 503 passes through unchanged (it is not a gateway error)", async () => {
    const path = `/faulty/${unique()}`;
    edge.fault.set(path, { kind: "status", status: 503, body: "origin maintenance" });
    const res = await edge.fetch(path);
    expect(res.status).toBe(503);
    expect(res.text).toBe("origin maintenance");
  });

  it("stale-if-error covers resets, hangs, timeouts and 5xx, then revalidates", async () => {
    const path = `/faulty-cached/${unique()}`;
    edge.fault.set(path, { kind: "ok", body: '{"version":1}', headers: { "cache-control": "max-age=1" } });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    await sleep(1_500);
    const faults = [
      { kind: "reset-before-headers" },
      { kind: "hang" },
      { kind: "slow", delayMs: 3_000, body: '{"version":"late"}' },
      { kind: "status", status: 502 },
      { kind: "status", status: 503 },
    ] as const;
    for (const fault of faults) {
      edge.fault.set(path, fault);
      const res = await edge.fetch(path);
      expect(res.status, `${fault.kind}: ${res.text.slice(0, 200)}`).toBe(200);
      expect(cacheStatus(res), fault.kind).toBe("STALE");
      expect(res.json(), fault.kind).toEqual({ version: 1 });
    }
    edge.fault.set(path, { kind: "ok", body: '{"version":2}', headers: { "cache-control": "max-age=1" } });
    const back = await edge.fetch(path);
    expect(back.status).toBe(200);
    expect(back.json()).toEqual({ version: 2 });
  }, 30_000);

  it("a body cut off mid-way is never stored as an entry", async () => {
    const path = `/faulty-cached/${unique()}`;
    edge.fault.set(path, { kind: "reset-mid-body" });
    await edge.fetch(path);
    await sleep(300); // entries are written in the background
    edge.fault.set(path, { kind: "ok", body: '{"version":2}', headers: { "cache-control": "max-age=60" } });
    const next = await edge.fetch(path);
    expect(next.status).toBe(200);
    expect(cacheStatus(next)).toBe("MISS");
    expect(next.json()).toEqual({ version: 2 });
  });

  it("without a stored entry, the same faults are 502 / 504 problems", async () => {
    const cases = [
      [{ kind: "reset-before-headers" }, 502, "bad-gateway"],
      [{ kind: "hang" }, 504, "gateway-timeout"],
    ] as const;
    for (const [fault, status, slug] of cases) {
      const path = `/faulty-cached/${unique()}`;
      edge.fault.set(path, fault);
      expectProblem(await edge.fetch(path), status, slug);
    }
  });
});

describe("JWKS endpoint faults", () => {
  it("down: cached keys keep working through max_stale, then a clear 503, and recovery is picked up", async () => {
    const jwks = "/flaky/jwks.json";
    edge.fault.set(jwks, { kind: "ok", body: jwksBody(edge.flakyKey) });
    const token = () => signJwt(edge.flakyKey, claims(FLAKY));
    expect((await withToken(token())).status).toBe(200);

    edge.fault.set(jwks, { kind: "reset-before-headers" });
    // ttl 1 s + max_stale 2 s: right after the outage starts, the cached key still verifies.
    const during = await withToken(token());
    expect(during.status, during.text).toBe(200);
    // Once max_stale has passed with every refresh failing: 503, not 401.
    const unavailable = await poll(() => withToken(token()), (r) => r.status !== 200, { timeoutMs: 10_000, intervalMs: 250 });
    expectKeysUnavailable(unavailable);
    // Bad tokens of that issuer are not told "invalid" while we cannot check them.
    expectKeysUnavailable(await withToken(signJwt(edge.flakyKey, claims(FLAKY), { kid: "unknown" })));
    const fetchesWhileDown = edge.fault.hits(jwks);

    edge.fault.set(jwks, { kind: "ok", body: jwksBody(edge.flakyKey) });
    const recovered = await poll(() => withToken(token()), (r) => r.status === 200, { timeoutMs: 10_000, intervalMs: 250 });
    expect(recovered.status).toBe(200);
    expect(fetchesWhileDown).toBeGreaterThan(1);
  }, 30_000);

  it("slower than the fetch timeout with nothing cached: 503, and concurrent callers do not each fetch", async () => {
    const jwks = "/slow/jwks.json";
    edge.fault.set(jwks, { kind: "slow", delayMs: 8_000, body: jwksBody(edge.slowKey) });
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 10 }, () => withToken(signJwt(edge.slowKey, claims(SLOW)))));
    for (const res of replies) expectKeysUnavailable(res);
    // One fetch in flight at a time, and a new one at most once per cooldown (1 s).
    expect(edge.fault.hits(jwks)).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 1_000) + 1);
  }, 30_000);

  it("slow but within the timeout: concurrent cold callers wait for the one fetch and are all admitted", async () => {
    const jwks = "/slow/jwks.json";
    await sleep(1_100); // past the refetch cooldown of the previous test
    edge.fault.set(jwks, { kind: "slow", delayMs: 1_000, body: jwksBody(edge.slowKey) });
    const before = edge.fault.hits(jwks);
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => withToken(signJwt(edge.slowKey, claims(SLOW, { sub: `u${i}` })))));
    expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(edge.fault.hits(jwks) - before).toBe(1);
  }, 30_000);

  it("answers that are not a usable key set (500, HTML, keys not a list, an empty set, a reset) are 503", async () => {
    const jwks = "/broken/jwks.json";
    const token = () => signJwt(edge.brokenKey, claims(BROKEN));
    // Each case waits out the 1 s cooldown, so the list is kept short.
    const bad = [
      { kind: "status", status: 500 },
      { kind: "ok", body: "<html>login</html>" },
      { kind: "ok", body: '{"keys":"nope"}' },
      { kind: "ok", body: '{"keys":[]}' },
      { kind: "reset-mid-body" },
    ] as const;
    for (const fault of bad) {
      edge.fault.set(jwks, fault);
      await sleep(1_050); // let the cooldown pass so this answer is the one fetched
      const res = await withToken(token());
      expect(res.status, `${JSON.stringify(fault)}: ${res.text.slice(0, 200)}`).toBe(503);
      expectKeysUnavailable(res);
    }
    edge.fault.set(jwks, { kind: "ok", body: jwksBody(edge.brokenKey) });
    const fixed = await poll(() => withToken(token()), (r) => r.status !== 503, { timeoutMs: 5_000, intervalMs: 300 });
    expect(fixed.status).toBe(200);
  }, 30_000);
});

describe("Durable Object faults", () => {
  const modes: ThrottleFault[] = ["throw", "non-string", "garbage", "no-decision"];
  for (const mode of modes) {
    it(`limiter ${mode}: a fail-closed route answers 503 limiter-unavailable, a fail-open route lets it through`, async () => {
      await edge.throttleFault(mode);
      const ip = uniqueIp();
      const closed = await edge.fetch("/limits/closed", { headers: { "cf-connecting-ip": ip } });
      expectProblem(closed, 503, "limiter-unavailable");
      const open = await edge.fetch("/limits/open", { headers: { "cf-connecting-ip": ip } });
      expect(open.status, open.text).toBe(200);
    });
  }

  // The object answers after 10 s; the gateway waits at most its limiter
  // timeout (2 s) and then applies on_error, so both requests are done well
  // inside this test's 8 s (without the bound each would take 10 s).
  it("limiter slow: a hung object is treated as unreachable, not waited for", async () => {
    await edge.throttleFault("slow");
    const ip = uniqueIp();
    const [closed, open] = await Promise.all([
      edge.fetch("/limits/closed", { headers: { "cf-connecting-ip": ip } }),
      edge.fetch("/limits/open", { headers: { "cf-connecting-ip": uniqueIp() } }),
    ]);
    expectProblem(closed, 503, "limiter-unavailable");
    expect(open.status, open.text).toBe(200);
  }, 8_000);

  it("never leaks the limiter's error text to the client", async () => {
    await edge.throttleFault("throw");
    const res = await edge.fetch("/limits/closed", { headers: { "cf-connecting-ip": uniqueIp() } });
    expect(res.text).not.toContain("injected");
    expect(edge.logs.join("\n")).not.toMatch(/panicked/);
  });
});
