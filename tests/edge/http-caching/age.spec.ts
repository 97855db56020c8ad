// Age (RFC 9111 §4.2.3, §5.1): the current age of an entry is
// max(apparent_age, upstream Age + response_delay) + resident_time, and every
// response served from the cache carries it, in whole seconds. Routes:
// /rfc/origin (no stale windows), /rfc/stale (rule swr/sie 1h).
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { sleep, unique } from "../support/harness";
import { ageOf, httpDate, servedHit, storedHit, timeline, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

describe.concurrent("Age on responses from the cache (RFC 9111 §4.2.3, §5.1)", () => {
  it("§5.1: a HIT carries Age as a non-negative integer", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
    await edge.fetch(path);
    const hit = await storedHit(edge, path);
    expect(hit.headers.get("age")).toMatch(/^\d+$/);
    expect(ageOf(hit)).toBeLessThan(2);
  });

  it("§4.2.3: an upstream Age counts: Age: 30 with max-age=60 is served with Age ≥ 30", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", age: "30" } });
    await edge.fetch(path);
    const hit = await storedHit(edge, path);
    expect(ageOf(hit)).toBeGreaterThanOrEqual(30);
    expect(ageOf(hit)).toBeLessThan(35);
  });

  it("§4.2.3 / §4.2: an upstream Age shortens freshness: Age: 2 with max-age=4 is stale 2.6 s later", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=4", age: "2" } });
    // Fresh until ~2 s after the MISS; a cache ignoring Age would keep it for 4 s.
    await timeline(edge, path, [[0, "fresh"], [2_600, "stale"]]);
  });

  it("§4.2.3: an upstream Age at or past max-age is stale at once (Age: 120, max-age=60)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60", age: "120" } });
    await timeline(edge, path, [[0, "stale"]]);
  });

  it("§4.2.3: resident time adds up: Age grows by the time the entry was held", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" } });
    await edge.fetch(path);
    const first = await storedHit(edge, path);
    await sleep(2_100);
    const second = await edge.fetch(path);
    expect(cacheStatus(second)).toBe("HIT");
    expect(servedHit(second)).toBe(servedHit(first));
    expect(ageOf(second)).toBeGreaterThanOrEqual(ageOf(first) + 2);
    expect(ageOf(second)).toBeLessThan(ageOf(first) + 5);
  });

  it("§4.2.3: a Date in the past is apparent age (Date 10 s ago, max-age=60: Age ≥ 10)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, dynamicHeaders: () => ({ date: httpDate(-10) }) });
    await edge.fetch(path);
    const hit = await storedHit(edge, path);
    expect(ageOf(hit)).toBeGreaterThanOrEqual(10);
    expect(ageOf(hit)).toBeLessThan(15);
  });

  it("RFC 9110 §6.6.1 / RFC 9111 §4: a HIT carries the origin's Date, not the time it was served (Age says how old it is)", async () => {
    const path = `/rfc/origin/${unique()}`;
    let sent = "";
    edge.origin.respond(path, {
      headers: { "cache-control": "max-age=60" },
      dynamicHeaders: () => ({ date: (sent = httpDate(-10)) }),
    });
    const miss = await edge.fetch(path);
    expect(miss.headers.get("date")).toBe(sent);
    const hit = await storedHit(edge, path);
    expect(hit.headers.get("date")).toBe(sent);
  });

  it("§4.2.3: apparent age past the lifetime is stale at once (Date 30 s ago, max-age=20)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=20" }, dynamicHeaders: () => ({ date: httpDate(-30) }) });
    await timeline(edge, path, [[0, "stale"]]);
  });

  it("§4.2.3: a Date in the future is apparent age 0, never negative (Date 60 s ahead)", async () => {
    const path = `/rfc/origin/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=60" }, dynamicHeaders: () => ({ date: httpDate(60) }) });
    await edge.fetch(path);
    const hit = await storedHit(edge, path);
    expect(hit.headers.get("age")).toMatch(/^\d+$/);
    expect(ageOf(hit)).toBeLessThan(2);
  });

  it("§4.2.3 / RFC 5861 §3: a STALE answer carries its Age past the lifetime too", async () => {
    const path = `/rfc/stale/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=1" } });
    const [, , stale] = await timeline(edge, path, [[0, "fresh"], [2_100, "stale"]]);
    expect(cacheStatus(stale!)).toBe("STALE");
    expect(ageOf(stale!)).toBeGreaterThanOrEqual(2);
  });
});
