// What an origin or a client can send that the platform refuses to pass on:
// statuses outside 200–599 (999, 600, a bare 103), header bytes no library
// would write, very large headers, bodies on null-body statuses, odd request
// URLs and header bytes from a raw client. Each gets a problem (or passes
// through when HTTP allows it); none may panic. A panic in the Worker poisons
// the wasm instance: every other request in flight on it hangs until workerd
// cancels it, so each case also runs beside concurrent ordinary requests that
// must complete normally, and the isolate's log must never show a panic.
import { connect } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { expectProblem } from "../support/expect";
import type { Reply } from "../support/gateway";
import { unique } from "../support/harness";
import { useFaultEdge } from "./support/fault-edge";
import type { Fault } from "./support/fault-server";

const edge = useFaultEdge();

const raw = (text: string | Buffer, holdMs?: number): Fault => ({
  kind: "raw",
  bytes: typeof text === "string" ? Buffer.from(text, "latin1") : text,
  holdMs,
});
const answer = (statusLine: string, headers: string[] = [], body = "") =>
  raw(`${statusLine}\r\n${[...headers, `content-length: ${Buffer.byteLength(body, "latin1")}`, "connection: close"].join("\r\n")}\r\n\r\n${body}`);

/** Sends `fault` on a fresh path of `route` beside `n` ordinary requests; all of those must be fine. */
async function beside(route: "faulty" | "faulty-cached", fault: Fault, n = 12): Promise<Reply> {
  const path = `/${route}/${unique()}`;
  edge.fault.set(path, fault);
  const ordinary = Array.from({ length: n }, () => {
    const ok = `/faulty/${unique()}`;
    edge.fault.set(ok, { kind: "slow", delayMs: 200, body: '{"fine":true}' });
    return ok;
  });
  const [odd, ...rest] = await Promise.all([edge.fetch(path), ...ordinary.map((p) => edge.fetch(p))]);
  for (const res of rest) {
    expect(res.status, res.text.slice(0, 200)).toBe(200);
    expect(res.json()).toEqual({ fine: true });
  }
  return odd;
}

afterAll(() => {
  const panics = edge.logs.filter((l) => /panicked|previous WASM instance|RuntimeError: unreachable/i.test(l));
  expect(panics, panics.join("\n")).toEqual([]);
});

describe("origin statuses outside 200-599", () => {
  for (const route of ["faulty", "faulty-cached"] as const) {
    for (const status of [999, 600]) {
      it(`${status} on /${route}/ is a 502 problem naming the status`, async () => {
        const res = await beside(route, answer(`HTTP/1.1 ${status} Odd`, ["content-type: text/plain"], "odd"));
        expectProblem(res, 502, "bad-gateway");
        expect(res.json<{ detail: string }>().detail).toContain(String(status));
      });
    }

    it(`a bare 103 on /${route}/ (no final answer) is a 502 problem`, async () => {
      const res = await beside(route, raw("HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n", 50));
      expectProblem(res, 502, "bad-gateway");
    });

    // workerd's fetch hands over an interim 103 as if it were the answer, so
    // the final 200 behind it cannot be reached: a 502 naming 103, not a panic.
    it(`a 103 then a 200 on /${route}/ is a 502 naming 103 (workerd stops at the interim answer)`, async () => {
      const res = await beside(
        route,
        raw(
          "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" +
            'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{"ok":true}',
        ),
      );
      expectProblem(res, 502, "bad-gateway");
      expect(res.json<{ detail: string }>().detail).toContain("103");
    });
  }
});

/**
 * One raw HTTP/1.1 exchange with the gateway, read as bytes (a client
 * library would refuse some of what an origin can send): the answer's status
 * (0 if none came within 5 s) and its head.
 */
async function rawRequest(bytes: Buffer): Promise<{ status: number; head: string }> {
  const url = await edge.mf.ready;
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), "127.0.0.1");
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, head: text.slice(0, 300) });
    };
    const timer = setTimeout(finish, 5_000);
    socket.on("data", (c) => {
      chunks.push(c);
      // The head is enough: the status line decides.
      if (Buffer.concat(chunks).includes("\r\n\r\n")) finish();
    });
    socket.on("close", finish);
    socket.on("error", finish);
    socket.write(bytes);
  });
}

const rawGet = (target: string, headers: string[] = []) =>
  Buffer.from(`GET ${target} HTTP/1.1\r\nhost: api.tidegate.test\r\nconnection: close\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`, "latin1");

