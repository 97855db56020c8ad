// Smoke test of the built edge Worker under Miniflare 4 (workerd on 127.0.0.1,
// random port), with the embedded example config: the admin health endpoint
// (behind the admin key), and problem+json with the request id on errors.
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const buildDir = `${root}build`;
const shim = `${buildDir}/worker/shim.mjs`;

// Same compatibility date as wrangler.toml, so tests and `wrangler dev` agree.
const compatibilityDate =
  /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}wrangler.toml`, "utf8"))?.[1] ??
  "2026-07-30";

const ADMIN_KEY = "smoke-admin-key";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let mf: Miniflare;

beforeAll(async () => {
  if (!existsSync(shim)) {
    throw new Error(`${shim} is missing: build the Worker first (bash scripts/build-worker.sh)`);
  }
  mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    compatibilityDate,
    modules: true,
    scriptPath: shim,
    // shim.mjs imports ../index.js (an ES module, though Miniflare's default
    // rules take .js for CommonJS), which imports index_bg.wasm.
    modulesRoot: buildDir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    // SQLite-backed, as wrangler.toml declares it (new_sqlite_classes).
    durableObjects: { THROTTLE: { className: "Throttle", useSQLite: true } },
    bindings: { ADMIN_KEY },
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
});

describe("edge worker", () => {
  it("answers GET /__tidegate/health with 200 JSON given the admin key", async () => {
    const res = await mf.dispatchFetch("http://gateway.test/__tidegate/health", {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toMatch(UUID);
    const body = (await res.json()) as { status: string; version: string; config: string };
    expect(body.status).toBe("ok");
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.config).toBe("ok");
  });

  it("refuses the health endpoint without the admin key", async () => {
    const res = await mf.dispatchFetch("http://gateway.test/__tidegate/health", {
      headers: { authorization: "Bearer wrong" },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    await res.arrayBuffer();
  });

  it("answers an unknown path with 404 problem+json carrying the request id", async () => {
    const res = await mf.dispatchFetch("http://gateway.test/nope?limit=1", {
      method: "POST",
      headers: { "x-request-id": "req-123.abc_DEF" },
      body: "{}",
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("x-request-id")).toBe("req-123.abc_DEF");
    expect(res.headers.get("server-timing")).toMatch(/total;dur=\d+/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: "https://tidegate.dev/problems/route-not-found",
      status: 404,
      request_id: "req-123.abc_DEF",
    });
    expect(typeof body.title).toBe("string");
  });

  it("replaces a request id it will not echo", async () => {
    const res = await mf.dispatchFetch("http://gateway.test/anything", {
      headers: { "x-request-id": "<script>alert(1)</script>" },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toMatch(UUID);
    await res.arrayBuffer();
  });
});
