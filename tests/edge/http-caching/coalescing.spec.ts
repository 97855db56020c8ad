// Request coalescing (RFC 9111 §4: a cache MAY collapse requests for the same
// key while the first is in flight; followers are answered from the stored
// response). Concurrent misses for one key reach the origin once; an answer
// that cannot be stored sends the followers to the origin themselves.
// Route /rfc/origin; the origin answers after 500 ms.
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { unique } from "../support/harness";
import { servedHit, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// Independent paths: let the tests wait on the origin at once.
vi.setConfig({ maxConcurrency: 10 });
const N = 5;

const concurrently = (path: string, init?: Parameters<typeof edge.fetch>[1]) =>
  Promise.all(Array.from({ length: N }, () => edge.fetch(path, init)));

describe.concurrent("concurrent misses for one key", () => {
  it("§4: reach the origin once; every client gets the same 200, one MISS and the followers HIT", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, delayMs: 500 });
    const replies = await concurrently(path);
    expect(edge.origin.hits(path)).toBe(1);
    for (const r of replies) {
      expect(r.status, r.text.slice(0, 200)).toBe(200);
      expect(r.text).toBe(replies[0]!.text);
      expect(servedHit(r)).toBe(1);
    }
    const statuses = replies.map(cacheStatus).sort();
    expect(statuses).toEqual(["HIT", "HIT", "HIT", "HIT", "MISS"]);
  });

  it("§4: a stored body over the Worker's chunk size comes whole to every follower", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, delayMs: 500, bodyBytes: 200_000 });
    const replies = await concurrently(path);
    expect(edge.origin.hits(path)).toBe(1);
    for (const r of replies) {
      expect(r.status, r.text.slice(0, 200)).toBe(200);
      expect(r.text.length).toBe(200_000);
      expect(r.text).toBe(replies[0]!.text);
    }
  });

  const unstorable: [string, Record<string, string>][] = [
    ["Cache-Control: private (shared route, §5.2.2.7)", { "cache-control": "private, max-age=60" }],
    ["Cache-Control: no-store (§5.2.2.5)", { "cache-control": "no-store" }],
    ["Set-Cookie", { "cache-control": "max-age=60", "set-cookie": "s=1" }],
  ];
  for (const [what, headers] of unstorable) {
    it(`§4: an answer that cannot be stored (${what}) sends the followers to the origin: all 200`, async () => {
      const path = `/rfc/origin/${unique()}`;
      edge.origin.respond(path, { headers, delayMs: 500 });
      const replies = await concurrently(path);
      for (const r of replies) expect(r.status, r.text.slice(0, 200)).toBe(200);
      for (const r of replies) expect(cacheStatus(r)).not.toBe("HIT");
      expect(edge.origin.hits(path)).toBe(N);
      expect(new Set(replies.map(servedHit)).size).toBe(N);
    });
  }

  it("§4: distinct keys are not coalesced", async () => {
    const a = `/rfc/origin/${unique()}`;
    const b = `/rfc/origin/${unique()}`;
    edge.origin.respond(a, { headers: { "cache-control": "max-age=60" }, delayMs: 500 });
    edge.origin.respond(b, { headers: { "cache-control": "max-age=60" }, delayMs: 500 });
    const replies = await Promise.all([edge.fetch(a), edge.fetch(b)]);
    for (const r of replies) expect(cacheStatus(r)).toBe("MISS");
    expect(edge.origin.hits(a)).toBe(1);
    expect(edge.origin.hits(b)).toBe(1);
  });

  it("§5.2.1.5: a request with Cache-Control: no-store among them is not served from the flight", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, delayMs: 500 });
    const [first, bypass] = await Promise.all([
      edge.fetch(path),
      edge.fetch(path, { headers: { "cache-control": "no-store" } }),
    ]);
    expect(cacheStatus(first)).toBe("MISS");
    expect(cacheStatus(bypass)).toBe("BYPASS");
    expect(edge.origin.hits(path)).toBe(2);
  });
});
