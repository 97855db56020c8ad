// Exact rate limiting through the Throttle Durable Object: 200 concurrent
// requests against a limit of 50 admit exactly 50; 429 with Retry-After and
// RateLimit headers; the quota comes back after the period; shadow mode;
// per-subject buckets; several limits at once; and the client IP taken from
// CF-Connecting-IP only, never X-Forwarded-For; a class deployed without
// SQLite storage fails closed with a log line saying how to fix it.
import { describe, expect, it } from "vitest";
import { expectProblem, expectTraced } from "./support/expect";
import type { Reply } from "./support/gateway";
import { poll, sleep, unique, uniqueIp, useEdge } from "./support/harness";

const edge = useEdge();

const from = (ip: string, path: string, headers: Record<string, string> = {}) =>
  edge.fetch(path, { headers: { "cf-connecting-ip": ip, ...headers } });

/** `r` (remaining) of the RateLimit header, e.g. `"per-ip";r=3;t=60`. */
function remaining(res: Reply): number {
  const m = /;r=(\d+)/.exec(res.headers.get("ratelimit") ?? "");
  if (!m) throw new Error(`no RateLimit r= in ${res.status} answer: ${res.headers.get("ratelimit")}`);
  return Number(m[1]);
}

/** `t` (seconds until more quota) of the RateLimit header. */
function replenish(res: Reply): number {
  const m = /;t=(\d+)/.exec(res.headers.get("ratelimit") ?? "");
  if (!m) throw new Error(`no RateLimit t= in ${res.status} answer: ${res.headers.get("ratelimit")}`);
  return Number(m[1]);
}

describe("exact limiting", () => {
  it("admits exactly 50 of 200 concurrent requests against a limit of 50", async () => {
    const ip = uniqueIp();
    const replies = await Promise.all(Array.from({ length: 200 }, () => from(ip, "/limits/exact")));
    const admitted = replies.filter((r) => r.status === 200);
    const refused = replies.filter((r) => r.status === 429);
    expect(admitted.length).toBe(50);
    expect(refused.length).toBe(150);
    expect(edge.origin.hits("/limits/exact")).toBe(50);

    for (const res of admitted) {
      expect(res.headers.get("ratelimit-policy")).toMatch(/"per-ip";q=50;w=3600/);
      const r = remaining(res);
      expect(r).toBeGreaterThanOrEqual(0);
      expect(r).toBeLessThan(50);
      expectTraced(res, ["throttle", "origin"]);
    }
    // The last admitted request used up the quota.
    expect(Math.min(...admitted.map(remaining))).toBe(0);
    // Each admitted request saw a different remaining count: they were serialised.
    expect(new Set(admitted.map(remaining)).size).toBe(50);

    for (const res of refused) {
      expectProblem(res, 429, "rate-limited");
      expect(res.headers.get("ratelimit-policy")).toMatch(/"per-ip";q=50;w=3600/);
      expect(remaining(res)).toBe(0);
      const retryAfter = Number(res.headers.get("retry-after"));
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      // 50 per hour: one more unit every 72 s. A refused unit request fits
      // again exactly when more quota comes: Retry-After and t agree
      // (draft-ietf-httpapi-ratelimit-headers-10: t is when *additional* quota comes).
      expect(retryAfter).toBeLessThanOrEqual(72);
      expect(replenish(res)).toBe(retryAfter);
      // The body names the limit and when to retry.
      const body = res.json<{ limit: string; retry_after: number; detail: string }>();
      expect(body.limit).toBe("per-ip");
      expect(body.retry_after).toBe(retryAfter);
      expect(body.detail).toContain(`retry in ${retryAfter} s`);
    }
  }, 60_000);

  it("keeps other clients' quota apart", async () => {
    const res = await from(uniqueIp(), "/limits/exact");
    expect(res.status).toBe(200);
    expect(remaining(res)).toBe(49);
  });

  it("restores the quota after the period (3 per 3s)", async () => {
    const ip = uniqueIp();
    // Concurrent, so the outcome does not depend on how fast requests follow each other.
    const burst = async () =>
      (await Promise.all(Array.from({ length: 5 }, () => from(ip, "/limits/reset")))).map((r) => r.status).sort();
    expect(await burst()).toEqual([200, 200, 200, 429, 429]);
    // Full quota again once the period has passed (generous margin).
    await sleep(3_000 + 1_500);
    expect(await burst()).toEqual([200, 200, 200, 429, 429]);
  }, 20_000);
});

