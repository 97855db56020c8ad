// Vary (RFC 9111 §4.1): a response stored with `Vary: <fields>` may only
// serve a later request whose varied fields match those of the request that
// stored it; `Vary: *` always fails to match. Routes /rfc/origin (no
// vary_headers: Tidegate does not store a Vary on an unkeyed field, which the
// RFC allows) and /rfc/vary (vary_headers = ["accept-language"]).
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { unique } from "../support/harness";
import { afterStore, servedHit, storedHit, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

describe.concurrent("the origin's Vary (RFC 9111 §4.1)", () => {
  it("§4.1: an answer for Accept-Language: en never answers Accept-Language: fr (route without vary_headers)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", vary: "Accept-Language" } });
    expect((await edge.fetch(path, { headers: { "accept-language": "en" } })).status).toBe(200);
    const fr = await afterStore(edge, path, { headers: { "accept-language": "fr" } });
    expect(cacheStatus(fr)).not.toBe("HIT");
    expect(fr.json<{ headers: Record<string, string> }>().headers["accept-language"]).toBe("fr");
  });

  it("§4.1: an entry for Accept-Language: en never answers Accept-Language: fr (route keyed on it)", async () => {
    const path = `/rfc/vary/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", vary: "Accept-Language" } });
    const en = { headers: { "accept-language": "en" } };
    const fr = { headers: { "accept-language": "fr" } };
    expect(cacheStatus(await edge.fetch(path, en))).toBe("MISS");
    const enHit = await storedHit(edge, path, en);
    expect(enHit.json<{ headers: Record<string, string> }>().headers["accept-language"]).toBe("en");
    const frRes = await edge.fetch(path, fr);
    expect(frRes.status).toBe(200);
    expect(cacheStatus(frRes)).not.toBe("HIT");
    expect(frRes.json<{ headers: Record<string, string> }>().headers["accept-language"]).toBe("fr");
    expect(servedHit(frRes)).toBe(edge.origin.hits(path));
  });

  it("§4.1: the same varied field value matches (Accept-Language: en twice → HIT)", async () => {
    const path = `/rfc/vary/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", vary: "accept-language" } });
    const en = { headers: { "accept-language": "en" } };
    await edge.fetch(path, en);
    const hit = await storedHit(edge, path, en);
    expect(servedHit(hit)).toBe(edge.origin.hits(path));
  });

  it("§4.1: Vary: * never matches", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", vary: "*" } });
    await edge.fetch(path);
    const second = await afterStore(edge, path);
    expect(cacheStatus(second)).not.toBe("HIT");
    expect(edge.origin.hits(path)).toBe(2);
  });
});
