// Smoke test of the built edge Worker under Miniflare 4 (workerd on
// 127.0.0.1, random port) with the config embedded at build time: the
// authenticated health endpoint, and problem+json with the request id for a
// path no route matches. The other specs cover the gateway in depth.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectProblem, UUID_V4 } from "./support/expect";
import { Gateway } from "./support/gateway";

const adminKey = "smoke-admin-key-0123456789abcdef";
let gateway: Gateway;

beforeAll(async () => {
  gateway = await Gateway.start({ adminKey });
}, 60_000);

afterAll(async () => {
  await gateway?.dispose();
});

describe("edge worker", () => {
  it("answers GET /__tidegate/health with 200 JSON to the admin", async () => {
    const res = await gateway.fetch("/__tidegate/health", { headers: { authorization: `Bearer ${adminKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toMatch(UUID_V4);
    const body = res.json<{ status: string; version: string }>();
    expect(body.status).toBe("ok");
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("answers a path no route matches with 404 problem+json carrying the request id", async () => {
    const res = await gateway.fetch("/no/such/route?limit=1", {
      method: "POST",
      headers: { "x-request-id": "req-123.abc_DEF" },
      body: "{}",
    });
    const body = expectProblem(res, 404, "route-not-found");
    expect(res.headers.get("x-request-id")).toBe("req-123.abc_DEF");
    expect(body.request_id).toBe("req-123.abc_DEF");
  });

  it("replaces a request id it will not echo", async () => {
    const res = await gateway.fetch("/no/such/route", { headers: { "x-request-id": "<script>alert(1)</script>" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toMatch(UUID_V4);
  });
});
