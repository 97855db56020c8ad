// Cache-Control directives (RFC 9111 §3, §5.2) and the stale extensions
// (RFC 5861): what is never stored, what is stored but revalidated on every
// use, what forbids serving stale, and the origin's stale windows winning over
// the rule's defaults. Routes: /rfc/origin (no stale windows), /rfc/stale
// (ttl 1s, rule swr 1h and sie 1h), /rfc/auth (jwt, scope shared).
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { poll, sleep, unique } from "../support/harness";
import { afterStore, servedHit, storedHit, timeline, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

describe.concurrent("never stored (RFC 9111 §3)", () => {
  const cases: [string, string, Record<string, string>][] = [
    ["§5.2.2.5: Cache-Control: no-store", "origin", { "cache-control": "no-store, max-age=60" }],
    ["§5.2.2.7: Cache-Control: private, on a shared route", "origin", { "cache-control": "private, max-age=60" }],
    ["Set-Cookie (Tidegate's rule; RFC 9111 §7.3, RFC 6265 §8)", "origin", { "cache-control": "max-age=60", "set-cookie": "session=abc; HttpOnly" }],
    ["§5.2.2.5: no-store even where the rule has stale windows", "stale", { "cache-control": "no-store" }],
  ];
  for (const [title, route, headers] of cases) {
    it(`${title}`, async () => {
      const path = `/rfc/${route}/${unique()}`;
      edge.origin.respond(path, { headers });
      const first = await edge.fetch(path);
      expect(first.status).toBe(200);
      expect(cacheStatus(first)).not.toBe("HIT");
      const second = await afterStore(edge, path);
      expect(second.status).toBe(200);
      expect(cacheStatus(second)).not.toBe("HIT");
      expect(servedHit(second)).toBe(2);
      expect(edge.origin.hits(path)).toBe(2);
    });
  }
});

describe.concurrent("qualified private (RFC 9111 §5.2.2.7)", () => {
  it("§5.2.2.7: private=\"x-user\": a shared cache may store the rest, but never serves x-user from it", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": 'private="x-user", max-age=60', "x-user": "alice" } });
    await edge.fetch(path);
    const second = await afterStore(edge, path);
    expect(second.status).toBe(200);
    if (cacheStatus(second) === "HIT") expect(second.headers.get("x-user")).toBeNull();
    else expect(edge.origin.hits(path)).toBe(2);
  });
});

describe.concurrent("Cache-Control: no-cache on a response (RFC 9111 §5.2.2.4)", () => {
  it("§5.2.2.4: is stored, but revalidated with the origin on every use (304: body from the cache)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "no-cache" }, etag: '"nc-1"' });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    // The entry is written in the background: wait for the first revalidation.
    const first = await poll(() => edge.fetch(path), (r) => cacheStatus(r) === "REVALIDATED", { timeoutMs: 1_000, intervalMs: 50 });
    expect(cacheStatus(first)).toBe("REVALIDATED");
    for (let i = 0; i < 2; i++) {
      const hits = edge.origin.hits(path);
      const notModified = edge.origin.notModified(path);
      const res = await edge.fetch(path);
      expect(res.status).toBe(200);
      expect(cacheStatus(res)).toBe("REVALIDATED");
      expect(servedHit(res)).toBe(servedHit(first));
      expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('"nc-1"');
      expect(edge.origin.notModified(path)).toBe(notModified + 1);
      expect(edge.origin.hits(path)).toBe(hits + 1);
    }
  });

  it("§5.2.2.4: no-cache=\"x-secret\": whatever is reused without revalidation never carries x-secret", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": 'no-cache="x-secret", max-age=60', "x-secret": "s3" } });
    await edge.fetch(path);
    const second = await afterStore(edge, path);
    expect(second.status).toBe(200);
    if (cacheStatus(second) === "HIT") expect(second.headers.get("x-secret")).toBeNull();
  });

  it("§5.2.2.4: with max-age=60, is still never served without asking the origin", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "no-cache, max-age=60" } });
    await edge.fetch(path);
    const second = await afterStore(edge, path);
    expect(cacheStatus(second)).not.toBe("HIT");
    expect(edge.origin.hits(path)).toBe(2);
  });

  it("§5.2.2.4 / RFC 5861 §4: is never served stale, even under the rule's stale_while_revalidate", async () => {
    const path = `/rfc/stale/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "no-cache" } });
    await edge.fetch(path);
    const second = await afterStore(edge, path);
    expect(cacheStatus(second)).not.toBe("HIT");
    expect(cacheStatus(second)).not.toBe("STALE");
    expect(servedHit(second)).toBe(2);
  });
});

describe.concurrent("directives that forbid serving stale (RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10)", () => {
  // Route /rfc/stale has stale_while_revalidate and stale_if_error of an hour.
  it("control: plain max-age=1 is served STALE under the rule's stale_while_revalidate", async () => {
    const path = `/rfc/stale/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" } });
    const [, hit, stale] = await timeline(edge, path, [[0, "fresh"], [2_100, "stale"]]);
    expect(cacheStatus(stale!)).toBe("STALE");
    expect(servedHit(stale!)).toBe(servedHit(hit!));
  });

  for (const cc of ["max-age=1, must-revalidate", "max-age=1, proxy-revalidate", "s-maxage=1"]) {
    it(`${cc}: once stale, the request waits for the origin (no stale-while-revalidate)`, async () => {
      const path = `/rfc/stale/${unique()}`;
      edge.origin.respond(path, { headers: { "cache-control": cc } });
      const [, , late] = await timeline(edge, path, [[0, "fresh"], [2_100, "stale"]]);
      expect(cacheStatus(late!)).not.toBe("STALE");
      expect(late!.status).toBe(200);
      expect(servedHit(late!)).toBe(edge.origin.hits(path));
    });

    it(`${cc}: once stale, an origin 503 is not hidden by a stale answer (no stale-if-error)`, async () => {
      const path = `/rfc/stale/${unique()}`;
      edge.origin.respond(path, { headers: { "cache-control": cc } });
      expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
      await storedHit(edge, path);
      edge.origin.respond(path, { status: 503 });
      await sleep(2_100);
      const failing = await edge.fetch(path);
      // §4.2.4: MUST NOT reuse; the origin's error (or a 504 generated by the cache) is what the client gets.
      expect(cacheStatus(failing)).not.toBe("STALE");
      expect(failing.status).toBeGreaterThanOrEqual(500);
    });
  }
});

