// What the origin learns about the client: X-Forwarded-For / Forwarded /
// X-Forwarded-Proto set by the gateway from CF-Connecting-IP and the URL,
// client-sent ones stripped unless the route passes them through, and W3C
// trace context continued or started (trace id in the log line).
import { describe, expect, it } from "vitest";
import { echoOf, headerValues } from "./support/expect";
import { poll, unique, useEdge } from "./support/harness";

const edge = useEdge();

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The JSON log line of the request to `path` (logs arrive asynchronously). */
function logLine(path: string): Promise<Record<string, unknown> | undefined> {
  const find = () =>
    edge.gateway.logs
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return undefined;
        }
      })
      .find((l) => l?.path === path);
  return poll(async () => find(), (found) => found !== undefined, { timeoutMs: 3_000, intervalMs: 50 });
}

describe("forwarded headers", () => {
  it("sets X-Forwarded-For, Forwarded and X-Forwarded-Proto from CF-Connecting-IP and the URL", async () => {
    const echo = echoOf(await edge.fetch(`/public/${unique()}`, { headers: { "cf-connecting-ip": "192.0.2.60" } }));
    expect(headerValues(echo, "x-forwarded-for")).toEqual(["192.0.2.60"]);
    expect(headerValues(echo, "forwarded")).toEqual(["for=192.0.2.60;proto=http"]);
    expect(headerValues(echo, "x-forwarded-proto")).toEqual(["http"]);
  });

  it("quotes and brackets IPv6 in Forwarded (RFC 7239 §6)", async () => {
    const echo = echoOf(await edge.fetch(`/public/${unique()}`, { headers: { "cf-connecting-ip": "2001:db8::7" } }));
    expect(headerValues(echo, "x-forwarded-for")).toEqual(["2001:db8::7"]);
    expect(headerValues(echo, "forwarded")).toEqual(['for="[2001:db8::7]";proto=http']);
  });

  it("a route's allow-list passes the client's headers through, the gateway's entry appended", async () => {
    const echo = echoOf(
      await edge.fetch(`/fwd-chain/${unique()}`, {
        headers: {
          "cf-connecting-ip": "192.0.2.61",
          "x-forwarded-for": "203.0.113.5",
          forwarded: "for=203.0.113.5",
          "x-forwarded-host": "shop.example",
          "x-real-ip": "203.0.113.5",
          "x-forwarded-proto": "https",
        },
      }),
    );
    expect(headerValues(echo, "x-forwarded-for")).toEqual(["203.0.113.5, 192.0.2.61"]);
    expect(headerValues(echo, "forwarded")).toEqual(["for=203.0.113.5, for=192.0.2.61;proto=http"]);
    expect(headerValues(echo, "x-forwarded-host")).toEqual(["shop.example"]);
    expect(headerValues(echo, "x-real-ip")).toEqual([]);
    expect(headerValues(echo, "x-forwarded-proto")).toEqual(["http"]);
  });
});

describe("trace context", () => {
  it("continues a valid traceparent with the edge's own span id, and passes tracestate on", async () => {
    const path = `/public/${unique()}`;
    const echo = echoOf(await edge.fetch(path, { headers: { traceparent: TRACEPARENT, tracestate: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7" } }));
    const [tp] = headerValues(echo, "traceparent");
    const m = TRACEPARENT_RE.exec(tp ?? "");
    expect(m, tp).not.toBeNull();
    expect(m?.[1]).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(m?.[2]).not.toBe("00f067aa0ba902b7");
    expect(m?.[3]).toBe("01");
    expect(headerValues(echo, "tracestate")).toEqual(["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]);
    expect((await logLine(path))?.trace_id).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("starts a new trace when traceparent is absent or invalid, and drops tracestate", async () => {
    for (const headers of [
      {},
      { traceparent: TRACEPARENT.toUpperCase(), tracestate: "a=b" },
      { traceparent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "a=b" },
      { traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" },
    ] as Record<string, string>[]) {
      const path = `/public/${unique()}`;
      const echo = echoOf(await edge.fetch(path, { headers }));
      const values = headerValues(echo, "traceparent");
      expect(values).toHaveLength(1);
      const m = TRACEPARENT_RE.exec(values[0] ?? "");
      expect(m, values[0]).not.toBeNull();
      expect(m?.[1]).not.toBe("4bf92f3577b34da6a3ce929d0e0e4736");
      expect(m?.[1]).not.toBe("0".repeat(32));
      expect(headerValues(echo, "tracestate")).toEqual([]);
      expect((await logLine(path))?.trace_id).toBe(m?.[1]);
    }
  });

  it("every request gets its own trace and span", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const echo = echoOf(await edge.fetch(`/public/${unique()}`));
      ids.add(headerValues(echo, "traceparent")[0] ?? "");
    }
    expect(ids.size).toBe(5);
  });
});
