// CORS at the edge: browser-shaped preflights answered before auth and
// limits (never counted, never proxied), CORS headers on every response of
// a route with `cors` (problem answers included), Vary: Origin, and a
// cached entry serving each origin its own Access-Control-Allow-Origin.
import { describe, expect, it } from "vitest";
import { echoOf } from "./support/expect";
import type { Reply } from "./support/gateway";
import { poll, unique, uniqueIp, useEdge } from "./support/harness";

const edge = useEdge();

const APP = "https://app.example.com";

/** A preflight as Chromium sends it. */
function preflight(path: string, origin: string, method: string, requestHeaders?: string, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = {
    origin,
    "access-control-request-method": method,
    "sec-fetch-mode": "cors",
    "sec-fetch-site": "cross-site",
    "sec-fetch-dest": "empty",
    accept: "*/*",
    ...extra,
  };
  if (requestHeaders !== undefined) headers["access-control-request-headers"] = requestHeaders;
  return edge.fetch(path, { method: "OPTIONS", headers });
}

const corsHeaderNames = (res: Reply) => [...res.headers.keys()].filter((n) => n.startsWith("access-control-"));
const varyOf = (res: Reply) => (res.headers.get("vary") ?? "").split(",").map((v) => v.trim().toLowerCase()).filter(Boolean);

