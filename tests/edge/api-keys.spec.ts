// API keys from the API_KEYS secret (hashes only): valid, invalid, rotated
// (two keys of one consumer), disabled / expired / not yet valid, scopes,
// routes accepting either credential, and per-consumer limit overrides.
import { describe, expect, it } from "vitest";
import { echoOf, expectProblem, expectTraced, headerValues } from "./support/expect";
import { Gateway } from "./support/gateway";
import { unique, useEdge } from "./support/harness";

const edge = useEdge();

const withKey = (key: string, path = `/keys/${unique()}`) => edge.fetch(path, { headers: { "x-api-key": key } });

async function expectInvalidKey(key: string) {
  const res = await withKey(key);
  expectProblem(res, 401, "invalid-api-key");
  const challenge = res.headers.get("www-authenticate") ?? "";
  expect(challenge).toMatch(/^ApiKey realm="tidegate"/);
  expect(challenge).toContain('error="invalid_key"');
  expect(res.text).not.toContain(key);
  expect(challenge).not.toContain(key);
}

describe("API keys", () => {
  it("accepts a configured key and tells the origin who called", async () => {
    const res = await withKey(edge.apiKeys.acme1);
    expect(res.status).toBe(200);
    expectTraced(res, ["auth", "origin"]);
    const echo = echoOf(res);
    expect(headerValues(echo, "x-tidegate-subject")).toEqual(["acme"]);
    expect(headerValues(echo, "x-tidegate-key-id")).toEqual(["key_acme_1"]);
  });

  it("accepts both keys of a consumer during rotation, as one consumer", async () => {
    const first = echoOf(await withKey(edge.apiKeys.acme1));
    const second = echoOf(await withKey(edge.apiKeys.acme2));
    expect(headerValues(first, "x-tidegate-subject")).toEqual(["acme"]);
    expect(headerValues(second, "x-tidegate-subject")).toEqual(["acme"]);
    expect(headerValues(second, "x-tidegate-key-id")).toEqual(["key_acme_2"]);
  });

  it("refuses the old key once rotation retires it, and keeps the new one", async () => {
    const records = (JSON.parse(edge.apiKeys.json) as { id: string }[]).filter((r) => r.id !== "key_acme_1");
    const rotated = await Gateway.start({ config: edge.config, apiKeys: JSON.stringify(records) });
    try {
      const old = await rotated.fetch(`/keys/${unique()}`, { headers: { "x-api-key": edge.apiKeys.acme1 } });
      expectProblem(old, 401, "invalid-api-key");
      const current = await rotated.fetch(`/keys/${unique()}`, { headers: { "x-api-key": edge.apiKeys.acme2 } });
      expect(current.status).toBe(200);
      expect(headerValues(echoOf(current), "x-tidegate-subject")).toEqual(["acme"]);
    } finally {
      await rotated.dispose();
    }
  }, 60_000);

  it("asks for a key when there is none", async () => {
    const res = await edge.fetch(`/keys/${unique()}`);
    expectProblem(res, 401, "missing-credentials");
    expect(res.headers.get("www-authenticate") ?? "").toMatch(/^ApiKey realm="tidegate"/);
  });

  it("does not take a bearer token on an API-key-only route", async () => {
    const res = await edge.fetch(`/keys/${unique()}`, { headers: edge.bearer() });
    expectProblem(res, 401, "missing-credentials");
  });

  it("refuses unknown, malformed and over-long keys", async () => {
    await expectInvalidKey(`tg_test_${"x".repeat(32)}`);
    await expectInvalidKey(edge.apiKeys.acme1.slice(0, -1));
    await expectInvalidKey("k".repeat(300));
  });

  it("refuses disabled, expired and not-yet-valid keys", async () => {
    await expectInvalidKey(edge.apiKeys.disabled);
    await expectInvalidKey(edge.apiKeys.expired);
    await expectInvalidKey(edge.apiKeys.future);
  });

  it("gives unknown, disabled, expired and not-yet-valid keys the same answer (the reason only in the log)", async () => {
    const answers = [];
    for (const key of [`tg_test_${"y".repeat(32)}`, edge.apiKeys.disabled, edge.apiKeys.expired, edge.apiKeys.future]) {
      const res = await withKey(key);
      const { request_id: _id, ...body } = res.json<Record<string, unknown>>();
      answers.push({ status: res.status, body, challenge: res.headers.get("www-authenticate") });
    }
    for (const answer of answers.slice(1)) expect(answer).toEqual(answers[0]);
  });

  it("trims only spaces and tabs around a key", async () => {
    expect((await withKey(` \t${edge.apiKeys.acme1}\t `)).status).toBe(200);
    // U+00A0 (a 0xA0 byte on the wire) is part of the key, not whitespace to forgive.
    await expectInvalidKey(`${edge.apiKeys.acme1}\u00a0`);
  });

  it("answers 403 insufficient-scope to a key without the route's scope", async () => {
    const res = await withKey(edge.apiKeys.noscope);
    expectProblem(res, 403, "insufficient-scope");
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^ApiKey realm="tidegate"/);
    expect(challenge).toContain('error="insufficient_scope"');
  });

  it("checks scopes per key on a route that takes either credential", async () => {
    expect((await withKey(edge.apiKeys.acme1, `/scoped/${unique()}`)).status).toBe(200);
    expectProblem(await withKey(edge.apiKeys.acme2, `/scoped/${unique()}`), 403, "insufficient-scope");
    expect((await edge.fetch(`/scoped/${unique()}`, { headers: edge.bearer("u", { scope: "orders:read" }) })).status).toBe(200);
  });

  it("applies the key record's limit override (per-key: 2 for beta)", async () => {
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 3; i++) {
      last = await withKey(edge.apiKeys.beta);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expectProblem(last!, 429, "rate-limited");
    expect(last!.headers.get("ratelimit-policy")).toMatch(/"per-key";q=2;w=3600/);
    // Other consumers keep the configured quota.
    const acme = await withKey(edge.apiKeys.acme1);
    expect(acme.status).toBe(200);
    expect(acme.headers.get("ratelimit-policy")).toMatch(/"per-key";q=100;w=3600/);
  });

  it("never logs a key", () => {
    const logs = edge.gateway.logs.join("\n");
    for (const [name, key] of Object.entries(edge.apiKeys)) {
      if (name !== "json") expect(logs).not.toContain(key);
    }
  });
});
