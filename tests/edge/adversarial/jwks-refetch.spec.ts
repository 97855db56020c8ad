// Tokens with random kids, sent in bulk, to force JWKS refetches: the fetch
// slot (one attempt per refetch_cooldown) and the negative cache must hold
// the line. We count the fetches the JWKS server actually received.
// test-idp: cooldown and negative TTL 1 h → at most 1 fetch for the file.
// rotating-idp: cooldown and negative TTL 1 s → at most one fetch per
// started second of the run, however many kids (more than the negative
// cache's 1,024 entries) we throw at it.
import { describe, expect, it } from "vitest";
import { expectProblem } from "../support/expect";
import { ISSUER, JWKS_ROTATING, JWKS_STEADY, ROTATING_COOLDOWN_MS, ROTATING_ISSUER, unique, useEdge } from "../support/harness";
import { b64url, claims, randomKid, signJwt } from "../support/tokens";
import { pool, tally } from "./support/load";

const edge = useEdge();

const send = (token: string) => edge.fetch(`/jwt/${unique()}`, { headers: { authorization: `Bearer ${token}` } });

/** Statuses of `count` requests with fresh random kids, `concurrency` at a time. */
async function randomKidStorm(issuer: string, count: number, concurrency: number) {
  const key = issuer === ISSUER ? edge.rsa : edge.rotating;
  // One signed token, its header re-written per request: an unknown kid is
  // refused before the signature matters, and signing 1,000 RSA tokens
  // would cost more than sending them.
  const [, payload, signature] = signJwt(key, claims(issuer)).split(".");
  const withKid = () => `${b64url(JSON.stringify({ alg: key.alg, typ: "JWT", kid: randomKid() }))}.${payload}.${signature}`;
  const replies = await pool(count, concurrency, () => send(withKid()));
  for (const res of replies.slice(0, 20)) expectProblem(res, 401, "invalid-token");
  return tally(replies.map((r) => r.status));
}

describe("random kids against a long cooldown (test-idp)", () => {
  it("400 random kids (50 in flight) cause at most one JWKS fetch; known keys keep working", async () => {
    expect((await send(edge.token())).status).toBe(200);
    const before = edge.jwks.fetches(JWKS_STEADY);
    const statuses = await randomKidStorm(ISSUER, 400, 50);
    expect([...statuses.entries()]).toEqual([[401, 400]]);
    expect(edge.jwks.fetches(JWKS_STEADY) - before).toBeLessThanOrEqual(1);
    expect((await send(edge.token())).status).toBe(200);
    console.info(`[figures] jwks-refetch steady: 400 random kids, ${edge.jwks.fetches(JWKS_STEADY) - before} fetch(es)`);
  }, 60_000);

  it("a valid token arriving in the middle of a random-kid storm is accepted", async () => {
    const storm = randomKidStorm(ISSUER, 100, 20);
    const valid = await Promise.all(Array.from({ length: 20 }, (_, i) => send(edge.token(`mid-${i}`))));
    expect(valid.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect([...(await storm).entries()]).toEqual([[401, 100]]);
  }, 60_000);
});

describe("random kids against a 1 s cooldown (rotating-idp)", () => {
  it("1,100 random kids over several seconds: fetches bounded by the cooldown, not by the kids", async () => {
    expect((await send(signJwt(edge.rotating, claims(ROTATING_ISSUER)))).status).toBe(200);
    const before = edge.jwks.fetches(JWKS_ROTATING);
    const started = Date.now();
    const statuses = await randomKidStorm(ROTATING_ISSUER, 1_100, 50);
    const elapsed = Date.now() - started;
    const fetches = edge.jwks.fetches(JWKS_ROTATING) - before;
    expect([...statuses.entries()]).toEqual([[401, 1_100]]);
    const bound = Math.ceil(elapsed / ROTATING_COOLDOWN_MS) + 1;
    expect(fetches).toBeLessThanOrEqual(bound);
    console.info(`[figures] jwks-refetch rotating: 1100 random kids in ${elapsed} ms, ${fetches} fetch(es), bound ${bound}`);
    // The real key is unaffected by 1,100 negative entries (cap 1,024).
    expect((await send(signJwt(edge.rotating, claims(ROTATING_ISSUER)))).status).toBe(200);
  }, 60_000);

  it("the same unknown kid repeated 200 times costs at most one fetch per cooldown", async () => {
    const kid = randomKid();
    const token = signJwt(edge.rotating, claims(ROTATING_ISSUER), { kid });
    const before = edge.jwks.fetches(JWKS_ROTATING);
    const started = Date.now();
    const replies = await pool(200, 50, () => send(token));
    const elapsed = Date.now() - started;
    expect([...tally(replies.map((r) => r.status)).entries()]).toEqual([[401, 200]]);
    expect(edge.jwks.fetches(JWKS_ROTATING) - before).toBeLessThanOrEqual(Math.ceil(elapsed / ROTATING_COOLDOWN_MS) + 1);
  }, 60_000);
});

describe("tokens that must not fetch at all", () => {
  it("unknown issuers, malformed tokens and over-long kids never reach the JWKS server", async () => {
    const steady = edge.jwks.fetches(JWKS_STEADY);
    const rotating = edge.jwks.fetches(JWKS_ROTATING);
    const tokens = [
      ...Array.from({ length: 50 }, () => signJwt(edge.rsa, claims("https://evil.example/"), { kid: randomKid() })),
      ...Array.from({ length: 50 }, () => signJwt(edge.rsa, claims(ISSUER), { kid: "k".repeat(300) + randomKid() })),
      ...Array.from({ length: 50 }, () => `${randomKid()}.${randomKid()}.${randomKid()}`),
    ];
    const replies = await pool(tokens.length, 50, (i) => send(tokens[i]!));
    expect([...tally(replies.map((r) => r.status)).entries()]).toEqual([[401, 150]]);
    expect(edge.jwks.fetches(JWKS_STEADY)).toBe(steady);
    expect(edge.jwks.fetches(JWKS_ROTATING)).toBe(rotating);
  }, 60_000);
});
