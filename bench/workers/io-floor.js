// The I/O-equivalent floor: the same I/O as Tidegate's paths (a Durable
// Object round trip with a SQLite read and write, a Cache API lookup and
// store, the origin fetch) and no policy work at all (no routing table, no
// token, no GCRA, no headers). workerd CPU of Tidegate's path minus this
// Worker's is the gateway's own CPU.
//
// Paths mirror the bench config's routes:
//   /proxy/*, /apikey/*, /jwt/*   origin only
//   /limited/*                    DO + origin
//   /secure/*                     DO + cache (+ origin, put and batched index update on a miss)
//   /cached/*                     cache (+ origin, put and batched index update on a miss)
import { DurableObject } from "cloudflare:workers";

export class IoCounter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  }
  // One SQLite read and one write per call, as Tidegate's Throttle does, over
  // RPC with a JSON string both ways like its `decide`. One object per
  // subject, like Tidegate's per-subject limit: the load generator sends the
  // token's subject as x-bench-key (this Worker reads no token).
  decide(op) {
    JSON.parse(op);
    const row = this.ctx.storage.sql.exec("SELECT v FROM c WHERE id = 0").toArray()[0];
    const next = String(Number(row?.v ?? 0) + 1);
    this.ctx.storage.sql.exec("INSERT INTO c (id, v) VALUES (0, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v", next);
    return JSON.stringify({ v: next });
  }
}

// Tidegate keeps, per caching route, an index of the keys it stored (for
// purge by prefix), sharded in 64 entries capped at 32 keys, and writes it in
// batches: an isolate gathers the keys it stores for one shard over a second,
// then reads the shard, appends them and puts it back once. The same Cache
// API traffic here (one more match and put per shard per second), with string
// slicing instead of the policy's line format.
const INDEX_SHARDS = 64;
const SHARD_MAX_BYTES = 32 * 120;
const INDEX_BATCH_WINDOW_MS = 1000;
const pending = new Map();
function shardOf(key) {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return h % INDEX_SHARDS;
}
async function store(key, response, indexBase) {
  await caches.default.put(key, response);
  const indexUrl = `${indexBase}/${shardOf(key)}`;
  const batch = pending.get(indexUrl);
  if (batch) {
    batch.push(key);
    return;
  }
  pending.set(indexUrl, [key]);
  await new Promise((resolve) => setTimeout(resolve, INDEX_BATCH_WINDOW_MS));
  const keys = pending.get(indexUrl) ?? [];
  pending.delete(indexUrl);
  const index = await caches.default.match(indexUrl);
  let text = index ? await index.text() : "";
  for (const k of keys) text = `${text}"${k}",`;
  while (text.length > SHARD_MAX_BYTES) text = text.slice(text.indexOf(",") + 1);
  await caches.default.put(indexUrl, new Response(text, { headers: { "cache-control": "max-age=3600" } }));
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const first = url.pathname.split("/")[1];
    if (first === "limited" || first === "secure") {
      const stub = env.IO_COUNTER.get(env.IO_COUNTER.idFromName(request.headers.get("x-bench-key") ?? "anon"));
      JSON.parse(await stub.decide('{"op":"check"}'));
    }
    if (first === "secure" || first === "cached") {
      const key = `https://cache.io${url.pathname}${url.search}`;
      const hit = await caches.default.match(key);
      if (hit) {
        const response = new Response(hit.body, hit);
        response.headers.set("x-cache-status", "HIT");
        return response;
      }
      const fresh = await fetch(`${env.ORIGIN}${url.pathname}${url.search}`);
      const stored = new Response(fresh.body, fresh);
      stored.headers.set("cache-control", "max-age=3600");
      ctx.waitUntil(store(key, stored.clone(), `https://cache-index.io/${first}`));
      stored.headers.set("x-cache-status", "MISS");
      return stored;
    }
    return fetch(`${env.ORIGIN}${url.pathname}${url.search}`, { method: request.method, headers: request.headers });
  },
};
