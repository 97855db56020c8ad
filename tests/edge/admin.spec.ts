// Admin endpoints under /__tidegate/: every one needs `Authorization: Bearer
// <ADMIN_KEY>` (401 otherwise); health, the effective config without secrets,
// the limiter state of a key, and cache purges.
import { describe, expect, it } from "vitest";
import { cacheStatus, expectTraced } from "./support/expect";
import type { Reply } from "./support/gateway";
import { unique, uniqueIp, useEdge } from "./support/harness";

const edge = useEdge();
const admin = () => ({ authorization: `Bearer ${edge.adminKey}` });

function expectUnauthorized(res: Reply) {
  expect(res.status, res.text.slice(0, 300)).toBe(401);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(res.json().status).toBe(401);
  expect(res.text).not.toContain(edge.adminKey);
  expectTraced(res);
}

const endpoints: [string, string, string?][] = [
  ["GET", "/__tidegate/health"],
  ["GET", "/__tidegate/config"],
  ["GET", "/__tidegate/limits/limit-ip:per-ip:198.51.100.1"],
  ["POST", "/__tidegate/purge", JSON.stringify({ url: "http://gateway.test/cache/shared/x" })],
];

describe("admin authentication", () => {
  for (const [method, path, body] of endpoints) {
    it(`${method} ${path} needs the admin key`, async () => {
      const init = { method, ...(body ? { body } : {}) };
      expectUnauthorized(await edge.fetch(path, init));
      expectUnauthorized(await edge.fetch(path, { ...init, headers: { authorization: "Bearer wrong-key" } }));
      expectUnauthorized(await edge.fetch(path, { ...init, headers: { authorization: `Bearer ${edge.adminKey}x` } }));
      expectUnauthorized(await edge.fetch(path, { ...init, headers: { authorization: `Basic ${edge.adminKey}` } }));
      expectUnauthorized(await edge.fetch(`${path}?key=${encodeURIComponent(edge.adminKey)}`, init));
      // A valid end-user token is not the admin key.
      expectUnauthorized(await edge.fetch(path, { ...init, headers: edge.bearer("admin") }));
    });
  }

  it("never proxies the admin prefix to an origin", async () => {
    await edge.fetch("/__tidegate/health");
    await edge.fetch("/__tidegate/health", { headers: admin() });
    expect(edge.origin.hits("/__tidegate/health")).toBe(0);
  });
});

describe("with the admin key", () => {
  it("GET health reports ok, the version and the config state", async () => {
    const res = await edge.fetch("/__tidegate/health", { headers: admin() });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expectTraced(res);
    const body = res.json<{ status: string; version: string; config: string; wasm_memory_bytes: number }>();
    expect(body.status).toBe("ok");
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.config).toBe("ok");
    // Whole 64 KiB pages of the isolate's linear memory.
    expect(body.wasm_memory_bytes).toBeGreaterThan(0);
    expect(body.wasm_memory_bytes % 65536).toBe(0);
  });

  it("GET config shows the effective configuration and no secret", async () => {
    const res = await edge.fetch("/__tidegate/config", { headers: admin() });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const text = res.text;
    const body = res.json<{ routes: { name: string }[]; issuers: { name: string }[] }>();
    expect(body.routes.map((r) => r.name)).toEqual(expect.arrayContaining(["public", "limit-exact", "cache-private"]));
    expect(body.issuers.map((i) => i.name)).toEqual(expect.arrayContaining(["test-idp", "hmac-idp"]));
    expect(text).not.toContain(edge.adminKey);
    expect(text).not.toContain(edge.hsSecret);
    for (const [name, key] of Object.entries(edge.apiKeys)) if (name !== "json") expect(text).not.toContain(key);
    for (const record of JSON.parse(edge.apiKeys.json) as { sha256: string }[]) expect(text).not.toContain(record.sha256);
  });

  it("GET limits/{key} shows a limiter's state", async () => {
    const ip = uniqueIp();
    expect((await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": ip } })).status).toBe(200);
    const key = `limit-ip:per-ip:${ip}`;
    const res = await edge.fetch(`/__tidegate/limits/${key}`, { headers: admin() });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body.key).toBe(key);
    expect(body).toHaveProperty("tat_ns");
    // The policy decodes the key back to its route and limit.
    expect(body.route).toBe("limit-ip");
    expect(body.limit).toBe("per-ip");
    expect(body.remaining).toBeGreaterThanOrEqual(0);
    // A key no limiter_key could have made names no limit.
    const odd = await edge.fetch(`/__tidegate/limits/${encodeURIComponent("limit-ip:per-ip:a:b")}`, { headers: admin() });
    expect(odd.status, odd.text).toBe(200);
    expect(odd.json()).not.toHaveProperty("route");
  });

  it("POST purge removes the cached entry of a URL", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    expect(cacheStatus(await edge.fetch(path))).toBe("HIT");
    const purge = await edge.fetch("/__tidegate/purge", {
      method: "POST",
      headers: { ...admin(), "content-type": "application/json" },
      body: JSON.stringify({ url: `http://gateway.test${path}` }),
    });
    expect(purge.status, purge.text).toBe(200);
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    expect(edge.origin.hits(path)).toBe(2);
  });

  it("POST purge by prefix purges every entry under it, or answers 501 if unsupported", async () => {
    const prefix = `/cache/shared/${unique()}/`;
    const paths = [`${prefix}a`, `${prefix}b`];
    for (const path of paths) await edge.fetch(path);
    const purge = await edge.fetch("/__tidegate/purge", {
      method: "POST",
      headers: { ...admin(), "content-type": "application/json" },
      body: JSON.stringify({ prefix }),
    });
    expect([200, 501], purge.text).toContain(purge.status);
    if (purge.status === 200) {
      for (const path of paths) expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    } else {
      expect(purge.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    }
  });

  it("POST purge refuses a body it cannot read", async () => {
    const res = await edge.fetch("/__tidegate/purge", {
      method: "POST",
      headers: { ...admin(), "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  });

  it("answers 404 for an unknown admin endpoint", async () => {
    const res = await edge.fetch("/__tidegate/nope", { headers: admin() });
    expect(res.status).toBe(404);
    expectTraced(res);
  });
});
