// Helpers of the HTTP caching specs (http-caching/*.spec.ts): HTTP-dates
// relative to now, the origin's hit counter as served, and a timeline runner
// that checks whether an entry is fresh (HIT) or not at given moments.
import { beforeAll, expect } from "vitest";
import { cacheStatus } from "../support/expect";
import type { Reply } from "../support/gateway";
import { poll, sleep, useEdge, type Edge } from "../support/harness";

/** useEdge(), with the origin's Date rounded up (Origin.dateRoundedUp): short lifetimes are then exact. */
export function useRfcEdge(): Edge {
  const edge = useEdge();
  beforeAll(() => {
    edge.origin.dateRoundedUp = true;
  });
  return edge;
}

/** An IMF-fixdate (RFC 9110 §5.6.7) `offsetS` seconds from now. */
export const httpDate = (offsetS = 0) => new Date(Date.now() + offsetS * 1000).toUTCString();

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n: number) => String(n).padStart(2, "0");
const clock = (d: Date) => `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;

/** The obsolete RFC 850 form (RFC 9110 §5.6.7), e.g. `Sunday, 06-Nov-94 08:49:37 GMT`, `offsetS` from now. */
export function rfc850Date(offsetS = 0): string {
  const d = new Date(Date.now() + offsetS * 1000);
  const year = two(d.getUTCFullYear() % 100);
  return `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${year} ${clock(d)} GMT`;
}

/** The obsolete asctime form (RFC 9110 §5.6.7), e.g. `Sun Nov  6 08:49:37 1994`, `offsetS` from now. */
export function asctimeDate(offsetS = 0): string {
  const d = new Date(Date.now() + offsetS * 1000);
  const day = String(d.getUTCDate()).padStart(2, " ");
  return `${DAYS[d.getUTCDay()]!.slice(0, 3)} ${MONTHS[d.getUTCMonth()]} ${day} ${clock(d)} ${d.getUTCFullYear()}`;
}

/** The origin's hit counter in the echoed body: 1 means the first answer the origin gave on that path. */
export const servedHit = (res: Reply) => res.json<{ hit: number }>().hit;

/** The `Age` header as a number (NaN when absent). */
export const ageOf = (res: Reply) => Number(res.headers.get("age") ?? Number.NaN);

type Init = Parameters<Edge["fetch"]>[1];

/**
 * The entry stored by the MISS just before: polls (the entry is written in the
 * background) until the gateway answers HIT, for at most two seconds.
 */
export async function storedHit(edge: Edge, path: string, init?: Init): Promise<Reply> {
  const res = await poll(() => edge.fetch(path, init), (r) => cacheStatus(r) === "HIT", { timeoutMs: 2_000, intervalMs: 50 });
  expect(cacheStatus(res), `${path}: stored and served HIT`).toBe("HIT");
  return res;
}

/**
 * A request exactly as given, over node:http to workerd (gateway.raw): fetch()
 * (undici) adds `Cache-Control: no-cache` and `Pragma: no-cache` to any
 * request carrying If-None-Match / If-Modified-Since (Fetch standard,
 * HTTP-network-or-cache fetch), which would turn a client's conditional
 * request into one that must go to the origin.
 */
export function exactly(edge: Edge, path: string, headers: Record<string, string>, method = "GET"): Promise<Reply> {
  return edge.gateway.raw(path, { method, headers });
}

/** A request after the entry, if any, has had time to be stored (for "never stored" checks). */
export async function afterStore(edge: Edge, path: string, init?: Init): Promise<Reply> {
  await sleep(300);
  return edge.fetch(path, init);
}

/** `fresh`: answered HIT from the entry; `stale`: not a HIT (gone to the origin, or STALE). */
export type Expected = "fresh" | "stale";

/**
 * Sends the MISS, then at each `[ms, expected]` step one request. The entry is
 * written in the background, and under load a later request may still miss
 * and store a newer entry, so a `fresh` step waits `ms` from the start of the
 * first request (the entry is at most that old: a lower bound of its lifetime)
 * and a `stale` step `ms` from the end of the last request that missed before
 * the first HIT (the entry is at least that old: an upper bound). Leave half a
 * second of margin for the latter.
 */
export async function timeline(edge: Edge, path: string, steps: [number, Expected][], init?: Init): Promise<Reply[]> {
  const t0 = Date.now();
  const miss = await edge.fetch(path, init);
  expect(cacheStatus(miss), `${path}: first request`).toBe("MISS");
  let t1 = Date.now();
  let settled = false;
  const replies = [miss];
  for (const [at, want] of steps) {
    const wait = (want === "fresh" ? t0 : t1) + at - Date.now();
    if (wait > 0) await sleep(wait);
    let res: Reply;
    if (want === "fresh" && !settled) {
      res = await edge.fetch(path, init);
      const deadline = Date.now() + 2_000;
      while (cacheStatus(res) === "MISS" && Date.now() < deadline) {
        t1 = Date.now();
        await sleep(50);
        res = await edge.fetch(path, init);
      }
    } else {
      res = at < 300 && !settled ? await afterStore(edge, path, init) : await edge.fetch(path, init);
    }
    settled = true;
    if (want === "fresh") expect(cacheStatus(res), `${path} at ${at} ms`).toBe("HIT");
    else expect(cacheStatus(res), `${path} at ${at} ms`).not.toBe("HIT");
    replies.push(res);
  }
  return replies;
}
