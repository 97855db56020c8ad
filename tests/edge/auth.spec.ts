// JWT authentication against JWKS served by the test: valid RS256/ES256 and
// inline HS256 tokens, every classic rejection (expired, not yet valid, wrong
// aud/iss, bad signature, alg none, HS256 signed with the RSA public key),
// the JWKS cache (random kids cause no fetch storm; rotation is picked up
// after the cooldown; an unreachable JWKS is 503), and scopes (403).
import { describe, expect, it } from "vitest";
import { expectProblem, expectTraced } from "./support/expect";
import {
  DOWN_ISSUER,
  HMAC_ISSUER,
  ISSUER,
  JWKS_ROTATING,
  JWKS_STEADY,
  ROTATING_COOLDOWN_MS,
  ROTATING_ISSUER,
  poll,
  unique,
  useEdge,
} from "./support/harness";
import {
  claims,
  ecKey,
  hmacJwt,
  hsWithPublicKey,
  nowSecs,
  randomKid,
  rsaKey,
  signJwt,
  swapPayload,
  tamperSignature,
  unsignedJwt,
} from "./support/tokens";

const edge = useEdge();
/** Every token sent, to check none of them reaches a response or a log line. */
const sent: string[] = [];

async function withToken(token: string, path = `/jwt/${unique()}`) {
  sent.push(token);
  return edge.fetch(path, { headers: { authorization: `Bearer ${token}` } });
}

/** 401 invalid-token with an RFC 6750 challenge, and no trace of the token in the answer. */
async function expectRejected(token: string, path?: string) {
  const res = await withToken(token, path);
  expectProblem(res, 401, "invalid-token");
  const challenge = res.headers.get("www-authenticate") ?? "";
  expect(challenge).toMatch(/^Bearer realm="tidegate"/);
  expect(challenge).toContain('error="invalid_token"');
  expect(res.text).not.toContain(token);
  expect(challenge).not.toContain(token);
  return res;
}

describe("malformed Authorization (RFC 6750 invalid_request)", () => {
  /** 400 invalid-request with a Bearer challenge carrying error="invalid_request". */
  async function expectInvalidRequest(headers: Headers) {
    const res = await edge.fetch(`/jwt/${unique()}`, { headers: headers as never });
    expectProblem(res, 400, "invalid-request");
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer realm="tidegate"/);
    expect(challenge).toContain('error="invalid_request"');
    return res;
  }

  it("answers two Authorization headers with 400, even when both tokens are valid", async () => {
    const token = signJwt(edge.rsa, claims(ISSUER));
    const headers = new Headers();
    headers.append("authorization", `Bearer ${token}`);
    headers.append("authorization", `Bearer ${token}`);
    const res = await expectInvalidRequest(headers);
    expect(res.text).not.toContain(token);
  });

  it("answers a Bearer credential that is not a b64token, or has no token, with 400", async () => {
    for (const value of ["Bearer", "Bearer    ", "Bearer a b", "Bearer a=b", "Bearer ==", "Bearer a,b"]) {
      await expectInvalidRequest(new Headers({ authorization: value }));
    }
  });

  it("treats another scheme as no bearer token: 401 with a plain challenge", async () => {
    const res = await edge.fetch(`/jwt/${unique()}`, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    expectProblem(res, 401, "missing-credentials");
  });
});

describe("valid tokens", () => {
  it("accepts an RS256 token of a configured issuer", async () => {
    const res = await withToken(signJwt(edge.rsa, claims(ISSUER)));
    expect(res.status).toBe(200);
    expectTraced(res, ["auth", "origin"]);
  });

  it("accepts an ES256 token", async () => {
    const res = await withToken(signJwt(edge.ec, claims(ISSUER, { sub: "ec-user" })));
    expect(res.status).toBe(200);
    expect(res.json<{ headers: Record<string, string> }>().headers["x-tidegate-subject"]).toBe("ec-user");
  });

  it("accepts an audience list that contains the API's audience", async () => {
    const res = await withToken(signJwt(edge.rsa, claims(ISSUER, { aud: ["https://other.example", "https://api.tidegate.test"] })));
    expect(res.status).toBe(200);
  });

  it("accepts an HS256 token of the issuer with an inline shared key", async () => {
    const token = hmacJwt(Buffer.from(edge.hsSecret, "base64url"), claims(HMAC_ISSUER, { sub: "hs-user" }), { kid: "hs-1" });
    const res = await withToken(token);
    expect(res.status).toBe(200);
  });
});