describe("shadow mode", () => {
  it("never refuses, but counts and sends the headers", async () => {
    const ip = uniqueIp();
    const replies: Reply[] = [];
    for (let i = 0; i < 5; i++) replies.push(await from(ip, "/limits/shadow"));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (const res of replies) {
      expect(res.headers.get("ratelimit-policy")).toMatch(/"per-ip";q=2;w=3600/);
      expect(res.headers.get("ratelimit")).toMatch(/"per-ip";r=\d+;t=\d+/);
    }
    expect(remaining(replies[0]!)).toBe(1);
    expect(remaining(replies[4]!)).toBe(0);
    expect(edge.origin.hits("/limits/shadow")).toBeGreaterThanOrEqual(5);
  });
});

describe("keys", () => {
  it("counts per subject: one caller's exhaustion leaves another's quota alone", async () => {
    const alice = edge.bearer(`alice-${uniqueIp()}`);
    const bob = edge.bearer(`bob-${uniqueIp()}`);
    const a = [];
    for (let i = 0; i < 3; i++) a.push((await edge.fetch("/limits/subject", { headers: alice })).status);
    expect(a).toEqual([200, 200, 429]);
    expect((await edge.fetch("/limits/subject", { headers: bob })).status).toBe(200);
  });

  it("asks for credentials on a per-subject limit when there are none", async () => {
    const res = await edge.fetch("/limits/subject");
    expect(res.status).toBe(401);
  });

  it("checks several limits together and advertises all of them", async () => {
    const ip = uniqueIp();
    const statuses = [];
    let last: Reply | undefined;
    for (let i = 0; i < 3; i++) {
      last = await from(ip, "/limits/multi");
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    const policy = last!.headers.get("ratelimit-policy") ?? "";
    expect(policy).toMatch(/"small";q=2;w=3600/);
    expect(policy).toMatch(/"large";q=100;w=3600/);
    // The most restrictive limit is the one in RateLimit.
    expect(last!.headers.get("ratelimit")).toMatch(/^"small";r=0;t=\d+/);
  });

  it("keys client_ip limits by CF-Connecting-IP, never X-Forwarded-For", async () => {
    const ip = uniqueIp();
    // Same CF-Connecting-IP, a different X-Forwarded-For each time: one bucket.
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await from(ip, "/limits/ip", { "x-forwarded-for": `203.0.113.${i + 1}` })).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    // Another client claiming to be the first one in X-Forwarded-For: its own bucket.
    const other = await from(uniqueIp(), "/limits/ip", { "x-forwarded-for": ip, "x-real-ip": ip });
    expect(other.status).toBe(200);
    expect(remaining(other)).toBe(1);
  });
});

describe("limiter unreachable (no THROTTLE binding)", () => {
  const broken = useEdge({ withoutThrottleBinding: true });

  it("refuses with 503 limiter-unavailable on a route that fails closed (the default)", async () => {
    const res = await broken.fetch("/limits/ip", { headers: { "cf-connecting-ip": uniqueIp() } });
    expectProblem(res, 503, "limiter-unavailable");
    expect(broken.origin.hits("/limits/ip")).toBe(0);
  });

  it("lets requests through on a route with on_error = \"open\"", async () => {
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) expect((await broken.fetch("/limits/open", { headers: { "cf-connecting-ip": ip } })).status).toBe(200);
  });

  it("does not affect routes without limits", async () => {
    expect((await broken.fetch(`/public/${unique()}`)).status).toBe(200);
  });
});

describe("limiter class declared without SQLite storage", () => {
  const misdeployed = useEdge({ throttleWithoutSqlite: true });

  it("fails closed with 503 and logs how to fix the migration", async () => {
    const res = await misdeployed.fetch("/limits/ip", { headers: { "cf-connecting-ip": uniqueIp() } });
    expectProblem(res, 503, "limiter-unavailable");
    expect(misdeployed.origin.hits("/limits/ip")).toBe(0);
    const logged = await poll(
      async () => misdeployed.gateway.logs.filter((l) => l.includes("new_sqlite_classes")),
      (lines) => lines.length > 0,
    );
    expect(logged.length).toBeGreaterThan(0);
  });
});
