// Every signature algorithm the Worker checks with WebCrypto (crypto.subtle in
// workerd): RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA (Ed25519)
// tokens of algorithms-idp (HS256 is in auth.spec.ts), each accepted when
// signed right and refused when tampered with or signed in another scheme
// (PKCS#1 v1.5 for PS256, DER instead of raw r||s for ECDSA); and a key
// rotated under the same kid, which must not verify with the imported old key.
import { constants, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { expectProblem } from "./support/expect";
import { JWKS_ROTATING, ROTATING_ISSUER, poll, unique, useEdge } from "./support/harness";
import { b64url, claims, rsaKey, signJwt, tamperSignature } from "./support/tokens";

const ISSUER = "https://algorithms.tidegate.test/";
const JWKS_PATH = "/algorithms/jwks.json";

type Family = "rsa" | "p256" | "p384" | "ed25519";
interface Case {
  alg: string;
  family: Family;
  /** node:crypto's digest name, or null for Ed25519. */
  hash: string | null;
  pss?: number;
}

const CASES: Case[] = [
  { alg: "RS256", family: "rsa", hash: "sha256" },
  { alg: "RS384", family: "rsa", hash: "sha384" },
  { alg: "RS512", family: "rsa", hash: "sha512" },
  { alg: "PS256", family: "rsa", hash: "sha256", pss: 32 },
  { alg: "PS384", family: "rsa", hash: "sha384", pss: 48 },
  { alg: "PS512", family: "rsa", hash: "sha512", pss: 64 },
  { alg: "ES256", family: "p256", hash: "sha256" },
  { alg: "ES384", family: "p384", hash: "sha384" },
  { alg: "EdDSA", family: "ed25519", hash: null },
];

function generate(family: Family) {
  switch (family) {
    case "rsa":
      return generateKeyPairSync("rsa", { modulusLength: 2048 });
    case "p256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" });
    case "p384":
      return generateKeyPairSync("ec", { namedCurve: "P-384" });
    case "ed25519":
      return generateKeyPairSync("ed25519");
  }
}

/** One key per family, kid = family name; the published JWKs carry no `alg`, so RSA keys serve RS* and PS*. */
const keys = new Map<Family, { privateKey: KeyObject; jwk: Record<string, unknown> & { kid: string } }>();
for (const family of ["rsa", "p256", "p384", "ed25519"] as const) {
  const { privateKey, publicKey } = generate(family);
  keys.set(family, { privateKey, jwk: { ...(publicKey.export({ format: "jwk" }) as Record<string, unknown>), kid: family, use: "sig" } });
}

/** A compact JWS of `c`'s algorithm; `der` signs ECDSA in DER instead of JWS's raw r||s, `pkcs1` RSA without PSS. */
function mint(c: Case, payload: Record<string, unknown>, opts: { der?: boolean; pkcs1?: boolean } = {}): string {
  const key = keys.get(c.family);
  if (!key) throw new Error(`no key for ${c.family}`);
  const input = `${b64url(JSON.stringify({ alg: c.alg, typ: "JWT", kid: c.family }))}.${b64url(JSON.stringify(payload))}`;
  const data = Buffer.from(input);
  let signature: Buffer;
  if (c.family === "ed25519") {
    signature = sign(null, data, key.privateKey);
  } else if (c.family === "rsa") {
    signature =
      c.pss && !opts.pkcs1
        ? sign(c.hash, data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: c.pss })
        : sign(c.hash, data, key.privateKey);
  } else {
    signature = sign(c.hash, data, { key: key.privateKey, dsaEncoding: opts.der ? "der" : "ieee-p1363" });
  }
  return `${input}.${b64url(signature)}`;
}

const edge = useEdge();

beforeAll(() => {
  edge.jwks.setKeys(JWKS_PATH, [...keys.values()].map((k) => k.jwk));
});

async function withToken(token: string) {
  return edge.fetch(`/jwt/${unique()}`, { headers: { authorization: `Bearer ${token}` } });
}

async function expectRejected(token: string) {
  const res = await withToken(token);
  expectProblem(res, 401, "invalid-token");
  expect(res.headers.get("www-authenticate") ?? "").toContain('error="invalid_token"');
  expect(res.text).not.toContain(token);
}

describe.each(CASES)("$alg", (c) => {
  it("accepts a token signed right (twice: the imported key is reused)", async () => {
    for (const sub of [`${c.alg}-user`, `${c.alg}-again`]) {
      const res = await withToken(mint(c, claims(ISSUER, { sub })));
      expect(res.status, res.text).toBe(200);
      expect(res.json<{ headers: Record<string, string> }>().headers["x-tidegate-subject"]).toBe(sub);
    }
  });

  it("refuses a tampered signature and a swapped payload", async () => {
    const token = mint(c, claims(ISSUER));
    await expectRejected(tamperSignature(token));
    const [h, , s] = mint(c, claims(ISSUER, { sub: "victim" })).split(".");
    const [, p] = mint(c, claims(ISSUER, { sub: "mallory" })).split(".");
    await expectRejected(`${h}.${p}.${s}`);
  });

  it("refuses an expired token with a valid signature", async () => {
    await expectRejected(mint(c, claims(ISSUER, { exp: Math.floor(Date.now() / 1000) - 3600 })));
  });

  if (c.pss) {
    it("refuses a PKCS#1 v1.5 signature under a PS header", async () => {
      await expectRejected(mint(c, claims(ISSUER), { pkcs1: true }));
    });
  }
  if (c.family === "p256" || c.family === "p384") {
    it("refuses a DER-encoded ECDSA signature (JWS wants raw r||s)", async () => {
      await expectRejected(mint(c, claims(ISSUER), { der: true }));
    });
  }
});

describe("rotation under the same kid", () => {
  it("verifies with the new key once it is published, and never again with the old one", async () => {
    const oldToken = signJwt(edge.rotating, claims(ROTATING_ISSUER, { sub: "old-key" }));
    expect((await withToken(oldToken)).status).toBe(200);
    // The same kid, another key: the CryptoKey imported for the old one must not be used.
    const next = rsaKey(edge.rotating.kid);
    const newToken = signJwt(next, claims(ROTATING_ISSUER, { sub: "new-key" }));
    edge.jwks.setKeys(JWKS_ROTATING, [next.jwk]);
    const accepted = await poll(() => withToken(newToken), (r) => r.status === 200, { timeoutMs: 10_000, intervalMs: 200 });
    expect(accepted.status, accepted.text).toBe(200);
    await expectRejected(oldToken);
  });
});
