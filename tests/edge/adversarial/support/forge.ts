// Token forgery for the adversarial specs: compact JWS built from raw JSON
// text (so duplicate members survive), signed with any key and algorithm,
// and a table runner that checks every forged token is refused the same way.
import { createHmac, sign, type KeyObject } from "node:crypto";
import { expect } from "vitest";
import { expectProblem } from "../../support/expect";
import type { Edge } from "../../support/harness";
import { b64url, type SigningKey } from "../../support/tokens";

/** `header.payload` from raw JSON text (nothing is re-serialised). */
export function signingInput(headerJson: string, payloadJson: string): string {
  return `${b64url(headerJson)}.${b64url(payloadJson)}`;
}

/** RS256 / PS256 / ES256 signature of `input` with `key`'s private key. */
export function signWith(alg: "RS256" | "PS256" | "ES256", key: KeyObject, input: string): string {
  const data = Buffer.from(input);
  if (alg === "ES256") return b64url(sign("sha256", data, { key, dsaEncoding: "ieee-p1363" }));
  if (alg === "PS256") return b64url(sign("sha256", data, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }));
  return b64url(sign("sha256", data, key));
}

/** A token from raw header and payload JSON, signed by `key` with its own algorithm. */
export function rawSigned(key: SigningKey, headerJson: string, payloadJson: string): string {
  const input = signingInput(headerJson, payloadJson);
  return `${input}.${signWith(key.alg, key.privateKey, input)}`;
}

/** A token from raw JSON signed with HMAC-SHA256 under `secret`. */
export function rawHmac(secret: Buffer | string, headerJson: string, payloadJson: string): string {
  const input = signingInput(headerJson, payloadJson);
  return `${input}.${b64url(createHmac("sha256", secret).update(input).digest())}`;
}

/** One forged credential and the refusal it must get. */
export interface Case {
  name: string;
  token: string;
  /** Status expected (401 unless told). */
  status?: number;
  /** problem type slug (invalid-token unless told). */
  slug?: string;
}

/**
 * Sends every case to its own path of `prefix` and checks: the expected
 * problem+json, an RFC 6750 challenge on 401, no trace of the token in the
 * answer, and that the origin never saw the request. Returns the count.
 */
export async function expectAllRefused(edge: Edge, prefix: string, cases: Case[]): Promise<number> {
  const replies = await Promise.all(
    cases.map(async (c, i) => {
      const path = `${prefix}/case-${i}`;
      return { c, path, res: await edge.fetch(path, { headers: { authorization: `Bearer ${c.token}` } }) };
    }),
  );
  for (const { c, path, res } of replies) {
    const status = c.status ?? 401;
    expect(res.status, `${c.name}: ${res.text.slice(0, 300)}`).toBe(status);
    expectProblem(res, status, c.slug ?? "invalid-token");
    if (status === 401) expect(res.headers.get("www-authenticate") ?? "", c.name).toMatch(/^Bearer realm="tidegate"/);
    if (c.token.length > 8) expect(res.text, c.name).not.toContain(c.token);
    expect(edge.origin.hits(path), `${c.name} reached the origin`).toBe(0);
  }
  return replies.length;
}
