// Credentials for the load: a pool of distinct pre-minted RS256 tokens (one
// subject per SUBJECTS, a unique jti each) and one API key with its record.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";

export const ISSUER = "https://idp.bench.test/";
export const AUDIENCE = "https://api.bench.test";
const KID = "bench-rsa-1";
const b64url = (d) => Buffer.from(d).toString("base64url");

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
export const jwk = { ...publicKey.export({ format: "jwk" }), kid: KID, alg: "RS256", use: "sig" };

/** One RS256 token for `sub`, valid for two hours, with a unique jti. */
export function rs256Token(sub) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: KID }));
  const payload = b64url(
    JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub, iat: now, nbf: now - 60, exp: now + 7200, jti: randomBytes(8).toString("hex") }),
  );
  const input = `${header}.${payload}`;
  return `${input}.${b64url(sign("sha256", Buffer.from(input), privateKey))}`;
}

/** `size` distinct tokens over `subjects` subjects: [{ token, subject }]. */
export function tokenPool(size, subjects) {
  return Array.from({ length: size }, (_, i) => {
    const subject = `user-${i % subjects}`;
    return { token: rs256Token(subject), subject };
  });
}

/** An API key and the API_KEYS secret (SHA-256 only) in the format both gateways read. */
export function apiKey() {
  const key = `tg_bench_${randomBytes(24).toString("base64url")}`;
  const sha256 = createHash("sha256").update(key).digest("hex");
  return { key, id: "key_bench", json: JSON.stringify([{ id: "key_bench", consumer: "bench", sha256, scopes: [] }]) };
}