describe("rejected tokens", () => {
  it("asks for credentials when there are none", async () => {
    const res = await edge.fetch(`/jwt/${unique()}`);
    expectProblem(res, 401, "missing-credentials");
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="tidegate"/);
  });

  it("refuses a bearer value that is not a JWT", async () => {
    await expectRejected("not-a-jwt");
    await expectRejected("a.b.c");
  });

  it("refuses an expired token", async () => {
    const now = nowSecs();
    await expectRejected(signJwt(edge.rsa, claims(ISSUER, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 })));
  });

  it("refuses a token that is not valid yet (nbf, iat in the future)", async () => {
    const now = nowSecs();
    await expectRejected(signJwt(edge.rsa, claims(ISSUER, { nbf: now + 3600, exp: now + 7200 })));
    await expectRejected(signJwt(edge.rsa, claims(ISSUER, { iat: now + 3600, nbf: undefined, exp: now + 7200 })));
  });

  it("refuses a token for another audience", async () => {
    await expectRejected(signJwt(edge.rsa, claims(ISSUER, { aud: "https://other-api.example" })));
  });

  it("refuses a token of an issuer that is not configured", async () => {
    await expectRejected(signJwt(edge.rsa, claims("https://evil.example/")));
  });

  it("refuses a token of an issuer the route does not accept", async () => {
    await expectRejected(signJwt(edge.rotating, claims(ROTATING_ISSUER)), `/steady-only/${unique()}`);
    const ok = await withToken(signJwt(edge.rsa, claims(ISSUER)), `/steady-only/${unique()}`);
    expect(ok.status).toBe(200);
  });

  it("refuses bad signatures: tampered, payload swapped, signed by another key with the same kid", async () => {
    const good = signJwt(edge.rsa, claims(ISSUER));
    await expectRejected(tamperSignature(good));
    await expectRejected(swapPayload(good, claims(ISSUER, { sub: "admin" })));
    const impostor = rsaKey("rsa-1");
    await expectRejected(signJwt(impostor, claims(ISSUER)));
    await expectRejected(signJwt(ecKey("ec-1"), claims(ISSUER)));
  });

  it("refuses unsigned tokens (alg none, any spelling)", async () => {
    for (const alg of ["none", "None", "NONE"]) {
      await expectRejected(unsignedJwt(claims(ISSUER), { alg, kid: "rsa-1" }));
    }
  });

  it("refuses HS256 tokens signed with the RSA public key (key confusion)", async () => {
    await expectRejected(hsWithPublicKey(edge.rsa, claims(ISSUER)));
    // The same with the JWK's JSON as the secret.
    await expectRejected(hmacJwt(JSON.stringify(edge.rsa.jwk), claims(ISSUER), { kid: "rsa-1" }));
    await expectRejected(hmacJwt(Buffer.from(String(edge.rsa.jwk.n), "base64url"), claims(ISSUER), { kid: "rsa-1" }));
  });

  it("refuses an algorithm the key is not for (ES256 header on the RSA kid)", async () => {
    await expectRejected(signJwt(edge.ec, claims(ISSUER), { kid: "rsa-1" }));
  });
});

