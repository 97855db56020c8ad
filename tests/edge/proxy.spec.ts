// Proxying: upstream URL and strip_prefix, the request id, headers the origin
// receives (trusted identity only, spoofed x-tidegate-* and hop-by-hop
// stripped, credentials only where forward_credentials), routing errors, and
// 502 / 504 when the origin is unreachable or too slow.
import { describe, expect, it } from "vitest";
import { cacheStatus, echoOf, expectProblem, expectTraced, headerValues, tidegateHeaders, UUID_V4 } from "./support/expect";
import { Gateway } from "./support/gateway";
import { poll, unique, useEdge } from "./support/harness";

const edge = useEdge();

describe("forwarding", () => {
  it("forwards path and query to the route's upstream and returns the origin's answer", async () => {
    const path = `/public/${unique()}`;
    edge.origin.respond(path, { headers: { "x-origin-says": "hello" } });
    const res = await edge.fetch(`${path}?b=2&a=1`);
    const echo = echoOf(res);
    expect(res.status).toBe(200);
    expect(echo.method).toBe("GET");
    expect(echo.url).toBe(`${path}?b=2&a=1`);
    expect(res.headers.get("x-origin-says")).toBe("hello");
    expect(cacheStatus(res)).toBe("BYPASS");
    expectTraced(res, ["origin"]);
  });

  it("removes strip_prefix and prepends the upstream's base path", async () => {
    const seg = unique();
    const echo = echoOf(await edge.fetch(`/strip/items/${seg}?q=a`));
    expect(echo.url).toBe(`/base/items/${seg}?q=a`);
  });

  it("forwards the method and body of a POST, without caching it", async () => {
    const res = await edge.fetch(`/public/${unique()}`, { method: "POST", body: "hello origin" });
    const echo = echoOf(res);
    expect(echo.method).toBe("POST");
    expect(echo.body).toBe("hello origin");
    expect(cacheStatus(res)).toBe("BYPASS");
  });

  it("passes the origin's own error statuses through unchanged", async () => {
    const path = `/public/${unique()}`;
    edge.origin.respond(path, { status: 500, headers: { "x-from": "origin" } });
    const res = await edge.fetch(path);
    expect(res.status).toBe(500);
    expect(res.headers.get("x-from")).toBe("origin");
    expect(res.json<{ url: string }>().url).toBe(path);
    expectTraced(res, ["origin"]);
  });
});

describe("request id", () => {
  it("reuses a well-formed incoming x-request-id and forwards it", async () => {
    const res = await edge.fetch(`/public/${unique()}`, { headers: { "x-request-id": "client-req.42:abc_DEF" } });
    expect(res.headers.get("x-request-id")).toBe("client-req.42:abc_DEF");
    expect(headerValues(echoOf(res), "x-request-id")).toEqual(["client-req.42:abc_DEF"]);
  });

  it("generates a UUID v4 when there is none, the same for client and origin", async () => {
    const res = await edge.fetch(`/public/${unique()}`);
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(UUID_V4);
    expect(headerValues(echoOf(res), "x-request-id")).toEqual([id]);
  });

  it("replaces a malformed incoming id everywhere", async () => {
    const res = await edge.fetch(`/public/${unique()}`, { headers: { "x-request-id": "<script>alert(1)</script>" } });
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(UUID_V4);
    expect(headerValues(echoOf(res), "x-request-id")).toEqual([id]);
  });

  it("gives two requests different ids", async () => {
    const a = await edge.fetch(`/public/${unique()}`);
    const b = await edge.fetch(`/public/${unique()}`);
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });
});

describe("logs", () => {
  it("writes one JSON line per request with its id, route and status", async () => {
    const id = `rid-log-${Date.now()}`;
    expect((await edge.fetch(`/public/${unique()}`, { headers: { "x-request-id": id } })).status).toBe(200);
    const lines = await poll(
      async () => edge.gateway.logs.filter((l) => l.includes(id)),
      (found) => found.length > 0,
      { timeoutMs: 3_000, intervalMs: 50 },
    );
    expect(lines.length).toBe(1);
    const line = lines[0] ?? "";
    expect(() => JSON.parse(line)).not.toThrow();
    expect(line).toContain('"public"');
    expect(line).toMatch(/:\s*200\b/);
  });
});

