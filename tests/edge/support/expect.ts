// Assertions every spec shares: the problem+json shape, the request id and
// Server-Timing on every response, and reading the origin's echo.
import { expect } from "vitest";
import type { Reply } from "./gateway";
import type { Echo } from "./origin";

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const PROBLEM_BASE = "https://tidegate.dev/problems/";
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Every response: a well-formed x-request-id and a Server-Timing header (with `phases` among its entries). */
export function expectTraced(reply: Reply, phases: string[] = []): void {
  const id = reply.headers.get("x-request-id");
  expect(id, "x-request-id on every response").toMatch(REQUEST_ID);
  const timing = reply.headers.get("server-timing");
  expect(timing, "Server-Timing on every response").not.toBeNull();
  for (const phase of phases) {
    expect(timing, `Server-Timing has a ${phase} entry`).toMatch(
      new RegExp(`(^|,)\\s*${phase}(;[^,]*)?;dur=\\d+(\\.\\d+)?`),
    );
  }
}

/** A problem+json answer of `status` whose type ends in `slug` (or one of `slug`s), tagged with the request id. */
export function expectProblem(reply: Reply, status: number, slug: string | string[]): Record<string, unknown> {
  const slugs = Array.isArray(slug) ? slug : [slug];
  expect(reply.status, reply.text.slice(0, 500)).toBe(status);
  expect(reply.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = reply.json();
  expect(slugs.map((s) => `${PROBLEM_BASE}${s}`)).toContain(body.type);
  expect(body.status).toBe(status);
  expect(typeof body.title).toBe("string");
  expect(body.request_id).toBe(reply.headers.get("x-request-id"));
  expectTraced(reply);
  return body;
}

/** The origin's echo of the request the gateway forwarded. */
export function echoOf(reply: Reply): Echo {
  expect(reply.status, reply.text.slice(0, 500)).toBeLessThan(400);
  const body = reply.json<Echo>();
  expect(body).toHaveProperty("rawHeaders");
  return body;
}

/** Every value the origin received for header `name` (case-insensitive), in order. */
export function headerValues(echo: Echo, name: string): string[] {
  return echo.rawHeaders.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** Names of the x-tidegate-* headers the origin received. */
export function tidegateHeaders(echo: Echo): string[] {
  return echo.rawHeaders.map(([n]) => n.toLowerCase()).filter((n) => n.startsWith("x-tidegate-"));
}

export function cacheStatus(reply: Reply): string | null {
  return reply.headers.get("x-cache-status");
}
