// The environment of the fault specs: the built Worker in Miniflare with
// faults.test.toml, an echo origin, a FaultServer (origin and JWKS
// endpoint), RSA keys for the JWKS-backed issuers, and THROTTLE bound to
// BrokenThrottle (broken-throttle.mjs), a second worker whose Durable
// Object fails in the way a spec asks for.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { Miniflare } from "miniflare";
import { compatibilityDate, GATEWAY, root, type Reply } from "../../support/gateway";
import { startOrigin, type Origin } from "../../support/origin";
import { rsaKey, type SigningKey } from "../../support/tokens";
import { FaultServer } from "./fault-server";

const template = fileURLToPath(new URL("../faults.test.toml", import.meta.url));
const brokenThrottle = fileURLToPath(new URL("./broken-throttle.mjs", import.meta.url));

export type ThrottleFault = "throw" | "non-string" | "garbage" | "no-decision" | "slow";

export interface FaultEdge {
  mf: Miniflare;
  origin: Origin;
  fault: FaultServer;
  /** Published at /flaky/jwks.json. */
  flakyKey: SigningKey;
  slowKey: SigningKey;
  brokenKey: SigningKey;
  logs: string[];
  fetch(path: string, init?: RequestInit & { headers?: Record<string, string> }): Promise<Reply>;
  /** Makes every BrokenThrottle instance fail this way. */
  throttleFault(mode: ThrottleFault): Promise<void>;
}

export const jwksBody = (...keys: SigningKey[]) => JSON.stringify({ keys: keys.map((k) => k.jwk) });

export function useFaultEdge(): FaultEdge {
  const edge = {} as FaultEdge;
  const cleanup: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    const [origin, fault] = await Promise.all([startOrigin(), FaultServer.start()]);
    cleanup.push(() => origin.stop(), () => fault.close());
    const config = readFileSync(template, "utf8").replaceAll("{{ORIGIN}}", origin.url).replaceAll("{{FAULT}}", fault.url);
    const logs: string[] = [];
    const mf = new Miniflare({
      host: "127.0.0.1",
      port: 0,
      handleRuntimeStdio(stdout, stderr) {
        for (const stream of [stdout, stderr]) stream.on("data", (c: Buffer) => logs.push(...c.toString("utf8").split("\n")));
      },
      workers: [
        {
          name: "gateway",
          compatibilityDate,
          modules: true,
          scriptPath: `${root}build/worker/shim.mjs`,
          modulesRoot: `${root}build`,
          modulesRules: [
            { type: "ESModule", include: ["**/*.js"] },
            { type: "CompiledWasm", include: ["**/*.wasm"] },
          ],
          bindings: { TIDEGATE_CONFIG: config },
          durableObjects: { THROTTLE: { className: "BrokenThrottle", scriptName: "broken-throttle" } },
        },
        {
          name: "broken-throttle",
          compatibilityDate,
          modules: true,
          scriptPath: brokenThrottle,
          durableObjects: { BROKEN: { className: "BrokenThrottle" } },
        },
      ],
    });
    await mf.ready;
    cleanup.push(() => mf.dispose());
    const flakyKey = rsaKey("flaky-1");
    const slowKey = rsaKey("slow-1");
    const brokenKey = rsaKey("broken-1");
    Object.assign(edge, {
      mf,
      origin,
      fault,
      flakyKey,
      slowKey,
      brokenKey,
      logs,
      async fetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
        const started = performance.now();
        const res = await mf.dispatchFetch(`${GATEWAY}${path}`, init as never);
        let text: string;
        try {
          text = await res.text();
        } catch (error) {
          // A body cut off mid-way: what a client would see as a broken stream.
          text = `<body error: ${error instanceof Error ? error.message : String(error)}>`;
        }
        const ms = performance.now() - started;
        return {
          status: res.status,
          headers: res.headers as unknown as Headers,
          text,
          ms,
          json<T>() {
            return JSON.parse(text) as T;
          },
        } satisfies Reply;
      },
      async throttleFault(mode: ThrottleFault) {
        const worker = await mf.getWorker("broken-throttle");
        const res = await worker.fetch(`http://control/mode?m=${mode}`, { method: "POST" });
        await res.text();
      },
    } satisfies FaultEdge);
  }, 90_000);
  afterAll(async () => {
    for (const close of cleanup.reverse()) await close();
  }, 30_000);
  return edge;
}
