// JWTs minted in the test process with node:crypto: RS256 and ES256 keys
// generated per run, their public JWKs for the JWKS server, and the broken
// tokens the auth spec throws at the gateway (alg none, HS256 signed with the
// RSA public key, bad signatures).
import { createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import type { PublicJwk } from "./jwks";

export type Alg = "RS256" | "ES256";

export interface SigningKey {
  kid: string;
  alg: Alg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as published in the JWKS (with kid, alg, use). */
  jwk: PublicJwk;
}

export function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** A fresh 2048-bit RSA key for RS256. */
export function rsaKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return withJwk(kid, "RS256", privateKey, publicKey);
}

/** A fresh P-256 key for ES256. */
export function ecKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return withJwk(kid, "ES256", privateKey, publicKey);
}

function withJwk(kid: string, alg: Alg, privateKey: KeyObject, publicKey: KeyObject): SigningKey {
  const jwk = { ...(publicKey.export({ format: "jwk" }) as Record<string, unknown>), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

export const nowSecs = (): number => Math.floor(Date.now() / 1000);

/** Claims of a token that passes every check of `issuer` (override any of them). */
export function claims(issuer: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSecs();
  return {
    iss: issuer,
    sub: "user-1",
    aud: "https://api.tidegate.test",
    iat: now,
    nbf: now,
    exp: now + 600,
    ...overrides,
  };
}

function encodeParts(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
}

/** A compact JWS signed with `key`; `header` adds to or overrides `{alg, typ, kid}`. */
export function signJwt(
  key: SigningKey,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const input = encodeParts({ alg: key.alg, typ: "JWT", kid: key.kid, ...header }, payload);
  const signature =
    key.alg === "RS256"
      ? sign("sha256", Buffer.from(input), key.privateKey)
      : sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${b64url(signature)}`;
}

/** HS256 with `secret` as the HMAC key. */
export function hmacJwt(
  secret: Buffer | string,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const input = encodeParts({ alg: "HS256", typ: "JWT", ...header }, payload);
  return `${input}.${b64url(createHmac("sha256", secret).update(input).digest())}`;
}

/** The key-confusion attack: HS256 "signed" with the RSA public key (PEM) as the HMAC secret. */
export function hsWithPublicKey(key: SigningKey, payload: Record<string, unknown>): string {
  const pem = key.publicKey.export({ format: "pem", type: "spki" });
  return hmacJwt(pem, payload, { kid: key.kid });
}

/** An unsigned token: `alg: none` and an empty signature. */
export function unsignedJwt(payload: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  return `${encodeParts({ alg: "none", typ: "JWT", ...header }, payload)}.`;
}

/** The token with its signature replaced by a valid-looking but wrong one of the same length. */
export function tamperSignature(token: string): string {
  const [h, p, s] = token.split(".");
  const bytes = Buffer.from(s ?? "", "base64url");
  bytes[0] = (bytes[0] ?? 0) ^ 0xff;
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
  return `${h}.${p}.${b64url(bytes)}`;
}

/** The token with its payload swapped for another (signature kept): must not verify. */
export function swapPayload(token: string, payload: Record<string, unknown>): string {
  const [h, , s] = token.split(".");
  return `${h}.${b64url(JSON.stringify(payload))}.${s}`;
}

/** A random kid nobody published. */
export function randomKid(): string {
  return `kid-${randomBytes(8).toString("hex")}`;
}

/** A 32-byte HMAC secret, base64url (what an inline `oct` JWK's `k` holds). */
export function hmacSecret(): string {
  return randomBytes(32).toString("base64url");
}
