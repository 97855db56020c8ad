// API keys in Workers KV ([api_keys] store = "kv"): 10,000 records bulk-loaded
// into Miniflare's KV, lookups, the per-isolate cache (found and unknown keys,
// observed by changing KV behind the gateway's back), expiry, revocation within
// the documented bound, the admin endpoints (issue, list, show, rotate, revoke),
// tiers as plans for API-key and JWT callers, and Cloudflare's 5 KB cap on
// TIDEGATE_CONFIG / API_KEYS enforced at run time.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { echoOf, expectProblem, headerValues } from "./support/expect";
import { Gateway } from "./support/gateway";
import { JwksServer } from "./support/jwks";
import { startOrigin, type Origin } from "./support/origin";
import { sleep, unique } from "./support/harness";
import { claims, rsaKey, signJwt } from "./support/tokens";

const ISSUER = "https://idp.tidegate.test/";
const BULK = 10_000;
/** Settings of the config below the specs rely on. */
const CACHE_TTL_MS = 2_000;
const NEGATIVE_TTL_MS = 1_000;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const newKey = () => `tdg_${randomBytes(32).toString("base64url")}`;
const nowSecs = () => Math.floor(Date.now() / 1000);

function config(origin: string, jwks: string): string {
  return `
[[issuers]]
name = "idp"
issuer = "${ISSUER}"
audiences = ["https://api.tidegate.test"]
jwks_url = "${jwks}/steady/jwks.json"
algorithms = ["RS256"]
tier_claim = "plan"

[api_keys]
store = "kv"
kv_binding = "KEYS"
cache_ttl = "${CACHE_TTL_MS}ms"
negative_ttl = "${NEGATIVE_TTL_MS}ms"
rotation_overlap = "1h"

[tiers.gold]
limits = [{ name = "per-subject", limit = 50, period = "1m" }]

[tiers.free]
limits = [{ name = "per-subject", limit = 2, period = "1m" }]

[[routes]]
name = "keys"
path = "/keys/*"
upstream = "${origin}"
auth = { require = "api_key", scopes = ["feed:read"] }

[[routes]]
name = "plans"
path = "/plans/*"
upstream = "${origin}"
auth = { require = "either" }
rate_limit = { limits = [{ name = "per-subject", limit = 10, period = "1m", key = "subject" }] }
`;
}

interface Issued {
  key: string;
  id: string;
  consumer: string;
  tier?: string;
  hash_prefix: string;
  status: string;
  created_at: number;
  expires_at?: number;
  replaces?: { id: string; expires_at: number; replaced_by: string };
}

