// The built Worker (build/worker/shim.mjs + wasm) in workerd through
// Miniflare 4, with the bindings of the edge contract: TIDEGATE_CONFIG,
// API_KEYS, ADMIN_KEY and the THROTTLE Durable Object (class Throttle,
// SQLite-backed), plus helpers to send requests and read the answers.
import { existsSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const root = fileURLToPath(new URL("../../../", import.meta.url));
const buildDir = `${root}build`;
const shim = `${buildDir}/worker/shim.mjs`;
const bundle = `${buildDir}/index.js`;

/** Base URL the specs address the gateway by; Miniflare routes every host to the Worker. */
export const GATEWAY = "http://gateway.test";

/** wrangler.toml's compatibility date, so tests and `wrangler dev` agree. */
export const compatibilityDate =
  /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}wrangler.toml`, "utf8"))?.[1] ?? "2026-07-30";

/**
 * Set TIDEGATE_E2E_WITHOUT_THROTTLE=1 to start a Worker that does not export
 * the Throttle class without the THROTTLE binding (to check the harness
 * against the skeleton Worker). Every spec that needs the limiter then fails.
 */
const withoutThrottle = process.env.TIDEGATE_E2E_WITHOUT_THROTTLE === "1";

/** Whether the built bundle exports the Durable Object class `Throttle`. */
export function bundleExportsThrottle(): boolean {
  const js = readFileSync(bundle, "utf8");
  if (/export\s+(?:class|const|let|var|function)\s+Throttle\b/.test(js)) return true;
  for (const block of js.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const spec of (block[1] ?? "").split(",")) {
      const exported = spec.trim().split(/\s+as\s+/).pop()?.trim();
      if (exported === "Throttle") return true;
    }
  }
  return false;
}

/** One place that says what is wrong with build/ before Miniflare says it less clearly. */
function checkBuild(): { throttle: boolean } {
  if (!existsSync(shim) || !existsSync(bundle)) {
    throw new Error(`${shim} is missing: build the Worker first (bash scripts/build-worker.sh --release)`);
  }
  if (bundleExportsThrottle()) return { throttle: true };
  if (withoutThrottle) return { throttle: false };
  throw new Error(
    "build/index.js does not export the Durable Object class `Throttle`, which the THROTTLE binding " +
      "(class_name = \"Throttle\", new_sqlite_classes) needs: the Worker in build/ predates the gateway " +
      "or lacks `#[durable_object] pub struct Throttle`. Rebuild with `bash scripts/build-worker.sh --release`. " +
      "(TIDEGATE_E2E_WITHOUT_THROTTLE=1 starts it without the binding, to check the test harness only.)",
  );
}

export interface GatewayOptions {
  /**
   * TIDEGATE_CONFIG text; `undefined` leaves the binding out (the embedded
   * config applies). An object binds a JSON variable, as a `[vars]` table in
   * wrangler.toml does (which the Worker refuses).
   */
  config?: string | Record<string, unknown>;
  /** API_KEYS secret; `undefined` leaves it out. An object binds a JSON variable. */
  apiKeys?: string | Record<string, unknown>;
  /** ADMIN_KEY secret; `undefined` leaves it out (admin disabled). */
  adminKey?: string;
  /** Further secrets by binding name (assertion keys, origin secrets). */
  secrets?: Record<string, string>;
  /** Leave the THROTTLE binding out: every limiter call fails (on_error). Default false. */
  withoutThrottleBinding?: boolean;
  /** Declare the Throttle class without SQLite storage (a wrong migration). Default false. */
  throttleWithoutSqlite?: boolean;
  /** KV namespace bindings (in-memory), e.g. the API key store's `API_KEYS_KV`. */
  kvNamespaces?: string[];
  /**
   * Refuse TIDEGATE_CONFIG / API_KEYS values over Cloudflare's 5 KB cap, as
   * production does. Default false: the shared test config (gateway.test.toml)
   * is larger, so the harness sets TIDEGATE_SKIP_SIZE_CHECK=true unless asked.
   */
  enforceSizeLimits?: boolean;
}

/** An answer with its body already read (every body is consumed, so nothing leaks). */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json<T = Record<string, unknown>>(): T;
  /** Milliseconds from sending to the end of the body. */
  ms: number;
}

