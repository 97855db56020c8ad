// API keys an attacker would try: the valid key with 0…39 of its 40
// characters kept, case or encoding variants, the stored SHA-256 itself,
// several keys in one header. Tests never assert timings (the constant-time
// compare is measured by tests/reliability/api-key-timing.mjs, figures in
// RELIABILITY.md); here we assert that every wrong key is refused
// *identically*: same status, same body but for the request id, same
// headers but for the per-request ones. Any difference would be an oracle.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { expectProblem } from "../support/expect";
import type { Reply } from "../support/gateway";
import { unique, useEdge } from "../support/harness";
import { pool } from "./support/load";

const edge = useEdge();
/** Headers that legitimately differ per request. */
const PER_REQUEST = new Set(["x-request-id", "server-timing", "date", "content-length"]);

const withKey = (key: string) => edge.fetch(`/keys/${unique()}`, { headers: { "x-api-key": key } });

/** What a client can observe of a refusal, minus what differs per request. */
function observable(res: Reply) {
  const body = res.json();
  delete body.request_id;
  const headers = [...res.headers.entries()].filter(([n]) => !PER_REQUEST.has(n.toLowerCase())).sort();
  return { status: res.status, body, headers };
}

/** `valid` with its first `n` characters kept and the rest replaced (same length). */
function sharingPrefix(valid: string, n: number): string {
  const rest = [...valid.slice(n)].map((c) => (c === "A" ? "B" : "A")).join("");
  return valid.slice(0, n) + rest;
}

describe("wrong API keys are refused identically", () => {
  it("keys sharing 0 … 39 leading characters with a valid key, and other near misses", async () => {
    const valid = edge.apiKeys.acme1;
    expect(valid.length).toBe(40);
    const candidates: [string, string][] = [];
    for (let n = 0; n < valid.length; n++) candidates.push([`shares ${n} chars`, sharingPrefix(valid, n)]);
    candidates.push(
      ["valid key upper-cased", valid.toUpperCase()],
      ["valid key + 1 char", `${valid}x`],
      ["valid key - 1 char", valid.slice(0, -1)],
      ["valid key doubled", valid + valid],
      ["valid key percent-encoded", encodeURIComponent(valid).replace(/_/g, "%5F")],
      ["valid key base64", Buffer.from(valid).toString("base64")],
      ["stored SHA-256 hex of the valid key", createHash("sha256").update(valid).digest("hex")],
      ["stored SHA-256 hex upper-cased", createHash("sha256").update(valid).digest("hex").toUpperCase()],
      ["another key's id", "key_acme_1"],
      ["the consumer name", "acme"],
      ["'Bearer ' + valid", `Bearer ${valid}`],
      ["valid, invalid (two values)", `${valid}, tg_test_nope`],
      ["invalid, valid (two values)", `tg_test_nope, ${valid}`],
      // Header values are bytes: the UTF-8 of a full-width "t" sent as Latin-1.
      ["unicode look-alike (UTF-8 bytes)", Buffer.from(valid.replace("t", "ｔ"), "utf8").toString("latin1")],
      ["single character", "k"],
      ["256 characters", "k".repeat(256)],
      ["257 characters", "k".repeat(257)],
      ["8 KiB", "k".repeat(8 * 1024)],
      ["admin key", edge.adminKey],
    );
    const replies = await pool(candidates.length, 16, (i) => withKey(candidates[i]![1]));
    const reference = observable(replies[0]!);
    for (const [i, res] of replies.entries()) {
      const [name, key] = candidates[i]!;
      expectProblem(res, 401, "invalid-api-key");
      expect(res.text, name).not.toContain(key.slice(0, 12) === valid.slice(0, 12) ? valid : "\u0000");
      const seen = observable(res);
      // The detail names a length bound for empty/over-long keys: a length is no secret.
      if (key.length > 0 && key.length <= 256) expect(seen, name).toEqual(reference);
      else expect(seen.status, name).toBe(reference.status);
    }
    expect(edge.origin.hits("/keys")).toBe(0);
    console.info(`[figures] api-key near misses: ${candidates.length} keys, all refused identically`);
  });

  it("refuses a valid key sent twice in two header lines (combined value)", async () => {
    const valid = edge.apiKeys.acme1;
    const res = await edge.gateway.raw(`/keys/${unique()}`, { headers: { "x-api-key": [valid, valid] } });
    expectProblem(res, 401, "invalid-api-key");
  });

  it("the valid key itself still works after the probes (no lockout, no state)", async () => {
    expect((await withKey(edge.apiKeys.acme1)).status).toBe(200);
  });
});
