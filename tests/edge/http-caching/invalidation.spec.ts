// RFC 9111 §4.4 invalidation at the edge: a non-error answer (2xx, 3xx) to an
// unsafe method (POST, PUT, PATCH, DELETE) drops every stored GET variant of
// the target URI and of same-host Location / Content-Location targets, in
// this data center (Cache API) and, with [purge], through Cloudflare's zone
// purge API (a stand-in on 127.0.0.1 here). Error answers invalidate
// nothing; other hosts are never touched; a failing purge API never fails
// the client's request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { Response as MfResponse } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheStatus } from "../support/expect";
import type { Reply } from "../support/gateway";
import { poll, sleep, unique, useEdge } from "../support/harness";

const ZONE = "0123456789abcdef0123456789abcdef";
const TOKEN = `purge-${randomBytes(12).toString("hex")}`;

interface PurgeCall {
  method: string;
  url: string;
  authorization: string;
  files: string[];
}

/** A stand-in for Cloudflare's zone purge API: records calls, answers `status`. */
class PurgeApi {
  readonly calls: PurgeCall[] = [];
  status = 200;
  private server: Server | null = null;

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        let files: string[] = [];
        try {
          files = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { files?: string[] }).files ?? [];
        } catch {
          files = [];
        }
        this.calls.push({
          method: req.method ?? "",
          url: req.url ?? "",
          authorization: String(req.headers.authorization ?? ""),
          files,
        });
        res.statusCode = this.status;
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ success: this.status < 300, errors: [], messages: [], result: { id: ZONE } }));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  /** Every file named in a call so far. */
  files(): string[] {
    return this.calls.flatMap((c) => c.files);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const api = new PurgeApi();
beforeAll(() => api.start());
afterAll(() => api.close());

const edge = useEdge(
  { secrets: { CF_PURGE_TOKEN: TOKEN } },
  { appendConfig: () => `\n[purge]\nzone_id = "${ZONE}"\napi_base = "${api.url}/client/v4"\n` },
);

type Hdrs = Record<string, string>;

/** GETs `path` twice: stored (MISS), then served from the cache (HIT). */
async function store(path: string, headers: Hdrs = {}): Promise<void> {
  expect(cacheStatus(await edge.fetch(path, { headers })), `first GET ${path}`).toBe("MISS");
  expect(cacheStatus(await edge.fetch(path, { headers })), `second GET ${path}`).toBe("HIT");
}

/** Waits until a GET of `path` misses (the invalidation runs after the response). */
async function expectInvalidated(path: string, headers: Hdrs = {}): Promise<void> {
  const res = await poll(
    () => edge.fetch(path, { headers }),
    (r) => cacheStatus(r) === "MISS",
    { timeoutMs: 5_000, intervalMs: 100 },
  );
  expect(cacheStatus(res), `GET ${path} ${JSON.stringify(headers)} after the invalidation`).toBe("MISS");
}

async function expectStillCached(path: string, headers: Hdrs = {}): Promise<void> {
  expect(cacheStatus(await edge.fetch(path, { headers })), `GET ${path} should still hit`).toBe("HIT");
}

async function send(method: string, path: string, headers: Hdrs = {}): Promise<Reply> {
  // Redirects stay with the client: the spec looks at the 3xx itself.
  return edge.fetch(path, { method, headers, redirect: "manual", ...(method === "DELETE" ? {} : { body: "{}" }) });
}

/** The request's JSON log line (by method and path). */
function logLine(method: string, path: string): Record<string, unknown> | undefined {
  for (const line of edge.gateway.logs) {
    if (!line.includes(`"path":"${path}"`) || !line.includes(`"method":"${method}"`)) continue;
    try {
      return JSON.parse(line.slice(line.indexOf("{"))) as Record<string, unknown>;
    } catch {
      continue;
    }
  }
  return undefined;
}

describe("unsafe methods invalidate", () => {
  it("a POST answered 2xx drops the GET entry; the next GET misses", async () => {
    const path = `/inval/shared/${unique()}`;
    await store(path);
    const res = await send("POST", path);
    expect(res.status).toBe(200);
    await expectInvalidated(path);
    expect(edge.origin.hits(path)).toBe(3);
    expect(logLine("POST", path)?.invalidated).toBe(1);
  });

  for (const method of ["PUT", "PATCH", "DELETE"]) {
    it(`so does ${method}`, async () => {
      const path = `/inval/shared/${unique()}`;
      await store(path);
      expect((await send(method, path)).status).toBe(200);
      await expectInvalidated(path);
    });
  }

  it("drops every vary variant of the URL, whatever the POST's own header", async () => {
    const path = `/inval/vary/${unique()}`;
    const variants: Hdrs[] = [{ "accept-language": "en" }, { "accept-language": "de" }, {}];
    for (const headers of variants) await store(path, headers);
    expect((await send("POST", path, { "accept-language": "fr" })).status).toBe(200);
    for (const headers of variants) await expectInvalidated(path, headers);
  });

  it("drops every caller's entry of a private route", async () => {
    const path = `/inval/private/${unique()}`;
    const alice = edge.bearer("alice");
    const bob = edge.bearer("bob");
    await store(path, alice);
    await store(path, bob);
    expect((await send("PUT", path, alice)).status).toBe(200);
    await expectInvalidated(path, alice);
    await expectInvalidated(path, bob);
  });

  it("does not invalidate on 4xx or 5xx answers", async () => {
    const path = `/inval/shared/${unique()}`;
    await store(path);
    for (const status of [400, 404, 409, 500, 503]) {
      edge.origin.respond(path, { status });
      const res = await send("POST", path);
      expect(res.status).toBe(status);
    }
    edge.origin.reset(path);
    await sleep(500);
    await expectStillCached(path);
    expect(logLine("POST", path)?.invalidated).toBeUndefined();
  });

  it("does not invalidate on safe methods", async () => {
    const path = `/inval/shared/${unique()}`;
    await store(path);
    await edge.fetch(path, { method: "HEAD" });
    await sleep(300);
    await expectStillCached(path);
  });
});

describe("Location and Content-Location", () => {
  it("drops same-host targets of a 3xx (relative and absolute)", async () => {
    const base = `/inval/shared/${unique()}`;
    const a = `${base}-a`;
    const b = `${base}-b`;
    const submit = `${base}-submit`;
    await store(a);
    await store(b);
    edge.origin.respond(submit, {
      status: 303,
      headers: { location: a, "content-location": `http://gateway.test${b}` },
    });
    const res = await send("POST", submit);
    expect(res.status).toBe(303);
    await expectInvalidated(a);
    await expectInvalidated(b);
    expect(logLine("POST", submit)?.invalidated).toBe(3);
  });

  it("never touches another host's entries", async () => {
    const other = `/inval/shared/${unique()}`;
    const otherUrl = `http://other.test${other}`;
    const get = async () => {
      const res = await edge.gateway.mf.dispatchFetch(otherUrl);
      await res.text();
      return res.headers.get("x-cache-status");
    };
    expect(await get()).toBe("MISS");
    expect(await get()).toBe("HIT");
    const post = `/inval/shared/${unique()}`;
    edge.origin.respond(post, {
      status: 201,
      headers: { location: otherUrl, "content-location": `https://gateway.test:8443${other}` },
    });
    expect((await send("POST", post)).status).toBe(201);
    expect(logLine("POST", post)?.invalidated).toBe(1);
    await sleep(500);
    expect(await get()).toBe("HIT");
  });
});

describe("global purge through the zone purge API", () => {
  it("sends the invalidated key URLs with the Bearer token", async () => {
    const path = `/inval/vary/${unique()}`;
    await store(path, { "accept-language": "en" });
    await store(path, { "accept-language": "de" });
    expect((await send("POST", path, { "accept-language": "en" })).status).toBe(200);
    const files = await poll(
      async () => api.files().filter((f) => f.startsWith(`https://gateway.test${path}?`)),
      (f) => f.length >= 2,
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    // Both variants (the two stored keys), each a Cache API key URL.
    expect(new Set(files).size).toBe(2);
    for (const file of files) expect(file).toMatch(/[?&]__tg=[0-9a-f]{64}$/);
    const call = api.calls.find((c) => c.files.some((f) => files.includes(f)));
    expect(call?.method).toBe("POST");
    expect(call?.url).toBe(`/client/v4/zones/${ZONE}/purge_cache`);
    expect(call?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(call?.files.length).toBeLessThanOrEqual(30);
  });

  it("is also used by the admin purge endpoint", async () => {
    const path = `/inval/shared/${unique()}`;
    await store(path);
    const res = await edge.fetch("/__tidegate/purge", {
      method: "POST",
      headers: { authorization: `Bearer ${edge.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ url: `http://gateway.test${path}` }),
    });
    expect(res.status, res.text).toBe(200);
    const body = res.json<{ purged: number; scope: string; global: { files: number } }>();
    expect(body.purged).toBe(1);
    expect(body.global.files).toBe(1);
    expect(body.scope).toBe("every data center");
    expect(api.files().some((f) => f.startsWith(`https://gateway.test${path}?__tg=`))).toBe(true);
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
  });

  it("a failing purge API does not fail the client's request, and is logged", async () => {
    api.status = 500;
    try {
      const path = `/inval/shared/${unique()}`;
      await store(path);
      const before = api.calls.length;
      const res = await send("DELETE", path);
      expect(res.status).toBe(200);
      await expectInvalidated(path);
      await poll(
        async () => api.calls.length,
        (n) => n > before,
        { timeoutMs: 5_000, intervalMs: 100 },
      );
      const logged = await poll(
        async () =>
          edge.gateway.logs.find(
            (l) => l.includes('"event":"global-purge"') && l.includes("answered 500"),
          ),
        (l) => l !== undefined,
        { timeoutMs: 5_000, intervalMs: 100 },
      );
      expect(logged).toBeDefined();
      expect(logged).not.toContain(TOKEN);
    } finally {
      api.status = 200;
    }
  });
});

// The purge index is written in batches: an isolate gathers the keys it
// stores for one shard over a second (INDEX_BATCH_WINDOW_MS) and writes them
// in one update. A purge takes the isolate's own pending keys at once, and
// looks again after PURGE_SECOND_PASS_MS for keys other isolates stored
// before it but had not written yet. Another isolate is played here by
// writing its cache entry and, late, its index shard through Miniflare.
describe("the purge index, written in batches", () => {
  const INDEX_BASE = "https://cache-index.tidegate.invalid/";

  /** The policy's shard_of: FNV-1a over the resource's bytes, mod 64. */
  function shardOf(resource: string): number {
    let hash = 0xcbf29ce484222325n;
    for (const byte of Buffer.from(resource, "utf8")) {
      hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
    }
    return Number(hash % 64n);
  }

  /** The edge's index URL of `route`'s shard (route name percent-encoded but for letters and digits). */
  function indexUrl(route: string, shard: number): string {
    const name = [...Buffer.from(route, "utf8")]
      .map((b) => (/[A-Za-z0-9]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`))
      .join("");
    return `${INDEX_BASE}${name}/${shard}`;
  }

  async function cache() {
    return (await edge.gateway.mf.getCaches()).default;
  }

  async function shardText(route: string, resource: string): Promise<string> {
    const res = await (await cache()).match(indexUrl(route, shardOf(resource)));
    return res ? await res.text() : "";
  }

  it("a MISS's key reaches its shard within the batch window, in one update with its neighbours", async () => {
    const path = `/inval/vary/${unique()}`;
    const resource = `https://gateway.test${path}?`;
    await store(path, { "accept-language": "en" });
    await store(path, { "accept-language": "de" });
    const text = await poll(
      () => shardText("inval-vary-read", resource),
      (t) => t.split("\n").filter((l) => l.includes(` ${resource}__tg=`)).length === 2,
      { timeoutMs: 4_000, intervalMs: 100 },
    );
    const lines = text.split("\n").filter((l) => l.includes(` ${resource}__tg=`));
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/^\d+ https:\/\/gateway\.test\/inval\/vary\/\S+\?__tg=[0-9a-f]{64}$/);
  });

  it("a purge right after a store in the same isolate finds the key before its batch is written", async () => {
    const path = `/inval/vary/${unique()}`;
    await store(path, { "accept-language": "en" });
    // No wait: the key is still in this isolate's batch.
    const res = await edge.fetch("/__tidegate/purge", {
      method: "POST",
      headers: { authorization: `Bearer ${edge.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ url: `http://gateway.test${path}` }),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json<{ purged: number }>().purged).toBe(1);
    expect(cacheStatus(await edge.fetch(path, { headers: { "accept-language": "en" } }))).toBe("MISS");
  });

  it("an invalidation drops a variant another isolate indexes only after it ran", async () => {
    const path = `/inval/vary/${unique()}`;
    const resource = `https://gateway.test${path}?`;
    // The other isolate stored a variant; its batch is still open.
    const key = `${resource}__tg=${randomBytes(32).toString("hex")}`;
    const caches = await cache();
    await caches.put(key, new MfResponse("stale", { headers: { "cache-control": "max-age=3600" } }));
    expect((await send("POST", path)).status).toBe(200);
    await sleep(300);
    expect(await caches.match(key), "the first pass cannot see it").toBeDefined();
    // Its batch is written, well within a window of the purge.
    const url = indexUrl("inval-vary-read", shardOf(resource));
    const shard = (await shardText("inval-vary-read", resource)) + `${Date.now() + 3_600_000} ${key}\n`;
    await caches.put(url, new MfResponse(shard, { headers: { "cache-control": "max-age=3600", "content-type": "text/plain" } }));
    // The second pass finds it, here and through the zone purge API.
    const gone = await poll(
      async () => (await caches.match(key)) === undefined,
      (g) => g,
      { timeoutMs: 6_000, intervalMs: 200 },
    );
    expect(gone, "the second pass drops it").toBe(true);
    await poll(
      async () => api.files().includes(key),
      (sent) => sent,
      { timeoutMs: 2_000, intervalMs: 100 },
    );
    expect(api.files()).toContain(key);
  });
});
