// Signed identity assertions: origins that verify the edge with an
// independent JWT library (jose) against the edge's public JWKS endpoint.
// Each verifying origin is a node:http server on 127.0.0.1 that checks the
// `x-tidegate-assertion` header as an origin would (issuer, its own
// audience, EdDSA/ES256 only, at most 60 s old) and answers what it found.
// Forged, expired, replayed-to-another-upstream, unsigned and client-sent
// assertions fail; two keys in the secret are both published, the first signs.
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeApiKeys, type ApiKeys } from "./support/apikeys";
import { expectProblem } from "./support/expect";
import { Gateway } from "./support/gateway";
import { unique } from "./support/harness";

const ISSUER = "https://edge.tidegate.test";
const HEADER = "x-tidegate-assertion";
const JWKS_PATH = "/__tidegate/.well-known/jwks.json";

interface Verdict {
  ok: boolean;
  error?: string;
  claims?: JWTPayload;
  header?: Record<string, unknown>;
  /** Every header line as received. */
  raw: [string, string][];
}

/** An origin that verifies the assertion of each request with jose. */
class VerifyingOrigin {
  private server: Server | null = null;
  url = "";
  jwks: ReturnType<typeof createRemoteJWKSet> | null = null;

  /** `path` is the upstream's base path (the audience is `url + path`). */
  constructor(private readonly path = "") {}

