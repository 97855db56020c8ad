// Cache poisoning attempts against the shared cache: unkeyed headers the
// origin says it varies on, Host spoofing, HEAD-first and Range-first
// entries, repeated query parameters in another order, error answers,
// and authenticated answers leaking to other callers. A poisoned entry
// would show up as a HIT carrying what the attacker's request produced.
import { describe, expect, it } from "vitest";
import { cacheStatus, echoOf, expectProblem } from "../support/expect";
import type { Reply } from "../support/gateway";
import { unique, useEdge } from "../support/harness";

const edge = useEdge();
const servedUrl = (res: Reply) => res.json<{ url: string }>().url;
const servedHeader = (res: Reply, name: string) => res.json<{ headers: Record<string, string> }>().headers[name];

describe("unkeyed request headers", () => {
  for (const header of ["x-forwarded-host", "x-forwarded-scheme", "x-original-url", "cookie", "authorization", "accept-language"]) {
    it(`a response that varies on ${header} (not in the key) is never stored`, async () => {
      const path = `/cache/shared/${unique()}`;
      edge.origin.respond(path, { headers: { vary: header, "cache-control": "public, max-age=3600" } });
      const attack = await edge.fetch(path, { headers: { [header]: "evil.example" } });
      expect(attack.status).toBe(200);
      const victim = await edge.fetch(path);
      expect(cacheStatus(victim)).not.toBe("HIT");
      expect(servedHeader(victim, header)).not.toBe("evil.example");
      expect(edge.origin.hits(path)).toBe(2);
    });
  }

  it("a response with Vary listing a keyed and an unkeyed header is not stored either", async () => {
    const path = `/cache/shared/${unique()}`;
    edge.origin.respond(path, { headers: { vary: "Accept-Encoding, X-Forwarded-Host" } });
    await edge.fetch(path, { headers: { "x-forwarded-host": "evil.example" } });
    expect(cacheStatus(await edge.fetch(path))).not.toBe("HIT");
  });
});

describe("host and method", () => {
  it("an entry stored for a spoofed Host is never served to the real host", async () => {
    const path = `/cache/shared/${unique()}`;
    const spoofed = await edge.gateway.raw(path, { headers: { host: "evil.example" } });
    expect(spoofed.status).toBe(200);
    const real = await edge.fetch(path);
    expect(cacheStatus(real)).toBe("MISS");
    expect(edge.origin.hits(path)).toBe(2);
  });

  it("a HEAD request first does not leave an empty body for the next GET", async () => {
    const path = `/cache/shared/${unique()}`;
    const head = await edge.fetch(path, { method: "HEAD" });
    expect(head.status).toBe(200);
    const get = await edge.fetch(path);
    expect(get.status).toBe(200);
    expect(echoOf(get).url).toBe(path);
  });

  it("a Range request first does not leave a partial entry", async () => {
    const path = `/cache/shared/${unique()}`;
    await edge.fetch(path, { headers: { range: "bytes=0-3" } });
    const get = await edge.fetch(path);
    expect(get.status).toBe(200);
    expect(echoOf(get).url).toBe(path);
  });

  it("POST to a cached path neither stores nor purges an entry", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(path))).toBe("MISS");
    const post = await edge.fetch(path, { method: "POST", body: "poison" });
    expect(post.status).toBe(405);
    const again = await edge.fetch(path);
    expect(cacheStatus(again)).toBe("HIT");
    expect(echoOf(again).method).toBe("GET");
  });
});

describe("query strings (vary_query = [\"page\"])", () => {
  it("repeated parameters in another order get their own entry (parameter pollution)", async () => {
    const path = `/cache/shared/${unique()}`;
    const first = await edge.fetch(`${path}?page=2&page=1`);
    expect(cacheStatus(first)).toBe("MISS");
    const second = await edge.fetch(`${path}?page=1&page=2`);
    // An origin reading the first value answers page 1 here, page 2 above.
    expect(cacheStatus(second)).toBe("MISS");
    expect(servedUrl(second)).toBe(`${path}?page=1&page=2`);
  });

  it("spellings of one query share an entry: encoding and the order of distinct names", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(`${path}?page=%31`))).toBe("MISS");
    expect(cacheStatus(await edge.fetch(`${path}?page=1`))).toBe("HIT");
    expect(cacheStatus(await edge.fetch(`${path}?utm=x&page=1`))).toBe("HIT");
  });

  it("a parameter left out of the key never reaches the origin, so it cannot be reflected into the entry", async () => {
    const path = `/cache/shared/${unique()}`;
    const poisoned = await edge.fetch(`${path}?utm=%3Cscript%3Ealert(1)%3C/script%3E&page=1`);
    expect(cacheStatus(poisoned)).toBe("MISS");
    expect(servedUrl(poisoned)).toBe(`${path}?page=1`);
    const victim = await edge.fetch(`${path}?page=1`);
    expect(cacheStatus(victim)).toBe("HIT");
    expect(servedUrl(victim)).toBe(`${path}?page=1`);
    // A route without a cache rule forwards the query as sent.
    const uncached = await edge.fetch(`/public/${unique()}?utm=x&page=1`);
    expect(servedUrl(uncached)).toContain("?utm=x&page=1");
  });

  it("a client-sent __tg parameter cannot address another entry", async () => {
    const path = `/cache/shared/${unique()}`;
    expect(cacheStatus(await edge.fetch(`${path}?page=1`))).toBe("MISS");
    const forged = await edge.fetch(`${path}?page=2&__tg=${"0".repeat(64)}`);
    expect(cacheStatus(forged)).toBe("MISS");
    expect(servedUrl(forged)).toContain("page=2");
  });
});

describe("error and authenticated answers", () => {
  it("an origin error provoked by one client is not served to the next", async () => {
    const path = `/cache/shared/${unique()}`;
    edge.origin.respond(path, { status: 500, headers: { "cache-control": "public, max-age=3600" } });
    expect((await edge.fetch(path)).status).toBe(500);
    edge.origin.reset(path);
    const next = await edge.fetch(path);
    expect(next.status).toBe(200);
    expect(cacheStatus(next)).toBe("MISS");
  });

  it("a private entry never reaches another caller, even one forging the owner's identity headers", async () => {
    const path = `/cache/private/${unique()}`;
    expect(cacheStatus(await edge.fetch(path, { headers: edge.bearer("alice") }))).toBe("MISS");
    const mallory = await edge.fetch(path, {
      headers: { ...edge.bearer("mallory"), "x-tidegate-subject": "alice", "x-tidegate-issuer": "https://idp.tidegate.test/" },
    });
    expect(cacheStatus(mallory)).toBe("MISS");
    expect(servedHeader(mallory, "x-tidegate-subject")).toBe("mallory");
    expectProblem(await edge.fetch(path, { headers: { "x-tidegate-subject": "alice" } }), 401, "missing-credentials");
  });

  it("a shared-scope answer to an authenticated caller is stored only when public, and then without its cookies", async () => {
    const path = `/cache/auth-shared/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "public, max-age=60", "set-cookie": "session=alice" } });
    await edge.fetch(path, { headers: edge.bearer("alice") });
    const bob = await edge.fetch(path, { headers: edge.bearer("bob") });
    expect(cacheStatus(bob)).not.toBe("HIT");
    expect(servedHeader(bob, "x-tidegate-subject")).toBe("bob");
  });
});