describe("preflight", () => {
  it("an allowed preflight gets 204 with exactly the CORS answer, without auth and never reaching the origin", async () => {
    const path = `/cors/app/${unique()}`;
    const res = await preflight(path, APP, "PUT", "content-type,x-note,authorization");
    expect(res.status, res.text).toBe(204);
    expect(res.text).toBe("");
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-methods")).toBe("GET, POST, PUT, DELETE");
    expect(res.headers.get("access-control-allow-headers")).toBe("content-type, x-note, authorization");
    expect(res.headers.get("access-control-max-age")).toBe("3600");
    expect(varyOf(res)).toEqual(["origin", "access-control-request-method", "access-control-request-headers"]);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(res.headers.get("ratelimit")).toBeNull();
    expect(edge.origin.hits(path)).toBe(0);
  });

  it("subdomain patterns match real subdomains only", async () => {
    const path = `/cors/app/${unique()}`;
    const ok = await preflight(path, "https://acme.tenant.example", "GET");
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://acme.tenant.example");
    for (const origin of ["https://eviltenant.example", "https://tenant.example", "http://acme.tenant.example", "https://acme.tenant.example.evil.com", "https://acme.tenant.example:8443", "null"]) {
      const res = await preflight(path, origin, "GET");
      expect(res.status, origin).toBe(403);
      expect(corsHeaderNames(res), origin).toEqual([]);
    }
  });

  it("refused preflights (origin, method, header) get 403 problem+json without any CORS header", async () => {
    const path = `/cors/app/${unique()}`;
    const cases: [string, string, string | undefined, string][] = [
      ["https://evil.example", "GET", undefined, "origin"],
      [APP, "PATCH", undefined, "method"],
      [APP, "put", undefined, "method"],
      [APP, "GET", "x-secret", "header"],
    ];
    for (const [origin, method, headers, what] of cases) {
      const res = await preflight(path, origin, method, headers);
      expect(res.status, what).toBe(403);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(res.json().type, what).toMatch(/cors-preflight-refused$/);
      expect(corsHeaderNames(res), what).toEqual([]);
      expect(varyOf(res)).toContain("origin");
      expect(res.text).not.toContain("evil");
    }
    expect(edge.origin.hits(path)).toBe(0);
  });

  it("preflights are never counted by the limiter", async () => {
    const ip = uniqueIp();
    const path = `/cors/app/${unique()}`;
    for (let i = 0; i < 5; i++) {
      expect((await preflight(path, APP, "POST", "authorization", { "cf-connecting-ip": ip })).status).toBe(204);
    }
    const actual = await edge.fetch(path, { headers: { origin: APP, "cf-connecting-ip": ip, ...edge.bearer("alice") } });
    expect(actual.status, actual.text).toBe(200);
    expect(actual.headers.get("ratelimit")).toMatch(/;r=1;/);
  });

  it("an OPTIONS without Access-Control-Request-Method is an ordinary request", async () => {
    const path = `/cors/options/${unique()}`;
    const res = await edge.fetch(path, { method: "OPTIONS", headers: { origin: APP } });
    expect(res.status).toBe(200);
    expect(echoOf(res).method).toBe("OPTIONS");
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("a preflight for a method the route does not serve is refused, not proxied", async () => {
    const path = `/cors/options/${unique()}`;
    const res = await preflight(path, APP, "DELETE");
    expect(res.status).toBe(403);
    expect(corsHeaderNames(res)).toEqual([]);
    expect(edge.origin.hits(path)).toBe(0);
    expect((await preflight(path, APP, "GET")).status).toBe(204);
  });

  it("a preflight on a route without cors is an ordinary request", async () => {
    const res = await preflight(`/get-only`, APP, "GET");
    expect(res.status).toBe(405);
    expect(corsHeaderNames(res)).toEqual([]);
  });

  it("wildcard origins answer * without credentials", async () => {
    const res = await preflight(`/cors/public/${unique()}`, "https://anyone.example", "GET", "x-anything");
    expect(res.status).toBe(403); // x-anything is not among the default allowed headers
    const ok = await preflight(`/cors/public/${unique()}`, "https://anyone.example", "GET", "content-type");
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    expect(ok.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("the log line names the route and the preflight", async () => {
    const path = `/cors/app/${unique()}`;
    await preflight(path, APP, "GET");
    const find = () =>
      edge.gateway.logs
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })
        .find((l) => l?.path === path);
    const line = await poll(async () => find(), (found) => found !== undefined, { timeoutMs: 3_000, intervalMs: 50 });
    expect(line).toMatchObject({ route: "cors-app", status: 204, cors: "preflight", method: "OPTIONS" });
  });
});

describe("actual requests", () => {
  it("an allowed origin gets its own ACAO, credentials, exposed headers and Vary: Origin", async () => {
    const res = await edge.fetch(`/cors/app/${unique()}`, { headers: { origin: APP, ...edge.bearer("alice"), "cf-connecting-ip": uniqueIp() } });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").split(", ");
    for (const name of ["ratelimit", "ratelimit-policy", "retry-after", "x-request-id", "x-total-count"]) expect(exposed).toContain(name);
    expect(varyOf(res)).toContain("origin");
  });

  it("a disallowed or absent origin gets no CORS headers, but Vary: Origin", async () => {
    for (const headers of [{ origin: "https://evil.example" }, {}]) {
      const res = await edge.fetch(`/cors/app/${unique()}`, { headers: { ...headers, ...edge.bearer("alice"), "cf-connecting-ip": uniqueIp() } });
      expect(res.status).toBe(200);
      expect(corsHeaderNames(res)).toEqual([]);
      expect(varyOf(res)).toContain("origin");
    }
  });

  it("problem answers carry CORS headers so scripts can read them (401, 429, 502)", async () => {
    const ip = uniqueIp();
    const unauth = await edge.fetch(`/cors/app/${unique()}`, { headers: { origin: APP, "cf-connecting-ip": ip } });
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get("access-control-allow-origin")).toBe(APP);
    expect(unauth.headers.get("access-control-expose-headers")).toContain("www-authenticate");
    const statuses: number[] = [];
    let last: Reply | undefined;
    for (let i = 0; i < 3; i++) {
      last = await edge.fetch(`/cors/app/${unique()}`, { headers: { origin: APP, "cf-connecting-ip": ip, ...edge.bearer("bob") } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(last?.headers.get("access-control-allow-origin")).toBe(APP);
    expect(last?.headers.get("access-control-allow-credentials")).toBe("true");
    const dead = await edge.fetch(`/cors/dead/${unique()}`, { headers: { origin: APP } });
    expect(dead.status).toBe(502);
    expect(dead.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("the origin's own CORS headers are replaced by the route's", async () => {
    const path = `/cors/public/${unique()}`;
    edge.origin.respond(path, { headers: { "access-control-allow-origin": "https://origin-choice.example", "access-control-allow-credentials": "true", vary: "Accept-Encoding" } });
    const res = await edge.fetch(path, { headers: { origin: "https://x.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toBe("Accept-Encoding");
  });

  it("one cached entry serves each origin its own ACAO", async () => {
    const path = `/cors/cached/${unique()}`;
    const a = await edge.fetch(path, { headers: { origin: "https://a.example.com" } });
    const b = await edge.fetch(path, { headers: { origin: "https://b.example.com" } });
    const none = await edge.fetch(path);
    const evil = await edge.fetch(path, { headers: { origin: "https://evil.example" } });
    expect(edge.origin.hits(path)).toBe(1);
    expect(b.headers.get("x-cache-status")).toBe("HIT");
    expect(a.headers.get("access-control-allow-origin")).toBe("https://a.example.com");
    expect(b.headers.get("access-control-allow-origin")).toBe("https://b.example.com");
    expect(none.headers.get("access-control-allow-origin")).toBeNull();
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    for (const res of [a, b, none, evil]) expect(varyOf(res).filter((v) => v === "origin")).toEqual(["origin"]);
  });
});