describe("routing errors", () => {
  it("answers an unknown route with 404 route-not-found problem+json", async () => {
    const res = await edge.fetch("/nowhere/at/all", { headers: { "x-request-id": "rid-404" } });
    const body = expectProblem(res, 404, "route-not-found");
    expect(body.request_id).toBe("rid-404");
    expect(edge.origin.hits("/nowhere/at/all")).toBe(0);
  });

  it("answers a method the route does not serve with 405 and Allow", async () => {
    const res = await edge.fetch("/get-only", { method: "POST", body: "x" });
    expectProblem(res, 405, "method-not-allowed");
    expect(res.headers.get("allow") ?? "").toMatch(/\bGET\b/);
    expect(edge.origin.hits("/get-only")).toBe(0);
  });
});

describe("headers the origin receives", () => {
  const spoofed = {
    "x-tidegate-subject": "admin",
    "X-Tidegate-Key-Id": "key_root",
    "x-tidegate-scopes": "admin:all orders:read",
    "x-tidegate-tier": "platinum",
    "x-tidegate-issuer": "https://evil.example/",
    "x-tidegate-anything-else": "1",
  };

  it("strips client-sent x-tidegate-* headers on an anonymous route", async () => {
    const echo = echoOf(await edge.fetch(`/public/${unique()}`, { headers: spoofed }));
    expect(tidegateHeaders(echo)).toEqual([]);
  });

  it("sends only the verified identity on an authenticated route, whatever the client claims", async () => {
    const echo = echoOf(
      await edge.fetch(`/jwt/${unique()}`, {
        headers: { ...spoofed, ...edge.bearer("alice", { scope: "orders:read feed:read", tier: "silver" }) },
      }),
    );
    expect(headerValues(echo, "x-tidegate-subject")).toEqual(["alice"]);
    expect(headerValues(echo, "x-tidegate-issuer")).toEqual(["https://idp.tidegate.test/"]);
    expect(headerValues(echo, "x-tidegate-scopes")).toEqual(["orders:read feed:read"]);
    expect(headerValues(echo, "x-tidegate-tier")).toEqual(["silver"]);
    expect(headerValues(echo, "x-tidegate-key-id")).toEqual(["rsa-1"]);
    expect(tidegateHeaders(echo)).not.toContain("x-tidegate-anything-else");
  });

  it("sends the API key's id and consumer, never the key", async () => {
    const echo = echoOf(await edge.fetch(`/keys/${unique()}`, { headers: { ...spoofed, "x-api-key": edge.apiKeys.acme1 } }));
    expect(headerValues(echo, "x-tidegate-subject")).toEqual(["acme"]);
    expect(headerValues(echo, "x-tidegate-key-id")).toEqual(["key_acme_1"]);
    expect(headerValues(echo, "x-tidegate-tier")).toEqual(["gold"]);
    expect(headerValues(echo, "x-tidegate-issuer")).toEqual([]);
    expect(JSON.stringify(echo)).not.toContain(edge.apiKeys.acme1);
  });

  it("strips Authorization and the API key header unless forward_credentials is set", async () => {
    const token = edge.token("bob");
    const jwt = echoOf(await edge.fetch(`/jwt/${unique()}`, { headers: { authorization: `Bearer ${token}` } }));
    expect(headerValues(jwt, "authorization")).toEqual([]);
    const key = echoOf(await edge.fetch(`/keys/${unique()}`, { headers: { "x-api-key": edge.apiKeys.acme1 } }));
    expect(headerValues(key, "x-api-key")).toEqual([]);

    const fwdJwt = echoOf(await edge.fetch(`/forward/${unique()}`, { headers: { authorization: `Bearer ${token}` } }));
    expect(headerValues(fwdJwt, "authorization")).toEqual([`Bearer ${token}`]);
    const fwdKey = echoOf(await edge.fetch(`/forward/${unique()}`, { headers: { "x-api-key": edge.apiKeys.acme1 } }));
    expect(headerValues(fwdKey, "x-api-key")).toEqual([edge.apiKeys.acme1]);
  });

  it("strips hop-by-hop headers, including those named in Connection", async () => {
    const path = `/public/${unique()}`;
    // Sent over a raw socket: fetch() refuses to send most of these.
    const res = await edge.gateway.raw(path, {
      headers: {
        connection: "keep-alive, x-custom-hop",
        "x-custom-hop": "secret-for-the-next-hop-only",
        "keep-alive": "timeout=5",
        "proxy-authorization": "Basic dXNlcjpwYXNz",
        "proxy-connection": "keep-alive",
        te: "trailers",
        "x-end-to-end": "kept",
      },
    });
    const echo = echoOf(res);
    const received = echo.rawHeaders.map(([n]) => n.toLowerCase());
    for (const name of ["x-custom-hop", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade", "trailer"]) {
      expect(received, `origin must not receive ${name}`).not.toContain(name);
    }
    expect(headerValues(echo, "x-end-to-end")).toEqual(["kept"]);
    expectTraced(res);
  });
});

describe("origin failures", () => {
  it("answers 502 bad-gateway when the origin refuses connections", async () => {
    const res = await edge.fetch(`/dead/${unique()}`, { headers: { "x-request-id": "rid-502" } });
    const body = expectProblem(res, 502, "bad-gateway");
    expect(body.request_id).toBe("rid-502");
    expect(JSON.stringify(body)).not.toContain(String(edge.dead));
  });

  it("answers 504 gateway-timeout when the origin is slower than the route timeout (500ms)", async () => {
    const path = `/slow/${unique()}`;
    edge.origin.respond(path, { delayMs: 8_000 });
    const res = await edge.fetch(path);
    expectProblem(res, 504, "gateway-timeout");
    expect(edge.origin.hits(path)).toBe(1);
    // Gave up near the timeout, not when the origin finally answered.
    expect(res.ms).toBeLessThan(6_000);
  });
});

describe("[gateway] server_timing = false", () => {
  it("withholds Server-Timing on every path (fast proxy, full path, cache MISS and HIT, problem); the log line keeps the durations", async () => {
    const config = edge.config.replace("trust_request_id = true", "trust_request_id = true\nserver_timing = false");
    expect(config).not.toBe(edge.config);
    const quiet = await Gateway.start({ config, apiKeys: edge.apiKeys.json });
    try {
      const id = `rid-quiet-${unique()}`;
      const shared = `/cache/shared/${unique()}`;
      const answers = [
        await quiet.fetch(`/public/${unique()}`, { headers: { "x-request-id": id } }),
        await quiet.fetch(`/jwt/${unique()}`, { headers: { authorization: `Bearer ${edge.token()}` } }),
        await quiet.fetch(shared),
        await poll(() => quiet.fetch(shared), (r) => r.headers.get("x-cache-status") === "HIT", { timeoutMs: 5_000, intervalMs: 30 }),
        await quiet.fetch(`/nowhere/${unique()}`),
      ];
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 404]);
      for (const res of answers) {
        expect(res.headers.get("server-timing")).toBeNull();
        expect(res.headers.get("x-request-id")).toBeTruthy();
      }
      const line = await poll(
        async () => quiet.logs.find((l) => l.includes(`"id":"${id}"`)),
        (l) => l !== undefined,
        { timeoutMs: 2_000, intervalMs: 20 },
      );
      expect(JSON.parse(line ?? "{}").ms).toHaveProperty("total");
    } finally {
      await quiet.dispose();
    }
  }, 60_000);
});