describe.concurrent("the origin's stale windows (RFC 5861) win over the rule's", () => {
  it("RFC 5861 §3: stale-while-revalidate=60 from the origin applies on a route without a window", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1, stale-while-revalidate=60" } });
    const [, hit, stale] = await timeline(edge, path, [[0, "fresh"], [2_100, "stale"]]);
    expect(cacheStatus(stale!)).toBe("STALE");
    expect(servedHit(stale!)).toBe(servedHit(hit!));
    // Revalidated in the background.
    const hits = servedHit(hit!);
    await poll(async () => edge.origin.hits(path), (n) => n >= hits + 1, { timeoutMs: 5_000, intervalMs: 50 });
    expect(edge.origin.hits(path)).toBe(hits + 1);
  });

  it("RFC 5861 §3: stale-while-revalidate=1 from the origin beats the rule's hour (2 s past the lifetime: not served stale)", async () => {
    const path = `/rfc/stale/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1, stale-while-revalidate=1" } });
    const [, , late] = await timeline(edge, path, [[0, "fresh"], [3_100, "stale"]]);
    expect(cacheStatus(late!)).not.toBe("STALE");
    expect(servedHit(late!)).toBe(edge.origin.hits(path));
  });

  it("RFC 5861 §4: stale-if-error=60 from the origin applies on a route without a window (origin 503)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1, stale-if-error=60" } });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    const hit = await storedHit(edge, path);
    edge.origin.respond(path, { status: 503 });
    await sleep(2_100);
    const res = await edge.fetch(path);
    expect(res.status).toBe(200);
    expect(cacheStatus(res)).toBe("STALE");
    expect(servedHit(res)).toBe(servedHit(hit));
  });

  it("RFC 5861 §4: stale-if-error=1 from the origin beats the rule's hour (2 s past the lifetime: the 503 goes through)", async () => {
    const path = `/rfc/stale/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1, stale-if-error=1, stale-while-revalidate=0" } });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    await storedHit(edge, path);
    edge.origin.respond(path, { status: 503 });
    await sleep(3_100);
    const res = await edge.fetch(path);
    expect(cacheStatus(res)).not.toBe("STALE");
    expect(res.status).toBe(503);
  });
});

