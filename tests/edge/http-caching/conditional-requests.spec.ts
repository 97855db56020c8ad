// Conditional requests from clients (RFC 9110 §13; RFC 9111 §4.3.2): on a
// fresh entry the edge evaluates If-None-Match (weak comparison, lists, `*`)
// and, without it, If-Modified-Since, answering 304 itself with the entry's
// validator and caching headers; a condition that does not hold gets the full
// 200 from the cache; on a MISS the conditions go to the origin as sent and
// its 304 is passed through, not stored. Route /rfc/origin.
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import type { Reply } from "../support/gateway";
import { sleep, unique } from "../support/harness";
import type { Behaviour } from "../support/origin";
import { ageOf, exactly, httpDate, servedHit, storedHit, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

/** Per path: origin hits and the served hit counter once the entry was stored. */
const stored = new Map<string, { hits: number; served: number }>();

/** A fresh entry (max-age=60) on a new path, stored and checked HIT. */
async function freshEntry(behaviour: Behaviour): Promise<string> {
  const path = `/rfc/origin/${unique()}`;
  edge.origin.respond(path, { ...behaviour, headers: { "cache-control": "max-age=60", ...behaviour.headers } });
  expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
  const hit = await storedHit(edge, path);
  stored.set(path, { hits: edge.origin.hits(path), served: servedHit(hit) });
  return path;
}

/** A 304 from the edge: no body, HIT, Age, the origin not asked again. */
function expectEdge304(res: Reply, path: string): void {
  expect(res.status).toBe(304);
  expect(res.text).toBe("");
  expect(cacheStatus(res)).toBe("HIT");
  expect(res.headers.get("age")).toMatch(/^\d+$/);
  expect(edge.origin.hits(path)).toBe(stored.get(path)?.hits);
  expect(edge.origin.notModified(path)).toBe(0);
}

/** The full stored 200 from the edge. */
function expectEdge200(res: Reply, path: string): void {
  expect(res.status).toBe(200);
  expect(cacheStatus(res)).toBe("HIT");
  expect(servedHit(res)).toBe(stored.get(path)?.served);
  expect(edge.origin.hits(path)).toBe(stored.get(path)?.hits);
}

describe.concurrent("If-None-Match on a fresh entry (RFC 9110 §13.1.2, §13.2.2; RFC 9111 §4.3.2)", () => {
  const matching: [string, string, string][] = [
    ["the same strong tag", '"a"', '"a"'],
    ["W/\"a\" against a stored \"a\" (weak comparison, §8.8.3.2)", '"a"', 'W/"a"'],
    ["\"a\" against a stored W/\"a\" (weak comparison)", 'W/"a"', '"a"'],
    ["a list holding the tag", '"a"', '"x", W/"y", "a"'],
    ["a list without spaces", '"a"', '"x","a"'],
    ["*", '"a"', "*"],
  ];
  for (const [what, stored, sent] of matching) {
    it(`§13.1.2: ${what} (stored ${stored}, If-None-Match: ${sent}) → 304 from the edge`, async () => {
      const path = await freshEntry({ etag: stored });
      const res = await exactly(edge, path, { "if-none-match": sent });
      expectEdge304(res, path);
      expect(res.headers.get("etag")).toBe(stored);
    });
  }

  it("§13.1.2: a tag that does not match → the full 200 from the cache", async () => {
    const path = await freshEntry({ etag: '"a"' });
    const res = await exactly(edge, path, { "if-none-match": '"b", W/"c"' });
    expectEdge200(res, path);
    expect(res.headers.get("etag")).toBe('"a"');
  });

  it("§13.1.2: an entry without ETag matches no tag (only *) → 200", async () => {
    const path = await freshEntry({});
    expectEdge200(await exactly(edge, path, { "if-none-match": '"a"' }), path);
  });

  it("§15.4.5: the 304 carries ETag, Cache-Control, Date, Expires, Vary and Content-Location of the entry", async () => {
    const lastModified = httpDate(-3600);
    const expires = httpDate(60);
    const path = await freshEntry({
      etag: '"h1"',
      lastModified,
      headers: { vary: "Accept-Encoding", "content-location": "/rfc/origin/canonical", expires },
    });
    const res = await exactly(edge, path, { "if-none-match": '"h1"' });
    expectEdge304(res, path);
    expect(res.headers.get("etag")).toBe('"h1"');
    expect(res.headers.get("cache-control")).toBe("max-age=60");
    expect(res.headers.get("date")).not.toBeNull();
    expect(res.headers.get("expires")).toBe(expires);
    expect(res.headers.get("vary")?.toLowerCase()).toContain("accept-encoding");
    expect(res.headers.get("content-location")).toBe("/rfc/origin/canonical");
    // Last-Modified is optional here: §15.4.5 says SHOULD NOT send other metadata unless it
    // guides cache updates (useful when there is no ETag: see the If-Modified-Since tests).
    expect(ageOf(res)).toBeLessThan(5);
  });

  it("§9.3.2: HEAD with a matching If-None-Match → 304 from the edge", async () => {
    const path = await freshEntry({ etag: '"hd"' });
    const res = await exactly(edge, path, { "if-none-match": '"hd"' }, "HEAD");
    expectEdge304(res, path);
  });
});

describe.concurrent("If-Modified-Since on a fresh entry (RFC 9110 §13.1.3, §13.2.2)", () => {
  it("§13.1.3: Last-Modified at the date → 304 from the edge", async () => {
    const lastModified = httpDate(-3600);
    const path = await freshEntry({ lastModified });
    const res = await exactly(edge, path, { "if-modified-since": lastModified });
    expectEdge304(res, path);
    expect(res.headers.get("last-modified")).toBe(lastModified);
  });

  it("§13.1.3: Last-Modified before the date → 304 from the edge", async () => {
    const path = await freshEntry({ lastModified: httpDate(-3600) });
    expectEdge304(await exactly(edge, path, { "if-modified-since": httpDate(-60) }), path);
  });

  it("§13.1.3: Last-Modified after the date → the full 200", async () => {
    const path = await freshEntry({ lastModified: httpDate(-60) });
    expectEdge200(await exactly(edge, path, { "if-modified-since": httpDate(-3600) }), path);
  });

  it("§13.1.3: an invalid date is ignored → the full 200", async () => {
    const path = await freshEntry({ lastModified: httpDate(-3600) });
    expectEdge200(await exactly(edge, path, { "if-modified-since": "yesterday" }), path);
  });

  it("RFC 9111 §4.3.2: an entry without Last-Modified is evaluated by its Date: a date before it → the full 200", async () => {
    const path = await freshEntry({});
    expectEdge200(await exactly(edge, path, { "if-modified-since": httpDate(-3600) }), path);
  });

  it("RFC 9111 §4.3.2: an entry without Last-Modified is evaluated by its Date: that very date → 304", async () => {
    const path = await freshEntry({});
    // The entry's own Date (the origin's, rounded up to the second), not the client's clock.
    const date = (await edge.fetch(path)).headers.get("date") ?? "";
    expect(date).not.toBe("");
    expectEdge304(await exactly(edge, path, { "if-modified-since": date }), path);
  });

  it("§13.1.3 / §13.2.2: ignored when If-None-Match is present (tag differs, date would match) → 200", async () => {
    const lastModified = httpDate(-3600);
    const path = await freshEntry({ etag: '"a"', lastModified });
    const res = await exactly(edge, path, { "if-none-match": '"b"', "if-modified-since": httpDate(0) });
    expectEdge200(res, path);
  });

  it("§13.2.2: If-None-Match matching wins even when If-Modified-Since would not → 304", async () => {
    const path = await freshEntry({ etag: '"a"', lastModified: httpDate(-60) });
    const res = await exactly(edge, path, { "if-none-match": '"a"', "if-modified-since": httpDate(-3600) });
    expectEdge304(res, path);
  });
});

describe.concurrent("conditional requests on a stale entry (RFC 9111 §4.3.2, §4.2.4)", () => {
  it("§4.2.4: a stale entry is not answered 304 without asking the origin", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"s1"' });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    await storedHit(edge, path);
    await sleep(2_100);
    const hits = edge.origin.hits(path);
    const res = await exactly(edge, path, { "if-none-match": '"s1"' });
    expect(res.status).toBe(304);
    expect(res.text).toBe("");
    expect(edge.origin.hits(path)).toBe(hits + 1);
  });
});

