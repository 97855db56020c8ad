// Validation of stored responses (RFC 9111 §4.3): a stale entry is revalidated
// with its validators (If-None-Match from ETag, If-Modified-Since from
// Last-Modified, §4.3.1); a 304 refreshes the stored headers (§3.2, §4.3.4)
// and the body comes from the cache; a 200 replaces the entry (§4.3.3).
// Routes: /rfc/origin (no stale windows), /rfc/stale (rule swr 1h).
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { poll, sleep, unique } from "../support/harness";
import { bodyOf } from "../support/origin";
import { ageOf, httpDate, servedHit, storedHit, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

interface Base {
  /** The origin's hit counter in the stored body. */
  served: number;
  /** Origin requests and 304s so far. */
  hits: number;
  notModified: number;
}

/** MISS, then the stored HIT, then sleeps past max-age=1; the counts to compare with afterwards. */
async function storedThenStale(path: string): Promise<Base> {
  expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
  const hit = await storedHit(edge, path);
  const base = { served: hit.headers.get("content-type")?.includes("json") ? servedHit(hit) : 0, hits: edge.origin.hits(path), notModified: edge.origin.notModified(path) };
  await sleep(2_100);
  return base;
}

describe.concurrent("revalidating a stale entry (RFC 9111 §4.3)", () => {
  it("§4.3.1: sends If-None-Match with the stored ETag; a 304 is served from the cache as REVALIDATED", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"v1"' });
    const base = await storedThenStale(path);
    const res = await edge.fetch(path);
    expect(res.status).toBe(200);
    expect(cacheStatus(res)).toBe("REVALIDATED");
    expect(servedHit(res)).toBe(base.served);
    expect(res.headers.get("etag")).toBe('"v1"');
    expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('"v1"');
    expect(edge.origin.notModified(path)).toBe(base.notModified + 1);
    expect(edge.origin.hits(path)).toBe(base.hits + 1);
    // §4.3.4: the refreshed entry's age starts again from the 304 (its Date).
    expect(ageOf(res)).toBeLessThan(2);
  });

  it("§4.3.1: sends If-Modified-Since with the stored Last-Modified when there is no ETag", async () => {
    const path = `/rfc/origin/${unique()}`;
    const lastModified = httpDate(-3600);
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, lastModified });
    const base = await storedThenStale(path);
    const res = await edge.fetch(path);
    expect(res.status).toBe(200);
    expect(cacheStatus(res)).toBe("REVALIDATED");
    expect(servedHit(res)).toBe(base.served);
    expect(res.headers.get("last-modified")).toBe(lastModified);
    const sent = edge.origin.last(path)?.headers;
    expect(sent?.["if-modified-since"]).toBe(lastModified);
    expect(sent?.["if-none-match"]).toBeUndefined();
    expect(edge.origin.notModified(path)).toBe(base.notModified + 1);
  });

  it("§4.3.1: with both validators, sends If-None-Match (and the origin's 304 is honoured)", async () => {
    const path = `/rfc/origin/${unique()}`;
    const lastModified = httpDate(-3600);
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"both-1"', lastModified });
    const base = await storedThenStale(path);
    const res = await edge.fetch(path);
    expect(cacheStatus(res)).toBe("REVALIDATED");
    expect(servedHit(res)).toBe(base.served);
    const sent = edge.origin.last(path)?.headers;
    expect(sent?.["if-none-match"]).toBe('"both-1"');
    // SHOULD (§4.3.1): Last-Modified as If-Modified-Since too.
    expect(sent?.["if-modified-since"]).toBe(lastModified);
  });

  it("§4.3.1 / RFC 9110 §8.8.3.2: a weak ETag is sent as is (W/\"w1\") and weakly matched", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: 'W/"w1"' });
    const base = await storedThenStale(path);
    const res = await edge.fetch(path);
    expect(cacheStatus(res)).toBe("REVALIDATED");
    expect(servedHit(res)).toBe(base.served);
    expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('W/"w1"');
  });

  it("§3.2 / §4.3.4: the 304's headers replace the stored ones, and its max-age makes the entry fresh again", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1", "x-version": "1" }, etag: '"r1"' });
    const base = await storedThenStale(path);
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", "x-version": "2" }, etag: '"r1"' });
    const revalidated = await edge.fetch(path);
    expect(cacheStatus(revalidated)).toBe("REVALIDATED");
    expect(servedHit(revalidated)).toBe(base.served);
    expect(revalidated.headers.get("x-version")).toBe("2");
    expect(revalidated.headers.get("cache-control")).toBe("max-age=60");
    // The refreshed entry is fresh per the 304 (max-age=60): no origin request.
    await sleep(1_100);
    const hit = await edge.fetch(path);
    expect(cacheStatus(hit)).toBe("HIT");
    expect(servedHit(hit)).toBe(base.served);
    expect(hit.headers.get("x-version")).toBe("2");
    expect(hit.headers.get("cache-control")).toBe("max-age=60");
    expect(ageOf(hit)).toBeLessThan(3);
    expect(edge.origin.hits(path)).toBe(base.hits + 1);
  });

  it("§3.2: a 304 does not replace Content-Length: the stored body is served whole after it", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"len-1"', bodyBytes: 300 });
    const base = await storedThenStale(path);
    const res = await edge.fetch(path);
    expect(cacheStatus(res)).toBe("REVALIDATED");
    expect(res.text).toBe(bodyOf(300));
    const length = res.headers.get("content-length");
    if (length !== null) expect(Number(length)).toBe(300);
    const hit = await edge.fetch(path);
    expect(hit.text).toBe(bodyOf(300));
  });

  it("§4.3.3: a 200 to the conditional request replaces the entry (new body, new ETag)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"old"' });
    const base = await storedThenStale(path);
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, etag: '"new"' });
    const res = await edge.fetch(path);
    expect(res.status).toBe(200);
    expect(servedHit(res)).toBe(base.hits + 1);
    expect(res.headers.get("etag")).toBe('"new"');
    expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('"old"');
    expect(edge.origin.notModified(path)).toBe(base.notModified);
    const hit = await storedHit(edge, path);
    expect(servedHit(hit)).toBe(base.hits + 1);
    expect(hit.headers.get("etag")).toBe('"new"');
  });

  it("§4.3.1: without validators, a stale entry is fetched unconditionally", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" } });
    const base = await storedThenStale(path);
    const res = await edge.fetch(path);
    expect(servedHit(res)).toBe(base.hits + 1);
    const sent = edge.origin.last(path)?.headers;
    expect(sent?.["if-none-match"]).toBeUndefined();
    expect(sent?.["if-modified-since"]).toBeUndefined();
  });

  it("RFC 5861 §3 / §4.3.1: the background revalidation of a STALE answer is conditional too, and refreshes the entry", async () => {
    const path = `/rfc/stale/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"bg-1"' });
    const base = await storedThenStale(path);
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, etag: '"bg-1"' });
    const stale = await edge.fetch(path);
    expect(cacheStatus(stale)).toBe("STALE");
    expect(servedHit(stale)).toBe(base.served);
    await poll(async () => edge.origin.notModified(path), (n) => n >= base.notModified + 1, { timeoutMs: 5_000, intervalMs: 50 });
    expect(edge.origin.last(path)?.headers["if-none-match"]).toBe('"bg-1"');
    const hit = await poll(() => edge.fetch(path), (r) => cacheStatus(r) === "HIT", { timeoutMs: 3_000, intervalMs: 100 });
    expect(cacheStatus(hit)).toBe("HIT");
    expect(servedHit(hit)).toBe(base.served);
    expect(hit.headers.get("cache-control")).toBe("max-age=60");
  });
});
