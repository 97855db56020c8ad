// Admin endpoints under attack: no key, wrong keys of every shape, the key
// in the wrong place, path tricks around the prefix, methods, and every
// wrong key refused identically. A correct key still works at the end.
import { describe, expect, it } from "vitest";
import { expectTraced } from "../support/expect";
import type { Reply } from "../support/gateway";
import { useEdge } from "../support/harness";
import { pool } from "./support/load";

const edge = useEdge();
const PER_REQUEST = new Set(["x-request-id", "server-timing", "date", "content-length"]);

function observable(res: Reply) {
  const body = res.json();
  delete body.request_id;
  return { status: res.status, body, headers: [...res.headers.entries()].filter(([n]) => !PER_REQUEST.has(n)).sort() };
}

describe("wrong admin credentials", () => {
  it("every wrong key on every endpoint gets the same 401, without the key in it", async () => {
    const key = edge.adminKey;
    const wrong: Record<string, string>[] = [
      {},
      { authorization: "" },
      { authorization: "Bearer" },
      { authorization: "Bearer " },
      { authorization: `Bearer ${key.slice(0, -1)}` },
      { authorization: `Bearer ${key}x` },
      { authorization: `Bearer ${key.toUpperCase()}` },
      { authorization: `Bearer ${key.slice(0, 16)}` },
      { authorization: `Bearer ${"0".repeat(key.length)}` },
      { authorization: `Bearer ${Buffer.from(key).toString("base64")}` },
      { authorization: `Basic ${Buffer.from(`admin:${key}`).toString("base64")}` },
      { authorization: `Token ${key}` },
      { authorization: key },
      { authorization: `Bearer ${key}, Bearer ${key}` },
      { "x-admin-key": key },
      { "x-api-key": key },
      { cookie: `admin_key=${key}` },
      { authorization: `Bearer ${edge.apiKeys.acme1}` },
      { "x-api-key": edge.apiKeys.acme1 },
      { authorization: `Bearer ${"k".repeat(10_000)}` },
    ];
    const endpoints: [string, string][] = [
      ["GET", "/__tidegate/health"],
      ["GET", "/__tidegate/config"],
      ["GET", "/__tidegate/limits/limit-ip%3Aper-ip%3A198.51.100.1"],
      ["POST", "/__tidegate/purge"],
      ["DELETE", "/__tidegate/config"],
      ["GET", "/__tidegate/nope"],
      ["GET", "/__tidegate/"],
    ];
    const combos = endpoints.flatMap(([method, path]) => wrong.map((headers) => ({ method, path, headers })));
    const replies = await pool(combos.length, 16, (i) => {
      const { method, path, headers } = combos[i]!;
      return edge.fetch(path, { method, headers, ...(method === "POST" ? { body: '{"prefix":"/"}' } : {}) });
    });
    const reference = observable(replies[0]!);
    expect(reference.status).toBe(401);
    for (const [i, res] of replies.entries()) {
      const { method, path, headers } = combos[i]!;
      expect(observable(res), `${method} ${path} ${JSON.stringify(headers).slice(0, 60)}`).toEqual(reference);
      expect(res.text).not.toContain(key);
      expectTraced(res);
    }
    console.info(`[figures] admin: ${combos.length} unauthorised requests, all identical 401`);
  });

  it("path tricks around the prefix never reach an admin answer without the key", async () => {
    const tricks = [
      "/__tidegate/config/",
      "/__tidegate//config",
      "/__tidegate/./config",
      "/public/../__tidegate/config",
      "/__tidegate/%63onfig",
      "/__TIDEGATE/config",
      "/%5F%5Ftidegate/config",
      "//__tidegate/config",
      "/__tidegate/config?x=/public/",
      "/__tidegate/config#frag",
      "/__tidegate/limits/..%2fconfig",
    ];
    for (const path of tricks) {
      const res = await edge.fetch(path);
      expect([401, 404], `${path}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
      expect(res.text).not.toContain('"routes"');
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    }
    expect(edge.origin.hits("/__tidegate/config")).toBe(0);
  });

  it("the real key still works afterwards (no lockout); odd purge bodies are never a 5xx", async () => {
    const ok = await edge.fetch("/__tidegate/health", { headers: { authorization: `Bearer ${edge.adminKey}` } });
    expect(ok.status).toBe(200);
    const bodies = [
      { url: "file:///etc/passwd" },
      { url: "javascript:alert(1)" },
      { url: "x".repeat(20_000) },
      { prefix: "" },
      { prefix: "../../" },
      { url: "http://gateway.test/a", prefix: "/b" },
      [],
      "string",
      null,
    ];
    for (const body of bodies) {
      const res = await edge.fetch("/__tidegate/purge", {
        method: "POST",
        headers: { authorization: `Bearer ${edge.adminKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(res.status, `${JSON.stringify(body).slice(0, 40)}: ${res.text.slice(0, 200)}`).toBeLessThan(500);
    }
  });
});
