// Spoofing: identity headers in every spelling a proxy or framework might
// fold together (case, underscores, repeats), client-IP headers other than
// CF-Connecting-IP, Host and URL-override headers. What the origin receives
// and which rate-limit bucket a request lands in must depend only on what
// the gateway verified.
import { describe, expect, it } from "vitest";
import { echoOf, headerValues } from "../support/expect";
import type { Reply } from "../support/gateway";
import { unique, uniqueIp, useEdge } from "../support/harness";

const edge = useEdge();

/** Header names the origin received that an application could read as x-tidegate-* (CGI folds `_` into `-`). */
function identityLike(res: Reply): [string, string][] {
  return echoOf(res).rawHeaders.filter(([n]) => n.toLowerCase().replace(/_/g, "-").startsWith("x-tidegate-"));
}

const remaining = (res: Reply) => Number(/;r=(\d+)/.exec(res.headers.get("ratelimit") ?? "")?.[1] ?? NaN);

describe("identity headers", () => {
  const spellings: Record<string, string | string[]> = {
    "X-TIDEGATE-SUBJECT": "admin",
    "x-TideGate-Key-Id": "key_root",
    x_tidegate_subject: "admin",
    "X_Tidegate_Scopes": "admin:all",
    "x-tidegate_tier": "platinum",
    "x-tidegate-issuer": ["https://evil.example/", "https://idp.tidegate.test/"],
    "x-tidegate-subject": ["admin", "root"],
  };

  it("an anonymous request cannot send any spelling of x-tidegate-* to the origin", async () => {
    const res = await edge.gateway.raw(`/public/${unique()}`, { headers: spellings });
    expect(res.status, res.text).toBe(200);
    expect(identityLike(res)).toEqual([]);
  });

  it("an authenticated request carries exactly the verified identity, once", async () => {
    const res = await edge.gateway.raw(`/jwt/${unique()}`, {
      headers: { ...spellings, authorization: `Bearer ${edge.token("alice", { scope: "feed:read" })}` },
    });
    expect(res.status, res.text).toBe(200);
    const seen = identityLike(res).map(([n, v]) => `${n.toLowerCase()}=${v}`);
    expect(seen.sort()).toEqual(
      ["x-tidegate-subject=alice", "x-tidegate-key-id=rsa-1", "x-tidegate-scopes=feed:read", "x-tidegate-issuer=https://idp.tidegate.test/"].sort(),
    );
  });

  it("an API-key request carries the key's consumer, whatever identity headers it sends", async () => {
    const res = await edge.gateway.raw(`/keys/${unique()}`, { headers: { ...spellings, "x-api-key": edge.apiKeys.acme2 } });
    expect(res.status, res.text).toBe(200);
    const echo = echoOf(res);
    expect(headerValues(echo, "x-tidegate-subject")).toEqual(["acme"]);
    expect(headerValues(echo, "x-tidegate-key-id")).toEqual(["key_acme_2"]);
    expect(identityLike(res).filter(([n]) => n.includes("_"))).toEqual([]);
  });

  it("a subject with separators or control-like characters cannot smuggle a second value", async () => {
    const res = await edge.fetch(`/jwt/${unique()}`, { headers: edge.bearer("alice, admin\tx-tidegate-tier: gold") });
    const echo = echoOf(res);
    const subject = headerValues(echo, "x-tidegate-subject");
    expect(subject).toHaveLength(1);
    expect(subject[0]).not.toMatch(/[,\s]/);
    expect(decodeURIComponent(subject[0]!)).toBe("alice, admin\tx-tidegate-tier: gold");
    expect(headerValues(echo, "x-tidegate-tier")).toEqual([]);
  });
});

