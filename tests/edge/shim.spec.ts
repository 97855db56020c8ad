// The entry module's failure handling (edge-worker/shim.mjs), in workerd:
// the real shim over a stand-in for the generated wasm bindings (`index.js`),
// whose fast-path steps throw, trap or decline on request. A wasm trap or a
// JS exception on the fast path must become a 500 problem+json (the instance
// flagged for replacement after a trap), never an unhandled rejection, and
// each step's outcome must reach the next one as the shim's contract says.
// The built Worker cannot be made to trap without a test-only trigger in
// production code; this runs the very file that ships.
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compatibilityDate, root } from "./support/gateway";

const SHIM = readFileSync(`${root}edge-worker/shim.mjs`, "utf8");

// What worker-build generates, reduced to the contract shim.mjs relies on:
// the entry class (with `tidegatePlan` on its prototype), the step classes,
// the Durable Object class and `__worker_init_state`. The plan's behaviour
// is chosen by the request path.
const BINDINGS = `
import { WorkerEntrypoint } from "cloudflare:workers";

globalThis.__worker_init_state = { criticalError: false, instanceId: 0 };
const trap = () => new WebAssembly.RuntimeError("unreachable executed");

export class FastProxy {
  constructor(mode) { this.mode = mode; }
  send(body) {
    if (this.mode === "send-rejects") return Promise.reject(new TypeError("connection refused"));
    return Promise.resolve(new Response("origin says hi"));
  }
  answer(answer) {
    if (this.mode === "answer-traps") throw trap();
    if (this.mode === "answer-throws") throw new TypeError("answer");
    return new Response("answered " + this.mode + ": " + (answer instanceof Response));
  }
  unreachable(error) {
    return new Response("unreachable: " + error.message, { status: 502 });
  }
}

export class FastLookup {
  constructor(mode) { this.mode = mode; }
  get key() {
    if (this.mode === "key-traps") throw trap();
    return "https://cache.test/entry";
  }
  serve(found, request) {
    if (this.mode === "serve-throws") throw new TypeError("serve");
    if (this.mode === "serve-declines") return undefined;
    if (this.mode === "serve-fills") return new FastProxy("fill");
    return new Response("served: found " + (found !== undefined) + ", " + (request instanceof Request));
  }
}

export class FastVerify {
  constructor(mode) { this.mode = mode; }
  get algorithm() { return { name: "HMAC" }; }
  get key() { return "not a CryptoKey"; }
  get signature() { return new Uint8Array(4); }
  get data() { return new Uint8Array(4); }
  resume(valid) {
    if (this.mode === "resume-traps") throw trap();
    return this.mode === "resume-declines" ? undefined : new FastProxy("valid " + valid);
  }
}

export class Throttle {
  constructor(ctx, env) {}
  fetch() { return new Response("throttle"); }
  decide(op) { return op; }
}

export default class Generated extends WorkerEntrypoint {
  fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/state") return Response.json(globalThis.__worker_init_state);
    return new Response("full path");
  }
}

Generated.prototype.tidegatePlan = function (method, url, headers, env, ctx) {
  const mode = new URL(url).pathname.slice(1);
  if (!(headers instanceof Headers) || typeof ctx?.waitUntil !== "function") throw new TypeError("plan got no headers or ctx");
  switch (mode) {
    case "plan-throws": throw new TypeError("plan");
    case "plan-traps": throw trap();
    case "state": return undefined;
    case "full": return undefined;
    case "proxy": case "send-rejects": case "answer-traps": case "answer-throws": return new FastProxy(mode);
    case "key-traps": case "serve-throws": case "serve-declines": case "serve-fills": case "serve": return new FastLookup(mode);
    case "resume-traps": case "resume-declines": case "resume": return new FastVerify(mode);
    default: return undefined;
  }
};
`;

/** The shim over the stand-in bindings, with `bindings`; workerd's output collected in `logs`. */
function options(logs: string[], bindings: Record<string, string> = {}) {
  return {
    compatibilityDate,
    modulesRoot: "/worker",
    modules: [
      { type: "ESModule" as const, path: "/worker/worker/shim.mjs", contents: SHIM },
      { type: "ESModule" as const, path: "/worker/index.js", contents: BINDINGS },
    ],
    bindings,
    handleRuntimeStdio(stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) {
      for (const stream of [stdout, stderr]) stream.on("data", (chunk: Buffer) => logs.push(...chunk.toString().split("\n")));
    },
  };
}

function start(bindings: Record<string, string> = {}) {
  const logs: string[] = [];
  return { mf: new Miniflare(options(logs, bindings)), logs };
}

describe("shim.mjs: failures on the fast path become problem+json 500s", () => {
  let mf: Miniflare;
  let logs: string[];
  const get = async (path: string) => {
    const res = await mf.dispatchFetch(`http://gateway.test${path}`);
    return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
  };
  const state = async () => JSON.parse((await get("/state")).text) as { criticalError: boolean };

  beforeAll(async () => {
    ({ mf, logs } = start());
    await mf.ready;
  });
  afterAll(async () => {
    await mf?.dispose();
  });

  it("each step's outcome reaches the next: the full path, a proxy, a lookup, a verification", async () => {
    expect((await get("/full")).text).toBe("full path");
    expect((await get("/proxy")).text).toBe("answered proxy: true");
    expect(await get("/send-rejects")).toMatchObject({ status: 502, text: "unreachable: connection refused" });
    expect((await get("/serve")).text).toBe("served: found false, true");
    expect((await get("/serve-declines")).text).toBe("full path");
    expect((await get("/serve-fills")).text).toBe("answered fill: true");
    // WebCrypto refuses the stand-in key: the check counts as failed, not thrown.
    expect((await get("/resume")).text).toBe("answered valid false: true");
    expect((await get("/resume-declines")).text).toBe("full path");
    expect((await state()).criticalError).toBe(false);
  });

  it("a JS exception in any step is a 500 problem+json, and the instance is kept", async () => {
    for (const path of ["/plan-throws", "/answer-throws", "/serve-throws"]) {
      const res = await get(path);
      expect(res.status, path).toBe(500);
      expect(res.type, path).toBe("application/problem+json");
      expect(JSON.parse(res.text)).toMatchObject({ type: "https://tidegate.dev/problems/internal", status: 500 });
    }
    expect((await state()).criticalError).toBe(false);
    expect(logs.some((l) => l.includes("fast path: TypeError: serve"))).toBe(true);
  });

  for (const path of ["/plan-traps", "/answer-traps", "/key-traps", "/resume-traps"]) {
    it(`a wasm trap (${path.slice(1)}) is a 500 problem+json and flags the instance for replacement`, async () => {
      expect((await state()).criticalError).toBe(false);
      const res = await get(path);
      expect(res.status).toBe(500);
      expect(res.type).toBe("application/problem+json");
      expect((await state()).criticalError).toBe(true);
      expect(logs.some((l) => l.includes("fast path: RuntimeError: unreachable executed"))).toBe(true);
      // A fresh instance for the next case (worker-build's entry proxy
      // starts one after a trap).
      await mf.setOptions(options(logs));
    });
  }
});

describe("shim.mjs: TIDEGATE_FAST_PATH = off", () => {
  it("sends every request the full way without planning it", async () => {
    const { mf } = start({ TIDEGATE_FAST_PATH: "off" });
    try {
      for (const path of ["/plan-throws", "/plan-traps", "/proxy"]) {
        const res = await mf.dispatchFetch(`http://gateway.test${path}`);
        expect(await res.text(), path).toBe("full path");
      }
    } finally {
      await mf.dispose();
    }
  });
});