describe.concurrent("requests with Authorization into a shared entry (RFC 9111 §3.5)", () => {
  const cases: [string, string, boolean][] = [
    ["max-age=60 alone: not stored", "max-age=60", false],
    ["public: stored", "public, max-age=60", true],
    ["s-maxage: stored", "s-maxage=60", true],
    ["must-revalidate: stored", "must-revalidate, max-age=60", true],
  ];
  for (const [title, cc, stored] of cases) {
    it(`§3.5: ${title} (Cache-Control: ${cc})`, async () => {
      const path = `/rfc/auth/${unique()}`;
      edge.origin.respond(path, { headers: { "cache-control": cc } });
      expect(cacheStatus(await edge.fetch(path, { headers: edge.bearer("alice") }))).toBe("MISS");
      const bob = stored
        ? await storedHit(edge, path, { headers: edge.bearer("bob") })
        : await afterStore(edge, path, { headers: edge.bearer("bob") });
      expect(bob.status).toBe(200);
      if (stored) {
        expect(cacheStatus(bob)).toBe("HIT");
        expect(servedHit(bob)).toBe(edge.origin.hits(path));
      } else {
        expect(cacheStatus(bob)).not.toBe("HIT");
        expect(edge.origin.hits(path)).toBe(2);
      }
    });
  }
});

describe.concurrent("request directives (RFC 9111 §5.2.1, §5.4)", () => {
  const toOrigin: [string, Record<string, string>][] = [
    ["§5.2.1.4: Cache-Control: no-cache", { "cache-control": "no-cache" }],
    ["§5.2.1.1: Cache-Control: max-age=0", { "cache-control": "max-age=0" }],
    ["§5.4: Pragma: no-cache (no Cache-Control)", { pragma: "no-cache" }],
  ];
  for (const [title, headers] of toOrigin) {
    it(`${title} goes to the origin despite a fresh entry`, async () => {
      const path = `/rfc/origin/${unique()}`;
      edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
      await edge.fetch(path);
      await storedHit(edge, path);
      const hits = edge.origin.hits(path);
      const res = await edge.fetch(path, { headers });
      expect(res.status).toBe(200);
      expect(cacheStatus(res)).not.toBe("HIT");
      expect(edge.origin.hits(path)).toBe(hits + 1);
    });
  }

  it("§5.2.1.7: only-if-cached with nothing stored → 504, the origin not asked", async () => {
    const path = `/rfc/origin/${unique()}`;
    const res = await edge.fetch(path, { headers: { "cache-control": "only-if-cached" } });
    expect(res.status).toBe(504);
    expect(edge.origin.hits(path)).toBe(0);
  });

  it("§5.2.1.7: only-if-cached with a fresh entry → the entry", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
    await edge.fetch(path);
    const hit = await storedHit(edge, path);
    const res = await edge.fetch(path, { headers: { "cache-control": "only-if-cached" } });
    expect(res.status).toBe(200);
    expect(cacheStatus(res)).toBe("HIT");
    expect(servedHit(res)).toBe(servedHit(hit));
  });

  it("§5.2.1.7 / §4.2.4: only-if-cached with a stale entry (max-age=1, 2 s old) → 504, not the stale entry", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" } });
    await edge.fetch(path);
    await storedHit(edge, path);
    await sleep(2_100);
    const hits = edge.origin.hits(path);
    const res = await edge.fetch(path, { headers: { "cache-control": "only-if-cached" } });
    expect(res.status).toBe(504);
    expect(edge.origin.hits(path)).toBe(hits);
  });

  it("§5.2.1.3: min-fresh=3600 on an entry fresh for 60 s more goes to the origin", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
    await edge.fetch(path);
    await storedHit(edge, path);
    const hits = edge.origin.hits(path);
    const res = await edge.fetch(path, { headers: { "cache-control": "min-fresh=3600" } });
    expect(cacheStatus(res)).not.toBe("HIT");
    expect(edge.origin.hits(path)).toBe(hits + 1);
  });

  it("§5.2.1.1: max-age=1 on an entry 2 s old goes to the origin; max-age=60 takes it", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
    await edge.fetch(path);
    await storedHit(edge, path);
    await sleep(2_100);
    const hits = edge.origin.hits(path);
    const ok = await edge.fetch(path, { headers: { "cache-control": "max-age=60" } });
    expect(cacheStatus(ok)).toBe("HIT");
    expect(edge.origin.hits(path)).toBe(hits);
    const tooOld = await edge.fetch(path, { headers: { "cache-control": "max-age=1" } });
    expect(cacheStatus(tooOld)).not.toBe("HIT");
    expect(edge.origin.hits(path)).toBe(hits + 1);
  });

  it("§5.2.1.5: Cache-Control: no-store bypasses the cache and stores nothing", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
    const res = await edge.fetch(path, { headers: { "cache-control": "no-store" } });
    expect(res.status).toBe(200);
    expect(cacheStatus(res)).toBe("BYPASS");
    const next = await afterStore(edge, path);
    expect(cacheStatus(next)).toBe("MISS");
    expect(edge.origin.hits(path)).toBe(2);
  });
});
