// Edge-observed release health (issue 18): origin answers of a route that
// feeds a managed stage reach its HealthMonitor Durable Object in per-isolate
// batches; the figures show on `GET {admin}health/releases`; a failing canary
// makes the object POST one signed event to the Lambda's endpoint (here a
// test server on 127.0.0.1, which checks the HMAC as the Lambda would),
// retried after a 503; traffic without the attribution header counts for the
// stage; without the secret nothing is sent.
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway } from "./support/gateway";

const SECRET = "0123456789abcdef0123456789abcdef-health-test";
const ADMIN = "admin-key-health";

interface Posted {
  signature: string;
  body: string;
}

/** An origin answering `status` with `x-tidegate-release: release` from the query. */
async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

function config(origin: string, signal: string): string {
  return `
[[routes]]
name = "api"
path = "/api/*"
upstream = "${origin}"
auth = { require = "none" }

[health]
signal_url = "${signal}/edge/health"
cooldown = "1m"

[[health.stages]]
api = "shop"
stage = "prod"
routes = ["api"]
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 8_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let origin: { server: Server; url: string };
let receiver: { server: Server; url: string };
const posted: Posted[] = [];
/** Statuses the receiver answers, in order; then 202. */
const answers: number[] = [];

beforeAll(async () => {
  origin = await listen((req, res) => {
    const url = new URL(req.url ?? "/", "http://origin");
    const release = url.searchParams.get("release");
    const headers: Record<string, string> = { "content-type": "text/plain" };
    if (release) headers["x-tidegate-release"] = release;
    res.writeHead(Number(url.searchParams.get("status") ?? "200"), headers);
    res.end("ok");
  });
  receiver = await listen((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      posted.push({ signature: String(req.headers["tidegate-signature"] ?? ""), body });
      const status = answers.shift() ?? 202;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ outcome: status === 202 ? "acted" : "unavailable" }));
    });
  });
});

afterAll(async () => {
  origin?.server.close();
  receiver?.server.close();
});

function verify(p: Posted): Record<string, any> {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(p.signature);
  expect(m, p.signature).not.toBeNull();
  const [, t, mac] = m!;
  const expected = createHmac("sha256", SECRET).update(`${t}.${p.body}`).digest("hex");
  expect(mac).toBe(expected);
  expect(Math.abs(Date.now() - Number(t))).toBeLessThan(60_000);
  return JSON.parse(p.body);
}

describe("health: a failing canary is signalled", () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await Gateway.start({
      config: config(origin.url, receiver.url),
      adminKey: ADMIN,
      secrets: { TIDEGATE_HEALTH_SECRET: SECRET },
    });
  });
  afterAll(async () => gw?.dispose());

  it("sends one signed event, retried after a 503, and shows the figures", async () => {
    answers.push(503);
    const before = posted.length;
    for (let i = 0; i < 40; i++) {
      const r = await gw.fetch(`/api/x?release=base&status=200`);
      expect(r.status).toBe(200);
    }
    for (let i = 0; i < 12; i++) {
      const r = await gw.fetch(`/api/x?release=canary&status=503`);
      expect(r.status).toBe(503);
    }
    // The first attempt is answered 503; the alarm retries (0.5 s later).
    await waitFor("two posts", () => (posted.length >= before + 2 ? true : undefined));
    const [first, second] = posted.slice(before).map(verify);
    expect(first.id).toBe(second.id);
    expect(first).toMatchObject({ api: "shop", stage: "prod", release: "canary", breach: "error_rate" });
    expect(first.canary.errors).toBeGreaterThanOrEqual(5);
    expect(first.base.requests).toBeGreaterThanOrEqual(1);
    expect(typeof first.first_failure_ms).toBe("number");
    // Delivered: no third attempt, and the cooldown holds the next breach back.
    for (let i = 0; i < 5; i++) await gw.fetch(`/api/x?release=canary&status=503`);
    await sleep(2_500);
    expect(posted.length).toBe(before + 2);

    const r = await gw.fetch("/__tidegate/health/releases", { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(r.status).toBe(200);
    const report = r.json<{ stages: any[] }>();
    expect(report.stages[0].key).toBe("shop/prod");
    const health = report.stages[0].health;
    expect(health.judgement.canary.requests).toBeGreaterThanOrEqual(12);
    expect(health.judgement.base.requests).toBe(40);
    expect(health.last_signal).toMatchObject({ attempts: 2, last_status: 202, delivery: "delivered" });
    expect(health.signalling_off).toBeUndefined();
    // Per release: the totals over the window and one point per second with traffic.
    expect(health.window_s).toBe(60);
    const release = (name: string) => health.releases.find((x: any) => x.release === name);
    expect(release("base").figures.requests).toBe(40);
    const sum = (name: string, field: string) =>
      release(name).points.reduce((n: number, p: any) => n + p[field], 0);
    expect(sum("base", "requests")).toBe(40);
    expect(sum("canary", "errors_5xx")).toBe(release("canary").figures.errors);
    expect(release("unattributed").points).toEqual([]);
    const denied = await gw.fetch("/__tidegate/health/releases");
    expect(denied.status).toBe(401);
  });
});

describe("health: no header, no secret", () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await Gateway.start({ config: config(origin.url, receiver.url), adminKey: ADMIN });
  });
  afterAll(async () => gw?.dispose());

  it("counts the stage and signals nothing", async () => {
    const before = posted.length;
    for (let i = 0; i < 30; i++) await gw.fetch(`/api/y?status=${i % 2 ? 502 : 200}`);
    // The batch reaches the object about a second after the first answer.
    let health: any;
    for (let i = 0; i < 60 && health?.judgement?.unattributed?.requests !== 30; i++) {
      await sleep(100);
      const r = await gw.fetch("/__tidegate/health/releases", { headers: { authorization: `Bearer ${ADMIN}` } });
      health = r.json<{ stages: any[] }>().stages[0].health;
    }
    expect(health.judgement.unattributed).toMatchObject({ requests: 30, errors: 15 });
    const stage = health.releases.find((x: any) => x.release === "unattributed");
    expect(stage.points.reduce((n: number, p: any) => n + p.errors_5xx, 0)).toBe(15);
    expect(health.judgement.verdict).toEqual({ status: "breach", breach: "stage_error_rate" });
    expect(health.signalling_off).toMatch(/TIDEGATE_HEALTH_SECRET/);
    expect(health.last_signal).toBeNull();
    await sleep(500);
    expect(posted.length).toBe(before);
  });
});