describe("API keys in Workers KV", () => {
  let origin: Origin;
  let jwks: JwksServer;
  let gateway: Gateway;
  let kv: Awaited<ReturnType<Gateway["mf"]["getKVNamespace"]>>;
  const adminKey = `admin_${randomBytes(24).toString("base64url")}`;
  const rsa = rsaKey("rsa-keys");
  const bulk: { key: string; id: string; consumer: string; tier: string }[] = [];

  const withKey = (key: string, path = `/keys/${unique()}`) => gateway.fetch(path, { headers: { "x-api-key": key } });
  const admin = (path: string, init: { method?: string; body?: unknown } = {}) =>
    gateway.fetch(`/__tidegate/${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      ...(init.body === undefined ? {} : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }),
    });
  const record = (id: string, consumer: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ v: 1, id, consumer, scopes: ["feed:read"], created_at: nowSecs(), ...extra });

  beforeAll(async () => {
    [origin, jwks] = await Promise.all([startOrigin(), JwksServer.start()]);
    jwks.setKeys("/steady/jwks.json", [rsa.jwk]);
    gateway = await Gateway.start({
      config: config(origin.url, jwks.url),
      adminKey,
      kvNamespaces: ["KEYS"],
    });
    kv = await gateway.mf.getKVNamespace("KEYS");
    for (let i = 0; i < BULK; i++) {
      bulk.push({ key: newKey(), id: `bulk_${i}`, consumer: `bulk-${i % 500}`, tier: i % 2 ? "gold" : "free" });
    }
    for (let i = 0; i < BULK; i += 500) {
      await Promise.all(
        bulk.slice(i, i + 500).map((b) => kv.put(`key/${sha256(b.key)}`, record(b.id, b.consumer, { tier: b.tier }))),
      );
    }
  }, 180_000);

  afterAll(async () => {
    await gateway?.dispose();
    await Promise.allSettled([origin?.stop(), jwks?.close()]);
  });

  it(`holds ${BULK} keys and finds any of them`, async () => {
    const listed = await kv.list({ prefix: "key/" });
    expect(listed.keys.length).toBe(1000); // one page; the namespace holds more
    for (const i of [0, 1, 17, 499, 4_321, 7_777, 9_998, 9_999]) {
      const b = bulk[i]!;
      const res = await withKey(b.key);
      expect(res.status, res.text).toBe(200);
      const echo = echoOf(res);
      expect(headerValues(echo, "x-tidegate-subject")).toEqual([b.consumer]);
      expect(headerValues(echo, "x-tidegate-key-id")).toEqual([b.id]);
      expect(headerValues(echo, "x-tidegate-tier")).toEqual([b.tier]);
    }
  });

  it("remembers a found key for cache_ttl: no KV read, then the record is read again", async () => {
    const key = newKey();
    await kv.put(`key/${sha256(key)}`, record(`cached_${unique()}`, "cached"));
    expect((await withKey(key)).status).toBe(200);
    await kv.delete(`key/${sha256(key)}`);
    // Served from the isolate's cache: KV is not read again within cache_ttl.
    expect((await withKey(key)).status).toBe(200);
    await sleep(CACHE_TTL_MS + 300);
    expectProblem(await withKey(key), 401, "invalid-api-key");
  });

  it("remembers an unknown key for negative_ttl, then sees a new record", async () => {
    const key = newKey();
    expectProblem(await withKey(key), 401, "invalid-api-key");
    await kv.put(`key/${sha256(key)}`, record(`late_${unique()}`, "late"));
    // Still refused from the negative cache: no KV read for it.
    expectProblem(await withKey(key), 401, "invalid-api-key");
    await sleep(NEGATIVE_TTL_MS + 300);
    expect((await withKey(key)).status).toBe(200);
  });

  it("checks expiry on every request, cached or not", async () => {
    const key = newKey();
    await kv.put(`key/${sha256(key)}`, record(`exp_${unique()}`, "expiring", { expires_at: nowSecs() + 2 }));
    expect((await withKey(key)).status).toBe(200);
    await sleep(2_300);
    expectProblem(await withKey(key), 401, "invalid-api-key");
  });

  it("answers unknown, revoked, disabled, expired and early keys alike", async () => {
    const kinds = {
      revoked: { revoked_at: nowSecs() - 1 },
      disabled: { disabled: true },
      expired: { expires_at: nowSecs() - 1 },
      early: { not_before: nowSecs() + 3600 },
    };
    const answers = [];
    for (const [kind, extra] of Object.entries(kinds)) {
      const key = newKey();
      await kv.put(`key/${sha256(key)}`, record(`${kind}_${unique()}`, "alike", extra));
      answers.push(await withKey(key));
    }
    answers.push(await withKey(newKey()));
    const shapes = answers.map((r) => {
      const body = r.json();
      return { status: r.status, type: body.type, title: body.title, detail: body.detail, challenge: r.headers.get("www-authenticate") };
    });
    for (const s of shapes) expect(s).toEqual(shapes.at(-1));
    expect(shapes[0]!.status).toBe(401);
    const logs = gateway.logs.join("\n");
    for (const label of ["api_key_disabled", "api_key_expired", "api_key_not_yet_valid", "unknown_api_key"]) {
      expect(logs).toContain(label);
    }
  });

  it("issues a key shown once, lists it by consumer, and never shows hashes in full", async () => {
    const consumer = `acme-${unique()}`;
    const res = await admin("keys", {
      method: "POST",
      body: { consumer, scopes: ["feed:read"], tier: "gold", expires_in: "30d" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const issued = res.json<Issued>();
    expect(issued.key).toMatch(/^tdg_[A-Za-z0-9_-]{43}$/);
    expect(issued.id).toMatch(/^key_[0-9a-f]{20}$/);
    expect(issued).toMatchObject({ consumer, tier: "gold", status: "active", hash_prefix: sha256(issued.key).slice(0, 8) });
    expect(issued.expires_at).toBeGreaterThan(nowSecs() + 29 * 86_400);
    // Stored by hash only.
    const stored = await kv.get(`key/${sha256(issued.key)}`);
    expect(stored).not.toContain(issued.key);
    expect(JSON.parse(stored ?? "{}")).toMatchObject({ id: issued.id, consumer, tier: "gold" });

    const used = await withKey(issued.key);
    expect(used.status, used.text).toBe(200);
    expect(headerValues(echoOf(used), "x-tidegate-key-id")).toEqual([issued.id]);

    const list = await admin(`keys?consumer=${encodeURIComponent(consumer)}`);
    expect(list.status, list.text).toBe(200);
    const page = list.json<{ consumer: string; keys: Issued[]; list_complete: boolean }>();
    expect(page.consumer).toBe(consumer);
    expect(page.list_complete).toBe(true);
    expect(page.keys.map((k) => k.id)).toEqual([issued.id]);
    expect(list.text).not.toContain(issued.key);
    expect(list.text).not.toContain(sha256(issued.key));

    const shown = await admin(`keys/${issued.id}`);
    expect(shown.status).toBe(200);
    expect(shown.json()).toMatchObject({ id: issued.id, scopes: ["feed:read"], status: "active" });
    expect(shown.text).not.toContain(sha256(issued.key));
  });

  it("pages a consumer's keys with KV's cursor", async () => {
    const consumer = `pager/${unique()}`;
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const res = await admin("keys", { method: "POST", body: { consumer, scopes: ["feed:read"] } });
      expect(res.status, res.text).toBe(201);
      ids.push(res.json<Issued>().id);
    }
    const first = (await admin(`keys?consumer=${encodeURIComponent(consumer)}&limit=2`)).json<{
      keys: Issued[];
      cursor?: string;
      list_complete: boolean;
    }>();
    expect(first.keys).toHaveLength(2);
    expect(first.list_complete).toBe(false);
    expect(first.cursor).toBeTruthy();
    const second = (
      await admin(`keys?consumer=${encodeURIComponent(consumer)}&limit=2&cursor=${encodeURIComponent(first.cursor ?? "")}`)
    ).json<{ keys: Issued[]; list_complete: boolean }>();
    expect(second.list_complete).toBe(true);
    expect([...first.keys, ...second.keys].map((k) => k.id).sort()).toEqual(ids.sort());
    // Another consumer whose name starts the same lists nothing of these.
    const other = (await admin(`keys?consumer=${encodeURIComponent(consumer.split("/")[0]!)}`)).json<{ keys: Issued[] }>();
    expect(other.keys.filter((k) => ids.includes(k.id))).toEqual([]);
  });

  it("rotates with an overlap: both keys work, then only the new one", async () => {
    const consumer = `rot-${unique()}`;
    const old = (await admin("keys", { method: "POST", body: { consumer, scopes: ["feed:read"], tier: "free" } })).json<Issued>();
    expect((await withKey(old.key)).status).toBe(200);
    const res = await admin(`keys/${old.id}/rotate`, { method: "POST", body: { overlap: "2s" } });
    expect(res.status, res.text).toBe(201);
    const fresh = res.json<Issued>();
    expect(fresh.key).not.toBe(old.key);
    expect(fresh).toMatchObject({ consumer, tier: "free", status: "active" });
    expect(fresh.replaces).toMatchObject({ id: old.id, replaced_by: fresh.id });
    expect(fresh.replaces!.expires_at).toBeLessThanOrEqual(nowSecs() + 2);
    expect((await withKey(old.key)).status).toBe(200);
    expect((await withKey(fresh.key)).status).toBe(200);
    await sleep(3_100);
    expectProblem(await withKey(old.key), 401, "invalid-api-key");
    expect((await withKey(fresh.key)).status).toBe(200);
    const listed = (await admin(`keys?consumer=${consumer}`)).json<{ keys: Issued[] }>();
    const statuses = Object.fromEntries(listed.keys.map((k) => [k.id, k.status]));
    expect(statuses).toEqual({ [old.id]: "expired", [fresh.id]: "active" });
  });

  it("revokes: the next request gets the unknown-key answer, and KV says revoked", async () => {
    const consumer = `rev-${unique()}`;
    const issued = (await admin("keys", { method: "POST", body: { consumer, scopes: ["feed:read"] } })).json<Issued>();
    expect((await withKey(issued.key)).status).toBe(200); // now cached
    const res = await admin(`keys/${issued.id}/revoke`, { method: "POST" });
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ id: issued.id, status: "revoked", effective_within_seconds: 62 });
    // This isolate forgot the key at once; others within cache_ttl + KV's 60 s.
    expectProblem(await withKey(issued.key), 401, "invalid-api-key");
    const again = await admin(`keys/${issued.id}/rotate`, { method: "POST" });
    expectProblem(again, 409, "key-revoked");
    const listed = (await admin(`keys?consumer=${consumer}`)).json<{ keys: Issued[] }>();
    expect(listed.keys.map((k) => k.status)).toEqual(["revoked"]);
  });

  it("a revocation written elsewhere takes effect within cache_ttl", async () => {
    const key = newKey();
    const id = `elsewhere_${unique()}`;
    await kv.put(`key/${sha256(key)}`, record(id, "elsewhere"));
    expect((await withKey(key)).status).toBe(200);
    await kv.put(`key/${sha256(key)}`, record(id, "elsewhere", { revoked_at: nowSecs() }));
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < CACHE_TTL_MS + 2_000) {
      status = (await withKey(key)).status;
      if (status === 200) await sleep(100);
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThan(CACHE_TTL_MS + 500);
  });

  it("refuses bad admin requests with problems", async () => {
    expectProblem(await admin("keys", { method: "POST", body: {} }), 400, "invalid-key-request");
    expectProblem(await admin("keys", { method: "POST", body: "not json" }), 400, "invalid-key-request");
    const tier = await admin("keys", { method: "POST", body: { consumer: "a", tier: "platinum" } });
    expect(expectProblem(tier, 400, "invalid-key-request").detail).toContain("platinum");
    expectProblem(await admin("keys", { method: "POST", body: { consumer: "a", expires: 1 } }), 400, "invalid-key-request");
    expectProblem(await admin("keys/key_00000000000000000000/revoke", { method: "POST" }), 404, "key-not-found");
    expectProblem(await admin("keys/bad%2Fid"), 400, "invalid-key-request");
    expectProblem(await admin("keys"), 400, "invalid-key-request");
    expectProblem(await admin("keys?consumer=a&limit=5000"), 400, "invalid-key-request");
    const wrong = await admin("keys", { method: "DELETE" });
    expectProblem(wrong, 405, "method-not-allowed");
    const anonymous = await gateway.fetch("/__tidegate/keys", { method: "POST", body: JSON.stringify({ consumer: "x" }) });
    expectProblem(anonymous, 401, "admin-unauthorized");
  });

  describe("tiers as plans", () => {
    const policyOf = (r: { headers: Headers }) => r.headers.get("ratelimit-policy") ?? "";
    const jwt = (sub: string, plan?: string) =>
      `Bearer ${signJwt(rsa, claims(ISSUER, { sub, ...(plan ? { plan } : {}) }))}`;

    it("applies the key's tier to API-key callers", async () => {
      const gold = bulk[1]!; // odd: gold
      const free = bulk[2]!; // even: free
      const g = await withKey(gold.key, `/plans/${unique()}`);
      expect(g.status, g.text).toBe(200);
      expect(policyOf(g)).toContain('"per-subject";q=50;w=60');
      const f = await withKey(free.key, `/plans/${unique()}`);
      expect(policyOf(f)).toContain('"per-subject";q=2;w=60');
      // free: 2 a minute for the consumer, then 429.
      const consumerFree = bulk.filter((b) => b.consumer === free.consumer)[0]!;
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await withKey(consumerFree.key, `/plans/${unique()}`)).status);
      expect(statuses).toContain(429);
    });

    it("applies the issuer's tier claim to JWT callers, and the route's limits otherwise", async () => {
      const gold = await gateway.fetch(`/plans/${unique()}`, { headers: { authorization: jwt(`u-${unique()}`, "gold") } });
      expect(gold.status, gold.text).toBe(200);
      expect(policyOf(gold)).toContain('"per-subject";q=50;w=60');
      const none = await gateway.fetch(`/plans/${unique()}`, { headers: { authorization: jwt(`u-${unique()}`) } });
      expect(policyOf(none)).toContain('"per-subject";q=10;w=60');
      const odd = await gateway.fetch(`/plans/${unique()}`, { headers: { authorization: jwt(`u-${unique()}`, "platinum") } });
      expect(odd.status).toBe(200);
      expect(policyOf(odd)).toContain('"per-subject";q=10;w=60');
      expect(gateway.logs.some((l) => l.includes('"unknown_tier":"platinum"'))).toBe(true);
    });
  });
});

describe("Cloudflare's 5 KB cap at run time", () => {
  let origin: Origin;
  const started: Gateway[] = [];
  beforeAll(async () => {
    origin = await startOrigin();
  });
  afterAll(async () => {
    await Promise.allSettled(started.map((g) => g.dispose()));
    await origin?.stop();
  });
  const small = () => `[api_keys]\n[[routes]]\nname = "k"\npath = "/k/*"\nupstream = "${origin.url}"\nauth = { require = "api_key" }\n`;

  it("refuses a TIDEGATE_CONFIG over 5 KB, pointing at the embedded file", async () => {
    const config = `${small()}\n${"# padding\n".repeat(520)}`;
    expect(Buffer.byteLength(config)).toBeGreaterThan(5120);
    const gateway = await Gateway.start({ config, enforceSizeLimits: true });
    started.push(gateway);
    const res = await gateway.fetch("/k/x", { headers: { "x-api-key": "k" } });
    const problem = expectProblem(res, 500, "invalid-config");
    expect(problem.detail).toContain("over Cloudflare's 5 KB");
    expect(problem.detail).toContain("TIDEGATE_CONFIG_FILE");
  }, 60_000);

  it("refuses API_KEYS over 5 KB, pointing at the KV key store", async () => {
    const records = [];
    for (let i = 0; i < 60; i++) records.push({ id: `k${i}`, consumer: "c", sha256: sha256(newKey()) });
    const apiKeys = JSON.stringify(records);
    expect(apiKeys.length).toBeGreaterThan(5120);
    const gateway = await Gateway.start({ config: small(), apiKeys, enforceSizeLimits: true });
    started.push(gateway);
    const res = await gateway.fetch("/k/x", { headers: { "x-api-key": "k" } });
    const problem = expectProblem(res, 500, "invalid-config");
    expect(problem.detail).toContain("API_KEYS is");
    expect(problem.detail).toContain('store = "kv"');
  }, 60_000);
});