describe.concurrent("conditional requests on a MISS (RFC 9111 §4.3.2)", () => {
  it("§4.3.2: If-None-Match goes to the origin as sent; its 304 is passed through and not stored", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, etag: '"m1"' });
    const res = await exactly(edge, path, { "if-none-match": '"m1"' });
    expect(res.status).toBe(304);
    expect(res.text).toBe("");
    expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('"m1"');
    expect(edge.origin.notModified(path)).toBe(1);
    // Nothing was stored from the 304: a plain request gets the origin's 200.
    const plain = await edge.fetch(path);
    expect(plain.status).toBe(200);
    expect(cacheStatus(plain)).toBe("MISS");
    expect(servedHit(plain)).toBe(2);
    expect(plain.text).not.toBe("");
  });

  it("§4.3.2: If-Modified-Since goes to the origin as sent", async () => {
    const path = `/rfc/origin/${unique()}`;
    const lastModified = httpDate(-3600);
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, lastModified });
    const res = await exactly(edge, path, { "if-modified-since": lastModified });
    expect(res.status).toBe(304);
    expect(edge.origin.last(path)?.headers["if-modified-since"]).toBe(lastModified);
  });

  it("§4.3.2: a condition the origin does not satisfy gets its 200, which is stored", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, etag: '"m2"' });
    const res = await exactly(edge, path, { "if-none-match": '"other"' });
    expect(res.status).toBe(200);
    expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('"other"');
    const hit = await storedHit(edge, path);
    expect(servedHit(hit)).toBe(edge.origin.hits(path));
    expect(hit.headers.get("etag")).toBe('"m2"');
  });
});
