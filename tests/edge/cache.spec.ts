// The Workers Cache API behind the gateway: MISS → HIT, the key (vary_query,
// HEAD shares GET), what is never stored, private entries per identity,
// shared entries for authenticated requests, stale-while-revalidate, and
// stale-if-error with the origin stopped or answering 5xx.
import { describe, expect, it } from "vitest";
import { cacheStatus, expectProblem, expectTraced } from "./support/expect";
import type { Reply } from "./support/gateway";
import { poll, sleep, unique, useEdge } from "./support/harness";
import { bodyOf } from "./support/origin";

const edge = useEdge();

/** The origin's hit counter as served (it changes only when the origin answered). */
const servedHit = (res: Reply) => res.json<{ hit: number }>().hit;

describe("shared cache", () => {
  it("misses, then serves the stored answer with Age, without asking the origin", async () => {
    const path = `/cache/shared/${unique()}`;
    const miss = await edge.fetch(path);
    expect(miss.status).toBe(200);
    expect(cacheStatus(miss)).toBe("MISS");
    expectTraced(miss, ["cache", "origin"]);

    const hit = await edge.fetch(path);
    expect(hit.status).toBe(200);
    expect(cacheStatus(hit)).toBe("HIT");
    expect(Number(hit.headers.get("age"))).toBeGreaterThanOrEqual(0);
    expect(servedHit(hit)).toBe(1);
    expect(edge.origin.hits(path)).toBe(1);
    expectTraced(hit, ["cache"]);
    // Bookkeeping headers of stored entries never reach clients.
    expect([...hit.headers.keys()].filter((n) => n.startsWith("x-tidegate-"))).toEqual([]);
  });

  it("answers HEAD from the entry GET stored", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    const head = await edge.fetch(path, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(cacheStatus(head)).toBe("HIT");
    expect(head.text).toBe("");
    expect(edge.origin.hits(path)).toBe(1);
  });

  it("keys on the configured query parameters only (vary_query = [\"page\"])", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(`${path}?page=1&utm=a`))).toBe("MISS");
    expect(cacheStatus(await edge.fetch(`${path}?utm=b&page=1`))).toBe("HIT");
    expect(cacheStatus(await edge.fetch(`${path}?page=2`))).toBe("MISS");
    expect(edge.origin.hits(path)).toBe(2);
  });

  it("bypasses the cache for range requests and for no-store requests", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(path, { headers: { range: "bytes=0-3" } }))).toBe("BYPASS");
    expect(cacheStatus(await edge.fetch(path, { headers: { "cache-control": "no-store" } }))).toBe("BYPASS");
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    expect(edge.origin.hits(path)).toBe(3);
  });

  it("goes to the origin when the client asks for a fresh answer (no-cache)", async () => {
    const path = `/cache/shared/${unique()}`;
    await edge.fetch(path);
    const fresh = await edge.fetch(path, { headers: { "cache-control": "no-cache" } });
    expect(fresh.status).toBe(200);
    expect(edge.origin.hits(path)).toBe(2);
  });

  const neverStored: [string, Record<string, string | string[]>, number?][] = [
    ["Set-Cookie", { "set-cookie": "session=abc; HttpOnly" }],
    ["Cache-Control: no-store", { "cache-control": "no-store" }],
    ["Cache-Control: no-cache", { "cache-control": "no-cache" }],
    ["Cache-Control: private", { "cache-control": "private, max-age=60" }],
    ["Vary: *", { vary: "*" }],
    ["a status outside the rule's list (201)", {}, 201],
  ];
  for (const [what, headers, status] of neverStored) {
    it(`never stores a response with ${what}`, async () => {
      const path = `/cache/shared/${unique()}`;
      edge.origin.respond(path, { headers, ...(status ? { status } : {}) });
      const first = await edge.fetch(path);
      const second = await edge.fetch(path);
      expect(cacheStatus(first)).not.toBe("HIT");
      expect(cacheStatus(second)).not.toBe("HIT");
      expect(edge.origin.hits(path)).toBe(2);
    });
  }
});

