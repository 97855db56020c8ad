// Targeted cache control (RFC 9213): Cloudflare-CDN-Cache-Control wins over
// CDN-Cache-Control, which wins over Cache-Control, for the edge's own caching;
// a valid targeted field replaces Cache-Control entirely for the edge (§2.2);
// an invalid one is ignored (§2.1); clients still get the origin's
// Cache-Control. Route /rfc/origin (freshness = "origin", ttl 2s).
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { unique } from "../support/harness";
import { afterStore, servedHit, timeline, type Expected, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

const cases: [string, Record<string, string>, [number, Expected][]][] = [
  [
    "§2.2: CDN-Cache-Control: max-age=60 stores what Cache-Control: no-store forbids, fresh for its lifetime",
    { "cache-control": "no-store", "cdn-cache-control": "max-age=60" },
    [[0, "fresh"], [2_600, "fresh"]],
  ],
  [
    "§2.2: CDN-Cache-Control: no-store wins over Cache-Control: max-age=60",
    { "cache-control": "max-age=60", "cdn-cache-control": "no-store" },
    [[0, "stale"]],
  ],
  [
    "§2.2: CDN-Cache-Control: max-age=1 wins over Cache-Control: max-age=60",
    { "cache-control": "max-age=60", "cdn-cache-control": "max-age=1" },
    [[0, "fresh"], [2_100, "stale"]],
  ],
  [
    "§2.2: CDN-Cache-Control replaces Cache-Control entirely: its private is ignored by the edge",
    { "cache-control": "private", "cdn-cache-control": "max-age=60" },
    [[0, "fresh"]],
  ],
  [
    "§2.2: CDN-Cache-Control replaces Cache-Control entirely: Cache-Control's s-maxage=60 does not apply",
    { "cache-control": "s-maxage=60", "cdn-cache-control": "max-age=1" },
    [[0, "fresh"], [2_100, "stale"]],
  ],
  [
    "§2.1: Cloudflare-CDN-Cache-Control: max-age=60 wins over CDN-Cache-Control: no-store",
    { "cache-control": "no-store", "cdn-cache-control": "no-store", "cloudflare-cdn-cache-control": "max-age=60" },
    [[0, "fresh"]],
  ],
  [
    "§2.1: Cloudflare-CDN-Cache-Control: no-store wins over CDN-Cache-Control: max-age=60",
    { "cache-control": "max-age=60", "cdn-cache-control": "max-age=60", "cloudflare-cdn-cache-control": "no-store" },
    [[0, "stale"]],
  ],
  [
    "§2.1: Cloudflare-CDN-Cache-Control alone wins over Cache-Control",
    { "cache-control": "max-age=60", "cloudflare-cdn-cache-control": "max-age=1" },
    [[0, "fresh"], [2_100, "stale"]],
  ],
  [
    "§2.1: an invalid CDN-Cache-Control (not a Structured Fields dictionary) is ignored: Cache-Control: no-store applies",
    { "cache-control": "no-store", "cdn-cache-control": "@@@ max-age=60" },
    [[0, "stale"]],
  ],
  [
    "§2.1: an invalid CDN-Cache-Control is ignored: Cache-Control: max-age=60 applies",
    { "cache-control": "max-age=60", "cdn-cache-control": "@@@" },
    [[0, "fresh"], [2_600, "fresh"]],
  ],
];

describe.concurrent("CDN-Cache-Control and Cloudflare-CDN-Cache-Control (RFC 9213)", () => {
  for (const [title, headers, steps] of cases) {
    it(title, async () => {
      const path = `/rfc/origin/${unique()}`;
      edge.origin.respond(path, { headers });
      const replies = await timeline(edge, path, steps);
      for (const r of replies) expect(r.status).toBe(200);
    });
  }

  it("§2.2: a HIT carries the origin's Cache-Control unchanged, not the targeted field's directives", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "no-store", "cdn-cache-control": "max-age=60" } });
    const [miss, hit] = await timeline(edge, path, [[0, "fresh"]]);
    expect(miss!.headers.get("cache-control")).toBe("no-store");
    expect(hit!.headers.get("cache-control")).toBe("no-store");
    expect(servedHit(hit!)).toBe(edge.origin.hits(path));
  });

  it("§2.2: with no targeted field, Cache-Control decides (control: no-store is not stored)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "no-store" } });
    await edge.fetch(path);
    expect(cacheStatus(await afterStore(edge, path))).not.toBe("HIT");
  });
});
