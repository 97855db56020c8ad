// Hop-by-hop response fields (RFC 9110 §7.6.1; RFC 9111 §3.1): Connection,
// the fields it names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding,
// Upgrade and Trailer are never stored nor served from the cache. Route
// /rfc/origin. workerd may drop some standard ones itself, so custom fields
// named in Connection are what really tells.
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import type { Reply } from "../support/gateway";
import { sleep, unique } from "../support/harness";
import { bodyOf } from "../support/origin";
import { servedHit, storedHit, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// Independent paths: let the tests wait on the origin at once.
vi.setConfig({ maxConcurrency: 10 });

const names = (res: Reply) => [...res.headers.keys()].map((n) => n.toLowerCase());

describe.concurrent("hop-by-hop fields are not stored (RFC 9111 §3.1, RFC 9110 §7.6.1)", () => {
  it("§7.6.1: fields named in Connection (x-hop, x-hop-two) are neither forwarded nor served from the entry; others are", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, {
      headers: {
        "cache-control": "max-age=60",
        connection: "x-hop, X-Hop-Two",
        "x-hop": "1",
        "x-hop-two": "2",
        "x-end-to-end": "kept",
      },
    });
    const miss = await edge.fetch(path);
    expect(cacheStatus(miss)).toBe("MISS");
    const hit = await storedHit(edge, path);
    expect(servedHit(hit)).toBe(edge.origin.hits(path));
    expect(names(hit)).not.toContain("x-hop");
    expect(names(hit)).not.toContain("x-hop-two");
    expect(hit.headers.get("x-end-to-end")).toBe("kept");
  });

  it("§7.6.1: fields named in Connection are not forwarded to the client on a MISS either", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, {
      headers: { "cache-control": "no-store", connection: "x-hop, X-Hop-Two", "x-hop": "1", "x-hop-two": "2", "x-end-to-end": "kept" },
    });
    const miss = await edge.fetch(path);
    expect(miss.status).toBe(200);
    expect(names(miss)).not.toContain("x-hop");
    expect(names(miss)).not.toContain("x-hop-two");
    expect(miss.headers.get("x-end-to-end")).toBe("kept");
  });

  it("§3.1 / RFC 9110 §7.6.1: Keep-Alive, Proxy-Connection, TE, Upgrade (and Trailer, hop-by-hop in RFC 2616 §13.5.1 and in Tidegate's list) are not served from the entry", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, {
      headers: {
        "cache-control": "max-age=60",
        "keep-alive": "timeout=300",
        "proxy-connection": "keep-alive",
        te: "trailers",
        upgrade: "websocket",
        trailer: "x-checksum",
        "x-end-to-end": "kept",
      },
    });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    const hit = await storedHit(edge, path);
    // Transfer-Encoding is left out: the response to this test reaches it over one more hop
    // (workerd → Miniflare's client), whose framing may be chunked whatever the entry holds.
    for (const name of ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "trailer"]) {
      expect(names(hit), name).not.toContain(name);
    }
    expect(hit.headers.get("x-end-to-end")).toBe("kept");
  });

  it("§3.2: hop-by-hop fields of a 304 do not get into the refreshed entry", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" }, etag: '"hop-1"' });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    await storedHit(edge, path);
    await sleep(2_100);
    edge.origin.respond(path, {
      headers: { "cache-control": "max-age=60", connection: "x-late", "x-late": "1", "x-refreshed": "yes" },
      etag: '"hop-1"',
    });
    const revalidated = await edge.fetch(path);
    expect(cacheStatus(revalidated)).toBe("REVALIDATED");
    expect(edge.origin.notModified(path)).toBe(1);
    const hit = await edge.fetch(path);
    expect(cacheStatus(hit)).toBe("HIT");
    expect(hit.headers.get("x-refreshed")).toBe("yes");
    expect(names(hit)).not.toContain("x-late");
  });

  it("§3.1: a chunked origin answer is stored and served whole from the entry", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, bodyBytes: 500, chunked: true });
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    const hit = await storedHit(edge, path);
    expect(hit.text).toBe(bodyOf(500));
  });
});