describe("JWKS cache", () => {
  it("does not fetch the key set per request for unknown kids (cooldown + negative cache)", async () => {
    const warm = await withToken(signJwt(edge.rsa, claims(ISSUER)));
    expect(warm.status).toBe(200);
    const before = edge.jwks.fetches(JWKS_STEADY);
    expect(before).toBeGreaterThanOrEqual(1);
    // Concurrent and sequential requests with kids nobody published.
    const concurrent = await Promise.all(
      Array.from({ length: 20 }, () => withToken(signJwt(edge.rsa, claims(ISSUER), { kid: randomKid() }))),
    );
    for (const res of concurrent) expectProblem(res, 401, "invalid-token");
    for (let i = 0; i < 10; i++) await expectRejected(signJwt(edge.rsa, claims(ISSUER), { kid: randomKid() }));
    // refetch_cooldown is 1h for this issuer: at most one fetch, whatever the kids.
    expect(edge.jwks.fetches(JWKS_STEADY) - before).toBeLessThanOrEqual(1);
    // Known keys keep working without fetching.
    const after = edge.jwks.fetches(JWKS_STEADY);
    expect((await withToken(signJwt(edge.ec, claims(ISSUER)))).status).toBe(200);
    expect(edge.jwks.fetches(JWKS_STEADY)).toBe(after);
  });

  it("picks up a rotated key after the refetch cooldown, and drops the retired one", async () => {
    const oldToken = signJwt(edge.rotating, claims(ROTATING_ISSUER, { sub: "before-rotation" }));
    expect((await withToken(oldToken)).status).toBe(200);

    const next = rsaKey("rot-2");
    const newToken = signJwt(next, claims(ROTATING_ISSUER, { sub: "after-rotation" }));
    // Not published yet: unknown kid.
    await expectRejected(newToken);

    edge.jwks.setKeys(JWKS_ROTATING, [edge.rotating.jwk, next.jwk]);
    const before = edge.jwks.fetches(JWKS_ROTATING);
    const started = Date.now();
    // Cooldown and negative TTL are 1s: the new key must be accepted within a few seconds.
    const accepted = await poll(() => withToken(newToken), (r) => r.status === 200, { timeoutMs: 10_000, intervalMs: 100 });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.json<{ headers: Record<string, string> }>().headers["x-tidegate-subject"]).toBe("after-rotation");
    // Polling every 100ms must not mean fetching every 100ms: one fetch per cooldown at most.
    const elapsed = Date.now() - started;
    expect(edge.jwks.fetches(JWKS_ROTATING) - before).toBeLessThanOrEqual(Math.ceil(elapsed / ROTATING_COOLDOWN_MS) + 1);

    // Retire the old key: once the set is refreshed (ttl 1s) its tokens fail.
    edge.jwks.setKeys(JWKS_ROTATING, [next.jwk]);
    const refused = await poll(() => withToken(oldToken), (r) => r.status === 401, { timeoutMs: 10_000, intervalMs: 200 });
    expectProblem(refused, 401, "invalid-token");
    expect((await withToken(newToken)).status).toBe(200);
  });

  it("answers 503 when the issuer's keys cannot be fetched and none are cached", async () => {
    const res = await withToken(signJwt(edge.rsa, claims(DOWN_ISSUER), { kid: "down-1" }));
    expectProblem(res, 503, ["auth-unavailable", "jwks-unavailable"]);
  });
});

describe("scopes", () => {
  it("admits a token holding the route's scopes (scope or scp)", async () => {
    expect((await withToken(edge.token("reader", { scope: "orders:read other" }), `/scoped/${unique()}`)).status).toBe(200);
    expect((await withToken(edge.token("reader", { scp: ["orders:read"] }), `/scoped/${unique()}`)).status).toBe(200);
  });

  it("answers 403 insufficient-scope to a valid token without them", async () => {
    const res = await withToken(edge.token("no-scope", { scope: "orders:write" }), `/scoped/${unique()}`);
    expectProblem(res, 403, "insufficient-scope");
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer realm="tidegate"/);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="orders:read"');
  });
});

describe("logs", () => {
  it("never log a token", () => {
    expect(sent.length).toBeGreaterThan(10);
    const logs = edge.gateway.logs.join("\n");
    for (const token of sent) {
      // The signature part alone is unique to the token.
      const signature = token.split(".")[2] ?? token;
      if (signature.length >= 16) expect(logs).not.toContain(signature);
      expect(logs).not.toContain(token);
    }
  });
});