describe("authenticated requests", () => {
  it("keeps private entries per identity: two callers never share one", async () => {
    const path = `/cache/private/${unique()}`;
    const alice = edge.bearer("alice");
    const bob = edge.bearer("bob");
    const subject = (res: Reply) => res.json<{ headers: Record<string, string> }>().headers["x-tidegate-subject"];

    const a1 = await edge.fetch(path, { headers: alice });
    expect(cacheStatus(a1)).toBe("MISS");
    const a2 = await edge.fetch(path, { headers: alice });
    expect(cacheStatus(a2)).toBe("HIT");
    expect(subject(a2)).toBe("alice");

    const b1 = await edge.fetch(path, { headers: bob });
    expect(cacheStatus(b1)).toBe("MISS");
    expect(subject(b1)).toBe("bob");
    const b2 = await edge.fetch(path, { headers: bob });
    expect(cacheStatus(b2)).toBe("HIT");
    expect(subject(b2)).toBe("bob");

    // A fresh token of the same caller is the same identity.
    const a3 = await edge.fetch(path, { headers: edge.bearer("alice") });
    expect(cacheStatus(a3)).toBe("HIT");
    expect(subject(a3)).toBe("alice");
    expect(edge.origin.hits(path)).toBe(2);
  });

  it("does not serve a cached private entry to a request without credentials", async () => {
    const path = `/cache/private/${unique()}`;
    await edge.fetch(path, { headers: edge.bearer("alice") });
    expectProblem(await edge.fetch(path), 401, "missing-credentials");
  });

  it("on a shared route, stores answers to authenticated requests only when the origin marks them public", async () => {
    const path = `/cache/auth-shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(path, { headers: edge.bearer("alice") }))).toBe("MISS");
    expect(cacheStatus(await edge.fetch(path, { headers: edge.bearer("alice") }))).not.toBe("HIT");
    expect(cacheStatus(await edge.fetch(path, { headers: edge.bearer("bob") }))).not.toBe("HIT");
    expect(edge.origin.hits(path)).toBe(3);

    // RFC 9111 §3.5 (docs/configuration.md): `public` lets a shared cache store it.
    const open = `/cache/auth-shared/${unique()}`;
    edge.origin.respond(open, { headers: { "cache-control": "public, max-age=60" } });
    expect(cacheStatus(await edge.fetch(open, { headers: edge.bearer("alice") }))).toBe("MISS");
    expect(cacheStatus(await edge.fetch(open, { headers: edge.bearer("bob") }))).toBe("HIT");
    expect(edge.origin.hits(open)).toBe(1);
  });
});

describe("stale entries", () => {
  it("serves stale while revalidating in the background (ttl 1s, swr 1h)", async () => {
    const path = `/cache/swr/${unique()}`;
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    await sleep(1_500);
    const stale = await edge.fetch(path);
    expect(stale.status).toBe(200);
    expect(cacheStatus(stale)).toBe("STALE");
    expect(servedHit(stale)).toBe(1);
    expect(Number(stale.headers.get("age"))).toBeGreaterThanOrEqual(1);

    // The background revalidation reaches the origin and refreshes the entry.
    await poll(async () => edge.origin.hits(path), (n) => n >= 2, { timeoutMs: 5_000, intervalMs: 50 });
    expect(edge.origin.hits(path)).toBe(2);
    const refreshed = await poll(
      () => edge.fetch(path),
      (r) => servedHit(r) >= 2,
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(servedHit(refreshed)).toBeGreaterThanOrEqual(2);
    expect(["HIT", "STALE"]).toContain(cacheStatus(refreshed));
  }, 20_000);

  it("serves stale when the origin is down, then when it answers 5xx, and revalidates once it is back", async () => {
    const path = `/cache/sie/${unique()}`;
    try {
      expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
      await sleep(1_500);

      await edge.flaky.stop();
      const down = await edge.fetch(path);
      expect(down.status).toBe(200);
      expect(cacheStatus(down)).toBe("STALE");
      expect(servedHit(down)).toBe(1);
      expectTraced(down, ["cache"]);

      await edge.flaky.start();
      edge.flaky.respond(path, { status: 503 });
      const failing = await edge.fetch(path);
      expect(failing.status).toBe(200);
      expect(cacheStatus(failing)).toBe("STALE");
      expect(servedHit(failing)).toBe(1);
      expect(edge.flaky.hits(path)).toBe(2);

      edge.flaky.reset(path);
      const back = await edge.fetch(path);
      expect(back.status).toBe(200);
      expect(cacheStatus(back)).toBe("REVALIDATED");
      expect(servedHit(back)).toBe(3);
    } finally {
      edge.flaky.reset(path);
      await edge.flaky.start();
    }
  }, 20_000);

  it("answers 502 when the origin is down and nothing is stored", async () => {
    const path = `/cache/sie/${unique()}`;
    try {
      await edge.flaky.stop();
      expectProblem(await edge.fetch(path), 502, "bad-gateway");
    } finally {
      await edge.flaky.start();
    }
  });
});

describe("large bodies", () => {
  // Route cache-small stores bodies of at most 1024 bytes (max_body_bytes).
  const sizes: [string, number, boolean, boolean][] = [
    ["with Content-Length, at the limit", 1024, false, true],
    ["with Content-Length, over the limit", 1025, false, false],
    ["chunked (no length), at the limit", 1024, true, true],
    ["chunked (no length), over the limit", 64 * 1024, true, false],
  ];
  for (const [what, size, chunked, stored] of sizes) {
    it(`serves a body ${what} whole, and ${stored ? "stores" : "does not store"} it`, async () => {
      const path = `/cache/small/${unique()}`;
      edge.origin.respond(path, { bodyBytes: size, chunked });
      const first = await edge.fetch(path);
      expect(cacheStatus(first)).toBe("MISS");
      expect(first.text).toBe(bodyOf(size));
      if (stored) {
        const hit = await poll(() => edge.fetch(path), (r) => cacheStatus(r) === "HIT", { timeoutMs: 5_000, intervalMs: 50 });
        expect(hit.text).toBe(bodyOf(size));
        expect(edge.origin.hits(path)).toBe(1);
      } else {
        // Given time to be stored (it is done in the background), it was not.
        await sleep(300);
        const again = await edge.fetch(path);
        expect(cacheStatus(again)).toBe("MISS");
        expect(again.text).toBe(bodyOf(size));
        expect(edge.origin.hits(path)).toBe(2);
      }
    });
  }

  /** The isolate's wasm linear memory, as the health endpoint reports it. */
  const wasmMemory = async () => {
    const res = await edge.fetch("/__tidegate/health", { headers: { authorization: `Bearer ${edge.adminKey}` } });
    return res.json<{ wasm_memory_bytes: number }>().wasm_memory_bytes;
  };

  it("stores and serves a 4 MiB body whole, without wasm memory growing by it", async () => {
    const path = `/cache/shared/${unique()}`;
    const size = 4 * 1024 * 1024;
    edge.origin.respond(path, { bodyBytes: size });
    const before = await wasmMemory();

    const miss = await edge.fetch(path);
    expect(cacheStatus(miss)).toBe("MISS");
    expect(miss.text).toBe(bodyOf(size));
    // Stored in the background (waitUntil).
    const hit = await poll(() => edge.fetch(path), (r) => cacheStatus(r) === "HIT", { timeoutMs: 5_000, intervalMs: 50 });
    expect(hit.text).toBe(bodyOf(size));
    expect(edge.origin.hits(path)).toBe(1);

    // The body stays in JS on its way into the cache: wasm memory, which
    // never shrinks, must not have grown to hold it (it did, by 4 MiB and
    // more, when the entry was assembled in Rust).
    const grown = (await wasmMemory()) - before;
    expect(grown).toBeLessThan(size / 4);
  });
});