  get audience(): string {
    return `${this.url}${this.path}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  async verify(token: string | undefined): Promise<Omit<Verdict, "raw">> {
    if (!token) return { ok: false, error: "missing" };
    if (!this.jwks) return { ok: false, error: "no jwks" };
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.jwks, {
        issuer: ISSUER,
        audience: this.audience,
        algorithms: ["EdDSA", "ES256"],
        maxTokenAge: "60s",
        requiredClaims: ["iat", "exp", "jti"],
      });
      return { ok: true, claims: payload, header: protectedHeader as Record<string, unknown> };
    } catch (e) {
      return { ok: false, error: (e as { code?: string }).code ?? String(e) };
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw: [string, string][] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) raw.push([req.rawHeaders[i] ?? "", req.rawHeaders[i + 1] ?? ""]);
    const header = req.headers[HEADER];
    const verdict: Verdict = { ...(await this.verify(Array.isArray(header) ? undefined : header)), raw };
    req.resume();
    res.writeHead(verdict.ok ? 200 : 401, { "content-type": "application/json" });
    res.end(JSON.stringify(verdict));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface PrivateJwk {
  kty: string;
  crv: string;
  x: string;
  y?: string;
  d: string;
  kid: string;
}

function edKey(kid: string): { jwk: PrivateJwk; privateKey: KeyObject } {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { jwk: { ...(privateKey.export({ format: "jwk" }) as PrivateJwk), kid }, privateKey };
}

function ecKey(kid: string): { jwk: PrivateJwk; privateKey: KeyObject } {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { jwk: { ...(privateKey.export({ format: "jwk" }) as PrivateJwk), kid }, privateKey };
}

function config(orders: VerifyingOrigin, other: VerifyingOrigin, assertion = true): string {
  return `
[api_keys]
${assertion ? `\n[assertion]\nissuer = "${ISSUER}"\nttl = "30s"\njwks_max_age = "120s"\n` : ""}
[[routes]]
name = "orders"
path = "/orders/*"
upstream = "${orders.url}"
auth = { require = "api_key" }

[[routes]]
name = "other"
path = "/other/*"
upstream = "${other.url}/v2"
auth = { require = "api_key" }
origin_secret = { header = "x-origin-key", secret = "ORIGIN_KEY" }

[[routes]]
name = "public"
path = "/public/*"
upstream = "${orders.url}"
auth = { require = "none" }
${
  assertion
    ? `
[[routes]]
name = "signed-public"
path = "/signed-public/*"
upstream = "${orders.url}"
auth = { require = "none" }
assert_identity = true
`
    : ""
}`;
}

const edNew = edKey("ed-2026-12");
const ecOld = ecKey("ec-2026-06");
const originKey = `ok_${randomBytes(18).toString("base64url")}`;
const orders = new VerifyingOrigin();
const other = new VerifyingOrigin("/v2");
let apiKeys: ApiKeys;
let gateway: Gateway;
const extra: Gateway[] = [];

async function start(options: { secrets?: Record<string, string>; assertion?: boolean }): Promise<Gateway> {
  const gw = await Gateway.start({
    config: config(orders, other, options.assertion ?? true),
    apiKeys: apiKeys.json,
    adminKey: `admin_${randomBytes(12).toString("hex")}`,
    secrets: options.secrets,
  });
  extra.push(gw);
  return gw;
}

const keysSecret = (...keys: PrivateJwk[]) => JSON.stringify({ keys });

beforeAll(async () => {
  await Promise.all([orders.start(), other.start()]);
  apiKeys = makeApiKeys();
  gateway = await Gateway.start({
    config: config(orders, other),
    apiKeys: apiKeys.json,
    adminKey: "admin-unused",
    secrets: { TIDEGATE_ASSERTION_KEYS: keysSecret(edNew.jwk, ecOld.jwk), ORIGIN_KEY: originKey },
  });
  // The origins fetch the edge's JWKS over HTTP, as a real origin would.
  const jwks = createRemoteJWKSet(new URL(JWKS_PATH, gateway.url));
  orders.jwks = jwks;
  other.jwks = jwks;
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([gateway?.dispose(), ...extra.map((g) => g.dispose()), orders.stop(), other.stop()]);
}, 30_000);

const call = (gw: Gateway, path: string, headers: Record<string, string> = {}) =>
  gw.fetch(path, { headers: { "x-api-key": apiKeys.acme1, ...headers } });

/** The assertion the origin received (the verdict echoes every header line). */
function assertionOf(verdict: Verdict): string {
  const lines = verdict.raw.filter(([name]) => name.toLowerCase() === HEADER);
  expect(lines).toHaveLength(1);
  return lines[0]?.[1] ?? "";
}

describe("the JWKS endpoint", () => {
  it("is public, cacheable and holds every public key without private members", async () => {
    const res = await gateway.fetch(JWKS_PATH);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/jwk-set+json");
    expect(res.headers.get("cache-control")).toBe("public, max-age=120");
    const { keys } = res.json<{ keys: Record<string, string>[] }>();
    expect(keys.map((k) => k.kid)).toEqual(["ed-2026-12", "ec-2026-06"]);
    expect(keys[0]).toEqual({ kty: "OKP", crv: "Ed25519", x: edNew.jwk.x, kid: "ed-2026-12", alg: "EdDSA", use: "sig" });
    expect(keys[1]).toEqual({
      kty: "EC",
      crv: "P-256",
      x: ecOld.jwk.x,
      y: ecOld.jwk.y,
      kid: "ec-2026-06",
      alg: "ES256",
      use: "sig",
    });
    expect(res.text).not.toContain('"d"');
    expect(res.text).not.toContain(edNew.jwk.d);
    expect(res.text).not.toContain(ecOld.jwk.d);
  });

  it("answers HEAD and refuses other methods", async () => {
    expect((await gateway.fetch(JWKS_PATH, { method: "HEAD" })).status).toBe(200);
    const post = await gateway.fetch(JWKS_PATH, { method: "POST", body: "{}" });
    expectProblem(post, 405, "method-not-allowed");
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("a signed assertion", () => {
  it("verifies at the origin with jose, with the caller's claims", async () => {
    const res = await call(gateway, `/orders/${unique()}`, { "x-request-id": "req-assert-1" });
    expect(res.status).toBe(200);
    const verdict = res.json<Verdict>();
    expect(verdict.ok).toBe(true);
    const claims = verdict.claims ?? {};
    expect(verdict.header).toEqual({ alg: "EdDSA", kid: "ed-2026-12", typ: "JWT" });
    expect(claims.iss).toBe(ISSUER);
    expect(claims.aud).toBe(orders.url);
    expect(claims.sub).toBe("acme");
    expect(claims.key_id).toBe("key_acme_1");
    expect(claims.scope).toBe("feed:read orders:read");
    expect(claims.tier).toBe("gold");
    expect(claims.auth).toBe("api_key");
    expect(claims.request_id).toBe("req-assert-1");
    expect(typeof claims.jti).toBe("string");
    const lifetime = (claims.exp ?? 0) - (claims.iat ?? 0);
    expect(lifetime).toBe(30);
    expect(lifetime).toBeLessThanOrEqual(60);
    expect(Math.abs((claims.iat ?? 0) - Date.now() / 1000)).toBeLessThan(10);
  });

  it("is fresh per request (its own jti)", async () => {
    const a = (await call(gateway, `/orders/${unique()}`)).json<Verdict>().claims?.jti;
    const b = (await call(gateway, `/orders/${unique()}`)).json<Verdict>().claims?.jti;
    expect(a).toBeTruthy();
    expect(a).not.toBe(b);
  });

  it("is bound to the upstream: another upstream's origin refuses it", async () => {
    const res = await call(gateway, `/other/${unique()}`);
    const verdict = res.json<Verdict>();
    expect(verdict.ok).toBe(true);
    expect(verdict.claims?.aud).toBe(`${other.url}/v2`);
    // Replay the orders assertion to the other origin directly.
    const token = assertionOf((await call(gateway, `/orders/${unique()}`)).json<Verdict>());
    expect(await other.verify(token)).toMatchObject({ ok: false, error: "ERR_JWT_CLAIM_VALIDATION_FAILED" });
    expect(await orders.verify(token)).toMatchObject({ ok: true });
  });

  it("expires: the same assertion fails once its exp has passed", async () => {
    const token = assertionOf((await call(gateway, `/orders/${unique()}`)).json<Verdict>());
    const jwks = createRemoteJWKSet(new URL(JWKS_PATH, gateway.url));
    const later = new Date(Date.now() + 61_000);
    await expect(jwtVerify(token, jwks, { issuer: ISSUER, audience: orders.url, currentDate: later })).rejects.toMatchObject({
      code: "ERR_JWT_EXPIRED",
    });
  });

  it("cannot be forged: another key under the same kid, a tampered payload or alg none all fail", async () => {
    const intruder = edKey("ed-2026-12");
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ sub: "admin", scope: "orders:write" })
      .setProtectedHeader({ alg: "EdDSA", kid: "ed-2026-12", typ: "JWT" })
      .setIssuer(ISSUER)
      .setAudience(orders.url)
      .setIssuedAt(now)
      .setExpirationTime(now + 30)
      .setJti("x")
      .sign(intruder.privateKey);
    expect(await orders.verify(forged)).toMatchObject({ ok: false, error: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });

    const real = assertionOf((await call(gateway, `/orders/${unique()}`)).json<Verdict>());
    const [head, , sig] = real.split(".");
    const body = Buffer.from(JSON.stringify({ ...decodeJwt(real), sub: "admin" })).toString("base64url");
    expect(await orders.verify(`${head}.${body}.${sig}`)).toMatchObject({ ok: false });

    const none = Buffer.from(JSON.stringify({ alg: "none", kid: "ed-2026-12", typ: "JWT" })).toString("base64url");
    expect(await orders.verify(`${none}.${body}.`)).toMatchObject({ ok: false });
    expect(await orders.verify(`${none}.${body}`)).toMatchObject({ ok: false });
    expect(decodeProtectedHeader(real).alg).toBe("EdDSA");
  });

  it("cannot be supplied by the client: a spoofed header is replaced or dropped", async () => {
    const spoof = assertionOf((await call(gateway, `/orders/${unique()}`)).json<Verdict>());
    // On an asserting route the origin gets exactly one assertion: the edge's own.
    const res = await call(gateway, `/orders/${unique()}`, { [HEADER]: "forged.by.client", "x-origin-key": "client" });
    const verdict = res.json<Verdict>();
    expect(verdict.ok).toBe(true);
    expect(assertionOf(verdict)).not.toBe("forged.by.client");
    expect(verdict.raw.some(([name]) => name.toLowerCase() === "x-origin-key")).toBe(false);
    // On a route without assertions a replayed real one never reaches the origin.
    const pub = await gateway.raw(`/public/${unique()}`, { headers: { [HEADER]: spoof, "X_Tidegate_Assertion": spoof } });
    const seen = JSON.parse(pub.text) as Verdict;
    expect(seen).toMatchObject({ ok: false, error: "missing" });
    expect(seen.raw.some(([name]) => /^x[-_]tidegate[-_]assertion$/i.test(name))).toBe(false);
  });

  it("on an anonymous route: none by default, one without sub where asked for", async () => {
    const pub = (await gateway.fetch(`/public/${unique()}`)).json<Verdict>();
    expect(pub).toMatchObject({ ok: false, error: "missing" });
    const signed = await gateway.fetch(`/signed-public/${unique()}`);
    const verdict = signed.json<Verdict>();
    expect(verdict.ok).toBe(true);
    expect(verdict.claims?.sub).toBeUndefined();
    expect(verdict.claims?.scope).toBeUndefined();
    expect(verdict.claims?.aud).toBe(orders.url);
  });
});

describe("the origin secret", () => {
  it("is sent from the Worker secret on its route only", async () => {
    const res = await call(gateway, `/other/${unique()}`, { "x-origin-key": "client-guess" });
    const lines = res.json<Verdict>().raw.filter(([name]) => name.toLowerCase() === "x-origin-key");
    expect(lines).toEqual([["x-origin-key", originKey]]);
    const orders = (await call(gateway, `/orders/${unique()}`)).json<Verdict>();
    expect(orders.raw.some(([name]) => name.toLowerCase() === "x-origin-key")).toBe(false);
  });
});

describe("key rotation", () => {
  it("the first key signs: ES256 once the EC key is first, both still published", async () => {
    const rotated = await start({ secrets: { TIDEGATE_ASSERTION_KEYS: keysSecret(ecOld.jwk, edNew.jwk), ORIGIN_KEY: originKey } });
    const res = await call(rotated, `/orders/${unique()}`);
    const token = assertionOf(res.json<Verdict>());
    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", kid: "ec-2026-06", typ: "JWT" });
    // Verified against the keys the first gateway published (the origin's cached JWKS).
    expect(await orders.verify(token)).toMatchObject({ ok: true });
    const jwks = (await rotated.fetch(JWKS_PATH)).json<{ keys: { kid: string }[] }>();
    expect(jwks.keys.map((k) => k.kid)).toEqual(["ec-2026-06", "ed-2026-12"]);
    // ES256 signatures are raw r || s (64 bytes), as JWS wants.
    expect(Buffer.from(token.split(".")[2] ?? "", "base64url")).toHaveLength(64);
  }, 60_000);
});

describe("misconfiguration", () => {
  it("a missing secret is a 500 problem naming the binding", async () => {
    const gw = await start({ secrets: {} });
    const res = await call(gw, `/orders/${unique()}`);
    const body = expectProblem(res, 500, "missing-secret");
    expect(String(body.detail)).toContain("TIDEGATE_ASSERTION_KEYS");
    expectProblem(await gw.fetch(JWKS_PATH), 500, "missing-secret");
    // An anonymous route without assertions still works.
    expect((await gw.fetch(`/public/${unique()}`)).json<Verdict>().error).toBe("missing");
  }, 60_000);

  it("a missing origin secret is a 500 problem naming it, never another value", async () => {
    const gw = await start({ secrets: { TIDEGATE_ASSERTION_KEYS: keysSecret(edNew.jwk) } });
    const res = await call(gw, `/other/${unique()}`);
    const body = expectProblem(res, 500, "missing-secret");
    expect(String(body.detail)).toContain("ORIGIN_KEY");
    expect(gw.logs.join("\n")).toContain("ORIGIN_KEY");
  }, 60_000);

  it("a key whose d is not its x, or a public key only, is refused by index and member", async () => {
    const mismatched = { ...edKey("bad").jwk, x: edNew.jwk.x };
    const gw = await start({ secrets: { TIDEGATE_ASSERTION_KEYS: keysSecret(mismatched), ORIGIN_KEY: originKey } });
    const body = expectProblem(await call(gw, `/orders/${unique()}`), 500, "invalid-config");
    expect(String(body.detail)).toContain("keys[0]");
    expect(String(body.detail)).not.toContain(mismatched.d);
    const { d: _d, ...publicOnly } = edNew.jwk;
    const gw2 = await start({ secrets: { TIDEGATE_ASSERTION_KEYS: keysSecret(publicOnly as PrivateJwk), ORIGIN_KEY: originKey } });
    const body2 = expectProblem(await gw2.fetch(JWKS_PATH), 500, "invalid-config");
    expect(String(body2.detail)).toContain("keys[0].d");
  }, 90_000);

  it("without [assertion] the JWKS endpoint is 404", async () => {
    const gw = await start({ assertion: false, secrets: { ORIGIN_KEY: originKey } });
    expectProblem(await gw.fetch(JWKS_PATH), 404, "route-not-found");
    const res = await call(gw, `/orders/${unique()}`);
    expect(res.json<Verdict>()).toMatchObject({ ok: false, error: "missing" });
  }, 60_000);
});
