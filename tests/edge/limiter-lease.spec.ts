// Limiter leases (`[routes.rate_limit] lease = "auto"`, the default): a hot
// key is admitted mostly from a slice of its budget the isolate holds, with
// far fewer Durable Object calls than requests, and never more than the
// limit at any concurrency; `lease = "off"` makes one call per request;
// several limits give back what one refused; shadow mode is unchanged. The
// calls are counted from each request's log line (`limiter_calls`) and the
// isolate's `GET {admin}/stats/limiter`. Routes: `/lease/*` in gateway.test.toml.
import { describe, expect, it } from "vitest";
import type { Reply } from "./support/gateway";
import { uniqueIp, useEdge } from "./support/harness";


const edge = useEdge();

const admin = () => ({ authorization: `Bearer ${edge.adminKey}` });

/** `total` requests from `ip` to `path`, `concurrency` at a time. */
async function load(path: string, ip: string, total: number, concurrency: number): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        replies.push(await edge.fetch(path, { headers: { "cf-connecting-ip": ip } }));
      }
    }),
  );
  return replies;
}

/** Object calls the logged requests to `path` made, and how many there were. */
function calls(path: string): { calls: number; requests: number } {
  let calls = 0;
  let requests = 0;
  for (const line of edge.gateway.logs) {
    if (!line.includes(`"path":"${path}"`)) continue;
    const m = /"limiter_calls":(\d+)/.exec(line);
    if (!m) continue;
    calls += Number(m[1]);
    requests++;
  }
  return { calls, requests };
}

describe("limiter leases", () => {
  for (const concurrency of [1, 8, 32, 128]) {
    it(`never admits more than the limit: 300 requests against 100 at concurrency ${concurrency}`, async () => {
      const replies = await load("/lease/exact", uniqueIp(), 300, concurrency);
      const admitted = replies.filter((r) => r.status === 200).length;
      const refused = replies.filter((r) => r.status === 429).length;
      expect(admitted + refused).toBe(300);
      console.log(`lease exactness c=${concurrency}: admitted ${admitted} of 300 (limit 100)`);
      expect(admitted).toBeLessThanOrEqual(100);
      // Under-admission is bounded: at most the slices one isolate holds
      // when the burst ends (each at most burst/8 = 12 units).
      expect(admitted).toBeGreaterThanOrEqual(100 - 2 * 12);
      for (const r of replies.filter((r) => r.status === 200)) {
        const m = /;r=(\d+)/.exec(r.headers.get("ratelimit") ?? "");
        expect(Number(m?.[1])).toBeLessThan(100);
      }
    }, 60_000);
  }

  it("admits a hot key mostly from its lease: far fewer object calls than requests", async () => {
    const ip = uniqueIp();
    const before = (await edge.fetch("/__tidegate/stats/limiter", { headers: admin() })).json<{ calls: number; requests: number }>();
    const started = Date.now();
    const replies = await load("/lease/hot", ip, 400, 8);
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const seen = calls("/lease/hot");
    expect(seen.requests).toBe(400);
    expect(seen.calls).toBeLessThan(400 / 4);
    const after = (await edge.fetch("/__tidegate/stats/limiter", { headers: admin() })).json<{ calls: number; requests: number }>();
    expect(after.requests - before.requests).toBe(400);
    expect(after.calls - before.calls).toBe(seen.calls);
    // The object's remaining excludes every leased unit: never more than
    // the limit minus what was admitted, plus what refilled meanwhile (one
    // unit per 3.6 ms).
    const state = (await edge.fetch(`/__tidegate/limits/lease-hot:per-ip:${ip}`, { headers: admin() })).json<{ remaining: number }>();
    const refilled = Math.ceil((Date.now() - started) / 3.6) + 1;
    expect(state.remaining).toBeLessThanOrEqual(1_000_000 - 400 + refilled);
    console.log(`hot key: 400 requests, ${seen.calls} limiter calls`);
  }, 60_000);

  it('makes one call per request with lease = "off"', async () => {
    await load("/lease/off", uniqueIp(), 100, 8);
    const seen = calls("/lease/off");
    expect(seen.requests).toBe(100);
    expect(seen.calls).toBe(100);
  }, 60_000);

  it("gives back what the other limits admitted when one refuses", async () => {
    const ip = uniqueIp();
    const replies = await load("/lease/multi", ip, 60, 4);
    expect(replies.filter((r) => r.status === 200).length).toBeLessThanOrEqual(3);
    expect(replies.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
    // "large" is charged for the admitted requests and the slices this
    // isolate holds, not for the refused ones.
    const large = (await edge.fetch(`/__tidegate/limits/lease-multi:large:${ip}`, { headers: admin() })).json<{ remaining: number }>();
    expect(large.remaining).toBeGreaterThanOrEqual(10_000 - 3 - 10_000 / 8);
    expect(large.remaining).toBeGreaterThan(10_000 - 60);
  }, 60_000);

  it("counts in shadow mode and never refuses", async () => {
    const replies = await load("/lease/shadow", uniqueIp(), 20, 4);
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const last = replies.at(-1);
    expect(last?.headers.get("ratelimit")).toMatch(/"per-ip";r=0;/);
    expect(last?.headers.get("retry-after")).toBeNull();
  }, 60_000);
});