/** `fault` on a fresh path, asked by a raw client beside ordinary requests: its status and head. */
async function rawBeside(fault: Fault): Promise<{ status: number; head: string }> {
  const path = `/faulty/${unique()}`;
  edge.fault.set(path, fault);
  const ordinary = Array.from({ length: 4 }, () => {
    const ok = `/faulty/${unique()}`;
    edge.fault.set(ok, { kind: "slow", delayMs: 200, body: '{"fine":true}' });
    return edge.fetch(ok);
  });
  const [odd, ...rest] = await Promise.all([rawRequest(rawGet(path)), ...ordinary]);
  for (const res of rest) expect(res.status, res.text.slice(0, 200)).toBe(200);
  return odd;
}

describe("odd origin headers and bodies", () => {
  it("obs-text bytes (0x80-0xFF) in a header value pass through as the same bytes", async () => {
    const res = await beside("faulty", answer("HTTP/1.1 200 OK", ["x-odd: caf\xe9 \x80\xff"], "{}"));
    expect(res.status).toBe(200);
    expect(Buffer.from(res.headers.get("x-odd") ?? "", "latin1")).toEqual(Buffer.from("caf\xe9 \x80\xff", "latin1"));
  });

  it("a control byte in a header value or a bad header name is passed on or a 502, never a panic", async () => {
    for (const header of ["x-ctl: a\x01b", "x-we{ird}: 1", "x-del: \x7f"]) {
      const { status, head } = await rawBeside(answer("HTTP/1.1 200 OK", [header], "{}"));
      expect([200, 502], `${JSON.stringify(header)}: ${head}`).toContain(status);
    }
  });

  it("very large response headers (64 KiB in one, 200 of them) are passed on or refused with a 502", async () => {
    for (const headers of [[`x-big: ${"a".repeat(65_536)}`], Array.from({ length: 200 }, (_, i) => `x-h${i}: ${"v".repeat(100)}`)]) {
      const { status, head } = await rawBeside(answer("HTTP/1.1 200 OK", headers, "{}"));
      expect([200, 502], head).toContain(status);
    }
  });

  for (const route of ["faulty", "faulty-cached"] as const) {
    it(`a 204 and a 304 with a body on /${route}/ are answered without the body, or with a 502`, async () => {
      for (const status of [204, 304]) {
        const res = await beside(route, answer(`HTTP/1.1 ${status} X`, ["content-type: text/plain"], "surprise"), 4);
        expect([status, 502], `${status}: ${res.text.slice(0, 200)}`).toContain(res.status);
        if (res.status === status) expect(res.text).toBe("");
      }
    });
  }

  it("a body that breaks off after the headers, on a cached route, never becomes an entry", async () => {
    const path = `/faulty-cached/${unique()}`;
    // Announce 1000 bytes, send 10, close.
    edge.fault.set(path, raw('HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ncontent-length: 1000\r\n\r\n{"partial"'));
    const first = await edge.fetch(path);
    expect([200, 502]).toContain(first.status);
    edge.fault.set(path, { kind: "ok", body: '{"whole":true}', headers: { "cache-control": "max-age=60" } });
    const second = await edge.fetch(path);
    expect(second.status).toBe(200);
    expect(second.json()).toEqual({ whole: true });
  });
});

describe("odd requests from a raw client", () => {
  const request = rawGet;

  it("header bytes, huge headers and odd URLs get an HTTP answer, never a panic, and the isolate keeps serving", async () => {
    const ok = `/faulty/${unique()}`;
    edge.fault.set(ok, { kind: "ok", body: "{}" });
    const cases = [
      request(ok, ["x-odd: caf\xe9 \x80\xff"]),
      request(`/jwt/${unique()}`, ["authorization: Bearer \xff\xfe"]),
      request(`/jwt/${unique()}`, ["authorization: Bearer a", "authorization: Bearer b"]),
      request(ok, ["x-api-key: \x80\x81"]),
      request(ok, ["x-request-id: \xe9\xe9"]),
      request(ok, [`x-big: ${"b".repeat(100_000)}`]),
      request(`/faulty/%ZZ/%00/..%2f..%2f;x=1?q=%ff%fe&&==#frag`),
      request(`/faulty/${"a".repeat(16_000)}`),
      // (Absolute-form and `*` targets are refused by workerd's own URL check,
      // with a plain-text 500, before any Worker runs: not the gateway's case.)
      request(`/faulty/\xe9\x80`),
    ];
    for (const bytes of cases) {
      const { status, head } = await rawRequest(bytes);
      // workerd may refuse before the Worker runs (400, 431) or close the
      // connection (0): fine. What the Worker answers is never a 500.
      expect(status, head).not.toBe(500);
    }
    const after = await edge.fetch(ok);
    expect(after.status).toBe(200);
  });
});