describe("client IP headers (limit-ip: 2 per hour, keyed by CF-Connecting-IP only)", () => {
  const spoofHeaders = (i: number) => ({
    "x-forwarded-for": `203.0.113.${i}, 198.51.100.${i}`,
    "x-real-ip": `203.0.113.${i}`,
    "true-client-ip": `203.0.113.${i}`,
    "x-client-ip": `203.0.113.${i}`,
    "x-cluster-client-ip": `203.0.113.${i}`,
    forwarded: `for=203.0.113.${i};proto=https`,
    "fastly-client-ip": `203.0.113.${i}`,
    "cf-connecting-ipv6": `2001:db8::${i}`,
    "cf-pseudo-ipv4": `203.0.113.${i}`,
  });

  it("rotating every other client-IP header does not buy a new bucket", async () => {
    const ip = uniqueIp();
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) {
      statuses.push((await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": ip, ...spoofHeaders(i) } })).status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  it("spellings of one address share its bucket (IPv4-mapped IPv6, zero-padded IPv6, one /64)", async () => {
    const n = Number(uniqueIp().split(".")[3]) + 1000;
    const hex = n.toString(16);
    const v6 = [`2001:db8:${hex}::1`, `2001:0db8:${hex}:0000:0000:0000:0000:0002`, `2001:db8:${hex}:0:ffff:ffff:ffff:ffff`];
    const statuses = [];
    for (const ip of v6) statuses.push((await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": ip } })).status);
    expect(statuses).toEqual([200, 200, 429]);

    const v4 = uniqueIp();
    const mapped = [v4, `::ffff:${v4}`, ` ${v4} `];
    const s4 = [];
    for (const ip of mapped) s4.push((await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": ip } })).status);
    expect(s4).toEqual([200, 200, 429]);
  });

  it("a garbage CF-Connecting-IP cannot alias a real address's bucket", async () => {
    const ip = uniqueIp();
    for (let i = 0; i < 2; i++) await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": ip } });
    // `?` + raw text: its own bucket, never the real address's.
    const garbage = await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": `${ip}x` } });
    expect(garbage.status).toBe(200);
    expect(remaining(garbage)).toBe(1);
    expect((await edge.fetch("/limits/ip", { headers: { "cf-connecting-ip": ip } })).status).toBe(429);
  });
});

describe("host and URL override headers", () => {
  it("the origin gets its own Host, never the client's", async () => {
    const res = await edge.gateway.raw(`/public/${unique()}`, {
      headers: { host: "evil.example", "x-forwarded-host": "evil.example" },
    });
    const echo = echoOf(res);
    expect(headerValues(echo, "host")).toEqual([`127.0.0.1:${edge.origin.port}`]);
  });

  it("X-Original-URL / X-Rewrite-URL / method overrides do not change routing or auth", async () => {
    const path = `/public/${unique()}`;
    const res = await edge.fetch(path, {
      headers: {
        "x-original-url": "/__tidegate/config",
        "x-rewrite-url": "/jwt/secret",
        "x-http-method-override": "DELETE",
        "x-forwarded-prefix": "/__tidegate",
      },
    });
    const echo = echoOf(res);
    expect(echo.url).toBe(path);
    expect(echo.method).toBe("GET");
    // An authenticated route is not opened by claiming a public URL.
    const jwt = await edge.fetch(`/jwt/${unique()}`, { headers: { "x-original-url": "/public/x", "x-rewrite-url": "/public/x" } });
    expect(jwt.status).toBe(401);
  });

  it("encoded path tricks reach the origin exactly as matched, and cannot skip auth", async () => {
    for (const path of [`/public/..%2fjwt/${unique()}`, `/public/%2e%2e%2fjwt/${unique()}`, `/public/x%00%2f..%2fjwt`]) {
      const res = await edge.fetch(path);
      expect(res.status, path).toBe(200);
      // The origin sees what the gateway routed on: no decoding in between.
      expect(echoOf(res).url, path).toBe(new URL(path, "http://x").pathname);
    }
    // The URL parser resolves dot segments (`%2e%2e` included) before routing.
    for (const path of [`/public/%2e%2e/jwt/${unique()}`, `/public/../jwt/${unique()}`, `/jwt/../jwt/${unique()}`, `//jwt/${unique()}`, `/jwt/./${unique()}`, `/jwt%2f${unique()}`, `/JWT/${unique()}`]) {
      const res = await edge.fetch(path);
      expect([401, 404], `${path}: ${res.status}`).toContain(res.status);
    }
  });
});

describe("client forwarding headers (stripped unless a route allows them)", () => {
  const claimed = {
    "X-Forwarded-For": "203.0.113.66",
    "x_forwarded_for": "203.0.113.67",
    "X-Real-IP": "203.0.113.66",
    "x_real_ip": "203.0.113.66",
    "True-Client-IP": "203.0.113.66",
    Forwarded: "for=203.0.113.66;host=evil.example;proto=https",
    "X-Forwarded-Host": "evil.example",
    "x_forwarded_host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Original-URL": "/__tidegate/config",
    "X-Rewrite-URL": "/__tidegate/config",
    "X-HTTP-Method-Override": "DELETE",
    "x_http_method_override": "DELETE",
    "X-Client-IP": "203.0.113.66",
    "X-Cluster-Client-IP": "203.0.113.66",
    "Client-IP": "203.0.113.66",
    "X-Forwarded-Prefix": "/__tidegate",
    "X-Method-Override": "DELETE",
    traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01, 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-00f067aa0ba902b7-01",
  };

  it("no spelling of a client's claim reaches the origin; the gateway's own values do", async () => {
    const res = await edge.gateway.raw(`/public/${unique()}`, { headers: { ...claimed, "cf-connecting-ip": "192.0.2.77" } });
    const echo = echoOf(res);
    const seen = echo.rawHeaders.map(([n, v]) => `${n.toLowerCase().replace(/_/g, "-")}: ${v}`);
    expect(seen.filter((l) => l.includes("203.0.113.") || l.includes("evil.example") || l.includes("__tidegate") || l.includes("DELETE"))).toEqual([]);
    expect(headerValues(echo, "x-forwarded-for")).toEqual(["192.0.2.77"]);
    expect(headerValues(echo, "forwarded")).toEqual(["for=192.0.2.77;proto=http"]);
    expect(headerValues(echo, "x-forwarded-proto")).toEqual(["http"]);
    // Two traceparents are invalid: a fresh trace, one header.
    const tp = headerValues(echo, "traceparent");
    expect(tp).toHaveLength(1);
    expect(tp[0]).not.toContain("4bf92f3577b34da6a3ce929d0e0e4736");
  });
});
