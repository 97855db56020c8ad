// Configuration and secrets: an invalid TIDEGATE_CONFIG fails every request
// with a 500 problem naming the errors (and no secret); an invalid API_KEYS
// fails only what needs API keys; no ADMIN_KEY disables the admin endpoints;
// no TIDEGATE_CONFIG means the config embedded at build time.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routeNames } from "./support/config";
import { expectProblem, expectTraced } from "./support/expect";
import { Gateway, root } from "./support/gateway";
import { unique, useEdge } from "./support/harness";
import { hmacSecret } from "./support/tokens";

/** A Gateway for one describe block. */
function useGateway(options: Parameters<typeof Gateway.start>[0]) {
  const box: { gateway?: Gateway } = {};
  beforeAll(async () => {
    box.gateway = await Gateway.start(options);
  }, 60_000);
  afterAll(async () => {
    await box.gateway?.dispose();
  });
  return () => {
    if (!box.gateway) throw new Error("gateway not started");
    return box.gateway;
  };
}

describe("invalid TIDEGATE_CONFIG", () => {
  const secret = hmacSecret();
  const adminKey = `admin-${hmacSecret()}`;
  const broken = `
[[issuers]]
name = "idp"
issuer = "https://idp.example/"
audiences = ["https://api.example"]
algorithms = ["none"]
jwks = { keys = [{ kty = "oct", kid = "k1", alg = "HS256", k = "${secret}" }] }

[[routes]]
name = "orders"
path = "/v1/orders/*"
upstream = "http://127.0.0.1:9"
auth = { require = "none" }

[routes.rate_limit]
limits = [{ name = "per-ip", limit = 5, period = "1 second", key = "client_ip" }]
`;
  const gateway = useGateway({ config: broken, adminKey });

  it("fails every request with 500 invalid-config naming each problem", async () => {
    for (const path of ["/v1/orders/1", "/anything/else", "/"]) {
      const res = await gateway().fetch(path, { headers: { "x-request-id": "rid-cfg" } });
      const body = expectProblem(res, 500, "invalid-config");
      expect(body.request_id).toBe("rid-cfg");
      const detail = String(body.detail);
      expect(detail).toContain("routes[0].rate_limit.limits[0].period");
      expect(detail).toContain("issuers[0].algorithms[0]");
      expect(detail).not.toContain(secret);
      expect(res.text).not.toContain(secret);
    }
  });

  it("does not serve the admin endpoints as if the config were fine", async () => {
    const res = await gateway().fetch("/__tidegate/health", { headers: { authorization: `Bearer ${adminKey}` } });
    expectTraced(res);
    // Either the whole gateway is down (500 invalid-config) or health says so.
    if (res.status === 200) {
      expect(res.json().config).toBe("invalid");
    } else {
      expectProblem(res, 500, "invalid-config");
    }
  });
});

describe("TIDEGATE_CONFIG that is not TOML", () => {
  const gateway = useGateway({ config: "not [toml" });

  it("answers 500 invalid-config saying so", async () => {
    const body = expectProblem(await gateway().fetch("/v1/catalog/x"), 500, "invalid-config");
    expect(String(body.detail)).toMatch(/TOML/);
  });
});

describe("TIDEGATE_CONFIG that is not text", () => {
  // A [vars] table in wrangler.toml arrives as an object: refused by name,
  // never read as unset (which would serve the embedded config instead).
  const gateway = useGateway({ config: { routes: [{ name: "r", path: "/x/*", upstream: "http://127.0.0.1:9" }] } });

  it("answers 500 invalid-config naming the binding, its type and the fix", async () => {
    const body = expectProblem(await gateway().fetch("/v1/catalog/x"), 500, "invalid-config");
    const detail = String(body.detail);
    expect(detail).toContain("TIDEGATE_CONFIG is an object, not text");
    expect(detail).toContain("wrangler.toml");
  });
});

describe("API_KEYS that is not text", () => {
  const edge = useEdge({ apiKeys: { keys: [] } });

  it("fails requests that need API keys with 500 naming API_KEYS and its type", async () => {
    const res = await edge.fetch(`/keys/${unique()}`, { headers: { "x-api-key": "whatever-key-value" } });
    const body = expectProblem(res, 500, "invalid-config");
    expect(String(body.detail)).toContain("API_KEYS is an object, not text");
  });

  it("still serves routes that do not use API keys", async () => {
    expect((await edge.fetch(`/public/${unique()}`)).status).toBe(200);
  });
});

describe("invalid API_KEYS", () => {
  const edge = useEdge({ apiKeys: '[{"id": "k1", "consumer": "acme"}]' });

  it("fails requests that need API keys with 500 naming API_KEYS", async () => {
    const res = await edge.fetch(`/keys/${unique()}`, { headers: { "x-api-key": "whatever-key-value" } });
    const body = expectProblem(res, 500, "invalid-config");
    expect(String(body.detail)).toContain("API_KEYS");
  });

  it("still serves routes that do not use API keys", async () => {
    expect((await edge.fetch(`/public/${unique()}`)).status).toBe(200);
    expect((await edge.fetch(`/jwt/${unique()}`, { headers: edge.bearer() })).status).toBe(200);
  });
});

describe("no ADMIN_KEY", () => {
  const edge = useEdge({ adminKey: undefined });

  it("answers 404 on every admin endpoint, whatever the credentials", async () => {
    for (const path of ["/__tidegate/health", "/__tidegate/config", "/__tidegate/limits/x:y:z"]) {
      for (const headers of [{}, { authorization: "Bearer " }, { authorization: "Bearer anything" }]) {
        const res = await edge.fetch(path, { headers });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(404);
        expectTraced(res);
      }
    }
    expect(edge.origin.hits("/__tidegate/health")).toBe(0);
  });

  it("still serves the routes", async () => {
    expect((await edge.fetch(`/public/${unique()}`)).status).toBe(200);
  });
});

describe("no TIDEGATE_CONFIG", () => {
  const adminKey = `admin-${hmacSecret()}`;
  const gateway = useGateway({ adminKey });

  it("uses the config embedded at build time (examples/gateway.toml)", async () => {
    const res = await gateway().fetch("/__tidegate/config", { headers: { authorization: `Bearer ${adminKey}` } });
    expect(res.status, res.text).toBe(200);
    const expected = routeNames(readFileSync(`${root}examples/gateway.toml`, "utf8"));
    expect(expected.length).toBeGreaterThan(0);
    expect(res.json<{ routes: { name: string }[] }>().routes.map((r) => r.name)).toEqual(expected);
    const health = await gateway().fetch("/__tidegate/health", { headers: { authorization: `Bearer ${adminKey}` } });
    expect(health.json().config).toBe("ok");
  });

  it("routes by it: unknown paths are 404 route-not-found", async () => {
    expectProblem(await gateway().fetch("/not/a/route"), 404, "route-not-found");
  });
});
