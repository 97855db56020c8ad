// Which statuses are stored (RFC 9111 §3, §4.2.2; RFC 9110 §15.1): with
// freshness = "origin", a final response with explicit freshness (max-age,
// s-maxage, Expires) is storable if it is 2xx/3xx (not 206 without a range
// request) or a resource-level error RFC 9110 §15.1 calls heuristically
// cacheable (404, 405, 410, 414, 501). Other errors a client could provoke
// (500, 400...) are stored only when the rule lists them (RFC 9111 §3 lets a
// cache decline; storing them would allow cache-poisoned denial of service).
// The rule's `statuses` list (here only 200) decides for responses without
// explicit freshness. Route /rfc/origin.
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { unique } from "../support/harness";
import type { Behaviour } from "../support/origin";
import { afterStore, httpDate, servedHit, storedHit, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

describe.concurrent("stored statuses (RFC 9111 §3)", () => {
  const stored: [string, number, Behaviour][] = [
    ["201 with max-age=60", 201, { headers: { "cache-control": "max-age=60" } }],
    ["404 with max-age=60", 404, { headers: { "cache-control": "max-age=60" } }],
    ["410 with s-maxage=60", 410, { headers: { "cache-control": "s-maxage=60" } }],
    ["203 with Expires an hour ahead", 203, { dynamicHeaders: () => ({ date: httpDate(0), expires: httpDate(3600) }) }],
    ["200 without freshness (the rule's list and ttl)", 200, {}],
  ];
  for (const [what, status, behaviour] of stored) {
    it(`§3: stores ${what}, and serves it with its status`, async () => {
      const path = `/rfc/origin/${unique()}`;
      edge.origin.respond(path, { ...behaviour, status });
      const miss = await edge.fetch(path);
      expect(miss.status).toBe(status);
      expect(cacheStatus(miss)).toBe("MISS");
      const hit = await storedHit(edge, path);
      expect(hit.status).toBe(status);
      expect(servedHit(hit)).toBe(edge.origin.hits(path));
    });
  }

  const notStored: [string, number, Behaviour][] = [
    ["404 without explicit freshness (not in statuses = [200])", 404, {}],
    ["203 without explicit freshness (not in statuses = [200])", 203, {}],
    ["500 without explicit freshness", 500, {}],
    ["500 with max-age=60 (an error a client can provoke: not listed in statuses)", 500, { headers: { "cache-control": "max-age=60" } }],
    ["206 with max-age=60 (a partial response to a full request, §3.3)", 206, {
      headers: { "cache-control": "max-age=60", "content-range": "bytes 0-9/100" },
      bodyBytes: 10,
    }],
  ];
  for (const [what, status, behaviour] of notStored) {
    it(`§3: does not store ${what}`, async () => {
      const path = `/rfc/origin/${unique()}`;
      edge.origin.respond(path, { ...behaviour, status });
      const first = await edge.fetch(path);
      expect(first.status).toBe(status);
      expect(cacheStatus(first)).not.toBe("HIT");
      const second = await afterStore(edge, path);
      expect(second.status).toBe(status);
      expect(cacheStatus(second)).not.toBe("HIT");
      expect(edge.origin.hits(path)).toBe(2);
    });
  }
});