function reply(status: number, headers: Headers, text: string, ms: number): Reply {
  return {
    status,
    headers,
    text,
    ms,
    json<T>() {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new Error(`expected a JSON body, got ${status}: ${text.slice(0, 300)}`);
      }
    },
  };
}

export class Gateway {
  private constructor(
    readonly mf: Miniflare,
    /** The loopback URL workerd listens on. */
    readonly url: URL,
    readonly throttle: boolean,
    /** Every line the Worker wrote to stdout/stderr (its JSON request logs among them). */
    readonly logs: string[],
  ) {}

  static async start(options: GatewayOptions = {}): Promise<Gateway> {
    const { throttle } = checkBuild();
    const bindings: Record<string, string | Record<string, unknown>> = {};
    if (options.config !== undefined) bindings.TIDEGATE_CONFIG = options.config;
    if (options.apiKeys !== undefined) bindings.API_KEYS = options.apiKeys;
    if (options.adminKey !== undefined) bindings.ADMIN_KEY = options.adminKey;
    if (!options.enforceSizeLimits) bindings.TIDEGATE_SKIP_SIZE_CHECK = "true";
    Object.assign(bindings, options.secrets ?? {});
    const logs: string[] = [];
    const verbose = process.env.TIDEGATE_E2E_VERBOSE === "1";
    const collect = (stream: NodeJS.ReadableStream) => {
      let pending = "";
      stream.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8");
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          if (logs.length < 100_000) logs.push(line);
          if (verbose) process.stderr.write(`[workerd] ${line}\n`);
        }
      });
    };
    let mf: Miniflare;
    try {
      mf = new Miniflare({
        host: "127.0.0.1",
        port: 0,
        compatibilityDate,
        modules: true,
        scriptPath: shim,
        // shim.mjs imports ../index.js (an ES module, though Miniflare's default
        // rules take .js for CommonJS), which imports index_bg.wasm.
        modulesRoot: buildDir,
        modulesRules: [
          { type: "ESModule", include: ["**/*.js"] },
          { type: "CompiledWasm", include: ["**/*.wasm"] },
        ],
        bindings,
        ...(options.kvNamespaces ? { kvNamespaces: options.kvNamespaces } : {}),
        ...(throttle && !options.withoutThrottleBinding ? { durableObjects: { THROTTLE: { className: "Throttle", useSQLite: !options.throttleWithoutSqlite }, HEALTH: { className: "HealthMonitor", useSQLite: true } } } : {}),
        handleRuntimeStdio(stdout, stderr) {
          collect(stdout);
          collect(stderr);
        },
      });
      const url = await mf.ready;
      const gateway = new Gateway(mf, url, throttle, logs);
      // workerd only warns (startup continues) when the class is missing; the
      // static check above should have caught it, this catches the rest.
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (throttle && !options.withoutThrottleBinding && logs.some((l) => /no such Durable Object class is exported/.test(l))) {
        await mf.dispose();
        throw new Error("workerd: the Worker does not export the Durable Object class `Throttle`");
      }
      return gateway;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(
        `Miniflare could not start build/worker/shim.mjs: ${message}` +
          (/throttle|durable/i.test(message) ? " (does the Worker export the Durable Object class Throttle?)" : ""),
        { cause: error },
      );
    }
  }

  /** A request through Miniflare's dispatchFetch; `path` is relative to http://gateway.test. */
  async fetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Reply> {
    const started = performance.now();
    const res = await this.mf.dispatchFetch(`${GATEWAY}${path}`, init as never);
    const text = await res.text();
    return reply(res.status, res.headers as unknown as Headers, text, performance.now() - started);
  }

  /**
   * A raw HTTP/1.1 request over node:http straight to workerd's socket, for
   * headers fetch() will not send (Connection, Proxy-Authorization, ...).
   */
  raw(
    path: string,
    options: { method?: string; headers?: Record<string, string | string[]>; timeoutMs?: number } = {},
  ): Promise<Reply> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: Number(this.url.port),
          method: options.method ?? "GET",
          path,
          headers: { host: "gateway.test", ...options.headers },
          timeout: options.timeoutMs ?? 15_000,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined) continue;
              for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
            }
            resolve(reply(res.statusCode ?? 0, headers, Buffer.concat(chunks).toString("utf8"), performance.now() - started));
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`raw request to ${path} timed out`)));
      req.on("error", reject);
      req.end();
    });
  }

  async dispose(): Promise<void> {
    await this.mf.dispose();
  }
}
