// API keys generated per run and the API_KEYS secret that holds only their
// SHA-256 hashes (the format tidegate_policy::auth::ApiKeyStore::from_json reads).
import { createHash, randomBytes } from "node:crypto";

export interface ApiKeys {
  /** Plain keys, by role in the specs. */
  acme1: string;
  /** A second key of consumer acme: rotation, both valid at once. */
  acme2: string;
  /** Consumer beta, whose per-key limit is overridden down to 2. */
  beta: string;
  /** Consumer gamma, without the feed:read scope. */
  noscope: string;
  disabled: string;
  expired: string;
  future: string;
  /** The API_KEYS secret. */
  json: string;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const newKey = () => `tg_test_${randomBytes(24).toString("base64url")}`;

export function makeApiKeys(): ApiKeys {
  const keys = {
    acme1: newKey(),
    acme2: newKey(),
    beta: newKey(),
    noscope: newKey(),
    disabled: newKey(),
    expired: newKey(),
    future: newKey(),
  };
  const now = Math.floor(Date.now() / 1000);
  const records = [
    { id: "key_acme_1", consumer: "acme", sha256: sha256(keys.acme1), tier: "gold", scopes: ["feed:read", "orders:read"] },
    { id: "key_acme_2", consumer: "acme", sha256: sha256(keys.acme2), tier: "gold", scopes: ["feed:read"] },
    { id: "key_beta", consumer: "beta", sha256: sha256(keys.beta), scopes: ["feed:read"], limits: { "per-key": 2 } },
    { id: "key_gamma", consumer: "gamma", sha256: sha256(keys.noscope), scopes: [] },
    { id: "key_disabled", consumer: "delta", sha256: sha256(keys.disabled), scopes: ["feed:read"], disabled: true },
    { id: "key_expired", consumer: "delta", sha256: sha256(keys.expired), scopes: ["feed:read"], expires_at: now - 3600 },
    { id: "key_future", consumer: "delta", sha256: sha256(keys.future), scopes: ["feed:read"], not_before: now + 3600 },
  ];
  return { ...keys, json: JSON.stringify(records) };
}
