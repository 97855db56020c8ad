// The edge benchmark (issue 6, edge part; issue 3's budgets): Tidegate, a
// bare pass-through floor, an I/O-equivalent floor and a TypeScript peer
// (jose + WebCrypto), all in ONE workerd (Miniflare, one direct socket per
// Worker), one origin and one JWKS server on 127.0.0.1, one load generator
// (wrk) at a fixed concurrency.
//
//   make bench-edge                      (setup, release build, then this)
//   node bench/edge.mjs [--rounds 3] [--seconds 3] [--connections 8] [--instances 8]
//                       [--port-base 8640] [--json out.json] [--smoke]
//
// Measures: per path, throughput and wrk latency (p50/p99) with the median and
// min–max over rounds; workerd process CPU per request (/proc) and, minus the
// I/O-equivalent floor, the gateway's own CPU; bundle sizes; startup (module
// evaluation in a fresh isolate, timed inside workerd, as `wrangler check
// startup` does it); the limiter's exactness and decisions per second on one
// hot key at rising concurrency.
//
// Every loop is bounded in count and the whole run in time (--deadline-s,
// default 600). A measurement, not a test: it checks every response (status,
// X-Cache-Status, origin hits) so a figure is never of the wrong path, and
// asserts nothing about time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";

import { counted, prime, runWrk, wrkVersion } from "./lib/load.mjs";
import { childPids, cpuMs, load, machine, selfCpuMs } from "./lib/proc.mjs";
import { startJwks, startOrigin } from "./lib/servers.mjs";
import { round, spread, summary } from "./lib/stats.mjs";
import { AUDIENCE, ISSUER, apiKey, jwk, tokenPool } from "./lib/tokens.mjs";
import { tidegateConfig } from "./lib/config.mjs";
import {
  buildDir,
  buildPeer,
  checkBuild,
  compatibilityDate,
  floorWorker,
  ioFloorWorker,
  loadMiniflare,
  peerWorker,
  root,
  sharedOptions,
  shim,
  tidegateWorker,
  versions,
  writeCacheFile,
} from "./lib/workers.mjs";
import { markdown } from "./lib/report.mjs";
import { openProfiler } from "./lib/profile.mjs";

// ---------------------------------------------------------------- options
const args = process.argv.slice(2);
const SMOKE = args.includes("--smoke");
function opt(name, fallback, min, max) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = args[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  if (typeof fallback !== "number") return v;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in ${min}..${max}`);
  return n;
}
const O = {
  rounds: opt("rounds", SMOKE ? 1 : 3, 1, 10),
  seconds: opt("seconds", SMOKE ? 1 : 3, 1, 30),
  connections: opt("connections", 8, 1, 256),
  instances: opt("instances", SMOKE ? 2 : 8, 1, 30),
  limiterTotal: opt("limiter-requests", SMOKE ? 200 : 600, 110, 10_000),
  hotKeyTotal: opt("hot-key-requests", SMOKE ? 300 : 3_000, 100, 100_000),
  portBase: opt("port-base", 8640, 1024, 65000),
  inspectorPort: opt("inspector-port", 9640, 1024, 65000),
  profileSeconds: opt("profile-seconds", SMOKE ? 1 : 2, 0, 30), // 0: no CPU profiles
  deadlineS: opt("deadline-s", 600, 30, 1800),
  json: opt("json", ""),
  only: opt("only", ""), // comma-separated Worker names, to re-run a subset
  // Another Tidegate build (a build/ directory, e.g. another branch's) run as
  // Worker "tidegate-b" in the same workerd: an A/B in one run.
  compareBuild: opt("compare-build", ""),
  // Durable Object and Cache API storage (SQLite files): "tmpfs" (/dev/shm: no disk syncs)
  // or "disk" (Miniflare's default temp dir, synced to this machine's disk).
  // workerd's in-memory storage has no SQL API, which both limiters use.
  doStorage: opt("do-storage", "tmpfs"),
};
if (!["tmpfs", "disk"].includes(O.doStorage)) throw new Error("--do-storage must be tmpfs or disk");
const DEADLINE = Date.now() + O.deadlineS * 1000;
function checkDeadline(what) {
  if (Date.now() > DEADLINE) throw new Error(`deadline passed during ${what}: lower --rounds/--seconds or raise --deadline-s`);
}
const log = (...a) => console.error("[bench-edge]", ...a);

const PORT = {
  miniflare: O.portBase,
  floor: O.portBase + 1,
  ioFloor: O.portBase + 2,
  tidegate: O.portBase + 3,
  peer: O.portBase + 4,
  tidegateB: O.portBase + 7,
  origin: O.portBase + 5,
  jwks: O.portBase + 6,
};

// ---------------------------------------------------------------- scenarios
// mode: which credential wrk sends; unique: a distinct URL per request (MISS);
// cache: the X-Cache-Status every measured response must carry.
const PATHS = [
  { key: "proxy", label: "no-auth proxy", path: "/proxy/item", mode: "none" },
  { key: "apikey", label: "API-key auth + proxy", path: "/apikey/item", mode: "apikey" },
  { key: "jwt", label: "RS256 JWT auth + proxy", path: "/jwt/item", mode: "jwt" },
  { key: "limited", label: "JWT + DO limiter + proxy", path: "/limited/item", mode: "jwt" },
  { key: "miss", label: "JWT + limiter + cache MISS", path: "/secure/item", mode: "jwt", unique: true, cache: "MISS" },
  { key: "hit", label: "JWT + limiter + cache HIT (private)", path: "/secure/item", mode: "jwt", cache: "HIT" },
  { key: "public-hit", label: "cache HIT (public, no auth)", path: "/cached/item", mode: "none", cache: "HIT" },
  // The same JWT paths with clients that reuse their token (issue 16): each
  // connection's worth of requests keeps one token (see wrk.lua), so a
  // gateway that remembers verified tokens verifies each once per isolate.
  { key: "jwt-reuse", label: "RS256 JWT auth + proxy (repeated token)", path: "/jwt/item", mode: "jwt", reuse: true },
  { key: "limited-reuse", label: "JWT + DO limiter + proxy (repeated token)", path: "/limited/item", mode: "jwt", reuse: true },
  { key: "miss-reuse", label: "JWT + limiter + cache MISS (repeated token)", path: "/secure/item", mode: "jwt", unique: true, cache: "MISS", reuse: true },
  { key: "hit-reuse", label: "JWT + limiter + cache HIT (private, repeated token)", path: "/secure/item", mode: "jwt", cache: "HIT", reuse: true },
];
const WORKERS = [
  { name: "floor", port: PORT.floor, paths: ["proxy"] },
  { name: "io-floor", port: PORT.ioFloor, paths: ["proxy", "limited", "miss", "hit", "public-hit"] },
  { name: "tidegate", port: PORT.tidegate, paths: PATHS.map((p) => p.key) },
  { name: "peer", port: PORT.peer, paths: PATHS.map((p) => p.key) },
  ...(O.compareBuild ? [{ name: "tidegate-b", port: PORT.tidegateB, paths: PATHS.map((p) => p.key) }] : []),
].filter((w) => !O.only || O.only.split(",").includes(w.name));

// ---------------------------------------------------------------- bundle
function sizes(files) {
  const buffers = files.map((f) => readFileSync(f));
  return {
    files: files.map((f) => f.slice(root.length)),
    raw: buffers.reduce((n, b) => n + b.length, 0),
    gzip: buffers.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0),
  };
}
function bundles(peerPath) {
  return {
    wasm: sizes([`${buildDir}/index_bg.wasm`]),
    tidegate: sizes([shim, `${buildDir}/index.js`, `${buildDir}/index_bg.wasm`]),
    peer: sizes([peerPath]),
  };
}

// ---------------------------------------------------------------- startup
// As `wrangler check startup` does: a wrapper module whose fetch handler
// dynamically imports the Worker's main module in a fresh isolate. The wrapper
// times the import with Date.now(), which advances during execution in local
// workerd (it is frozen only in production): the global scope's evaluation,
// including the wasm instantiation. Then the first request through the
// imported Worker (config parse, route table) and a second one.
const STARTUP_WRAPPER = `
export default {
  async fetch(request, env, ctx) {
    const t0 = Date.now();
    const mod = await import(env.MAIN);
    const t1 = Date.now();
    let first = null, second = null, status = null;
    if (env.PATH) {
      const call = async () => {
        const s = Date.now();
        const Entry = mod.default;
        const res = typeof Entry === "function" ? await new Entry(ctx, env).fetch(new Request("http://gateway.test" + env.PATH, { headers: { authorization: "Bearer " + env.ADMIN_KEY } })) : await Entry.fetch(new Request("http://gateway.test" + env.PATH), env, ctx);
        await res.text();
        status = res.status;
        return Date.now() - s;
      };
      first = await call();
      second = await call();
    }
    return Response.json({ importMs: t1 - t0, firstMs: first, secondMs: second, status });
  },
};`;

async function startupOnce(Miniflare, kind, { config, adminKey, peerPath }) {
  const wrapperPath = writeCacheFile("startup-wrapper.mjs", STARTUP_WRAPPER);
  const opts =
    kind === "tidegate"
      ? {
          modulesRoot: root,
          modules: [
            { type: "ESModule", path: wrapperPath },
            { type: "ESModule", path: shim },
            { type: "ESModule", path: `${buildDir}/index.js` },
            { type: "CompiledWasm", path: `${buildDir}/index_bg.wasm` },
          ],
          bindings: { MAIN: "../../build/worker/shim.mjs", PATH: "/__tidegate/health", TIDEGATE_CONFIG: config, ADMIN_KEY: adminKey },
        }
      : kind === "peer"
        ? {
            modulesRoot: root,
            modules: [
              { type: "ESModule", path: wrapperPath },
              { type: "ESModule", path: peerPath },
            ],
            bindings: { MAIN: "./peer.mjs" },
          }
        : {
            modulesRoot: root,
            modules: [
              { type: "ESModule", path: wrapperPath },
              { type: "ESModule", path: writeCacheFile("trivial.mjs", 'export default { fetch() { return new Response("ok"); } };') },
            ],
            bindings: { MAIN: "./trivial.mjs" },
          };
  const t0 = performance.now();
  const mf = new Miniflare({ ...sharedOptions(0), compatibilityDate, ...opts });
  try {
    await mf.ready;
    const t1 = performance.now();
    const res = await mf.dispatchFetch("http://startup.test/");
    const body = await res.json();
    const t2 = performance.now();
    if (kind === "tidegate" && body.status !== 200) throw new Error(`startup: Tidegate's first request answered ${body.status}`);
    return { ...body, readyMs: t1 - t0, firstDispatchMs: t2 - t1 };
  } finally {
    await mf.dispose();
  }
}

async function startup(Miniflare, ctx) {
  const out = {};
  for (const kind of ["tidegate", "peer", "trivial"]) {
    const runs = [];
    for (let i = 0; i < O.instances; i++) {
      checkDeadline("startup");
      runs.push(await startupOnce(Miniflare, kind, ctx));
    }
    const pick = (k) => summary(runs.map((r) => r[k]).filter((x) => x !== null));
    out[kind] = { importMs: pick("importMs"), firstMs: pick("firstMs"), secondMs: pick("secondMs"), firstDispatchMs: pick("firstDispatchMs") };
  }
  return out;
}

// ---------------------------------------------------------------- wasm compile (node, same V8)
async function wasmCompile() {
  const bytes = readFileSync(`${buildDir}/index_bg.wasm`);
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    try {
      await WebAssembly.compile(bytes);
    } catch (e) {
      // wasm-opt emits typed null references and try_table, which workerd's
      // V8 compiles and Node 20's does not: startup (in workerd) still times
      // the module's instantiation.
      log(`node cannot compile the wasm (${e.message.split(":").at(-1).trim()}); startup figures come from workerd`);
      return null;
    }
    times.push(performance.now() - t0);
  }
  return summary(times);
}

// ---------------------------------------------------------------- throughput and latency
async function throughput(env) {
  const pids = childPids(/workerd/);
  const results = {}; // worker → path → [runs]
  const order = [];
  for (const w of WORKERS) for (const p of w.paths) order.push({ w, p: PATHS.find((x) => x.key === p) });
  for (let round_ = 0; round_ < O.rounds; round_++) {
    // Rotate the order each round so drifting machine load spreads evenly.
    const rotated = order.slice(round_ % order.length).concat(order.slice(0, round_ % order.length));
    for (const { w, p } of rotated) {
      checkDeadline(`${w.name} ${p.key}`);
      const base = { url: `http://127.0.0.1:${w.port}`, path: p.path, mode: p.mode, unique: p.unique, reuse: p.reuse ? O.connections : 0, connections: O.connections, tokensFile: env.tokensFile, apiKey: env.apiKey };
      if (round_ === 0) {
        if (p.cache === "HIT") await prime(base, env.pool);
        await runWrk({ ...base, seconds: 1 }); // warm-up: JIT, connections, DOs
      }
      // Let the previous run's in-flight requests and background cache puts settle.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const cpu0 = cpuMs(pids);
      const node0 = selfCpuMs();
      const hits0 = env.origin.hits;
      const load0 = load()[0];
      const r = await runWrk({ ...base, seconds: O.seconds });
      const cpu1 = cpuMs(pids);
      const node1 = selfCpuMs();
      const originHits = env.origin.hits - hits0;
      const bad = r.non200 + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
      if (bad > 0) throw new Error(`${w.name} ${p.key}: ${r.non200} non-200 answers, errors ${JSON.stringify(r.errors)}`);
      if (p.cache === "MISS" && r.cache.hit > 0) throw new Error(`${w.name} ${p.key}: ${r.cache.hit} HITs on a MISS path`);
      if (p.cache === "HIT" && r.cache.miss > 0) throw new Error(`${w.name} ${p.key}: ${r.cache.miss} MISSes on a HIT path`);
      // A HIT path never calls the origin; allow the previous run's stragglers.
      if (p.cache === "HIT" && originHits > O.connections) throw new Error(`${w.name} ${p.key}: the origin was called ${originHits} times on a HIT path`);
      const run = {
        rps: r.rps,
        p50: r.latencyMs.p50,
        p99: r.latencyMs.p99,
        requests: r.requests,
        workerdCpuMs: (cpu1 - cpu0) / r.requests,
        wrkCpuMs: r.wrkCpuMs / r.requests,
        nodeCpuMs: (node1 - node0) / r.requests,
        originPerRequest: originHits / r.requests,
        cache: r.cache,
        load: load0,
      };
      ((results[w.name] ??= {})[p.key] ??= []).push(run);
      log(`${w.name.padEnd(8)} ${p.key.padEnd(10)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.latencyMs.p50.toFixed(2)} ms  p99 ${r.latencyMs.p99.toFixed(2)} ms  workerd ${run.workerdCpuMs.toFixed(3)} ms/req  (load ${load0})`);
    }
  }
  const table = {};
  for (const [worker, byPath] of Object.entries(results)) {
    for (const [path, runs] of Object.entries(byPath)) {
      (table[worker] ??= {})[path] = {
        rps: spread(runs.map((r) => r.rps)),
        p50: spread(runs.map((r) => r.p50)),
        p99: spread(runs.map((r) => r.p99)),
        workerdCpuMs: spread(runs.map((r) => r.workerdCpuMs)),
        wrkCpuMs: spread(runs.map((r) => r.wrkCpuMs)),
        nodeCpuMs: spread(runs.map((r) => r.nodeCpuMs)),
        originPerRequest: spread(runs.map((r) => r.originPerRequest)),
        load: spread(runs.map((r) => r.load)),
        requests: runs.reduce((n, r) => n + r.requests, 0),
      };
    }
  }
  return { workerdProcesses: pids.length, table };
}

// ---------------------------------------------------------------- isolate CPU (inspector)
// One sequential client (wrk -c1) per path while the V8 sampling profiler runs
// in that Worker's isolate: busy (non-idle) isolate time ÷ requests.
async function isolateCpu(inspectorUrl, env) {
  const out = {};
  // The floors' profiles add nothing the /proc figures do not say: gateways only.
  for (const w of WORKERS.filter((x) => x.name !== "floor" && x.name !== "io-floor")) {
    const profiler = await openProfiler(inspectorUrl, w.name, 100);
    try {
      for (const key of w.paths) {
        checkDeadline(`profile ${w.name} ${key}`);
        const p = PATHS.find((x) => x.key === key);
        const base = { url: `http://127.0.0.1:${w.port}`, path: p.path, mode: p.mode, unique: p.unique, reuse: p.reuse ? 1 : 0, connections: 1, tokensFile: env.tokensFile, apiKey: env.apiKey };
        if (p.cache === "HIT") await prime(base, env.pool);
        await runWrk({ ...base, seconds: 1 }); // warm-up in this fresh workerd
        await profiler.start();
        const r = await runWrk({ ...base, seconds: O.profileSeconds });
        const a = await profiler.stop();
        (out[w.name] ??= {})[key] = { requests: r.requests, cpuMs: a.busyMs / r.requests, gcMs: a.gcMs / r.requests, p50: r.latencyMs.p50, top: a.top };
        log(`isolate CPU ${w.name.padEnd(8)} ${key.padEnd(10)} ${(a.busyMs / r.requests).toFixed(3)} ms/req over ${r.requests} sequential requests (p50 ${r.latencyMs.p50.toFixed(2)} ms)`);
      }
    } finally {
      profiler.close();
    }
  }
  return out;
}

// ---------------------------------------------------------------- limiter
// One hot key (a fresh client IP per level) with limit 100 per hour: exactly
// 100 of `limiterTotal` requests may pass at any concurrency.
async function limiter(workers) {
  const out = {};
  const levels = SMOKE ? [1, 16] : [1, 8, 32, 128];
  for (const w of workers) {
    out[w.name] = [];
    for (const c of levels) {
      checkDeadline(`limiter ${w.name} c=${c}`);
      const ip = `10.${w.port % 250}.${c}.${randomBytes(1)[0]}`;
      const r = await counted({ url: `http://127.0.0.1:${w.port}`, path: "/hot/item", headers: { "cf-connecting-ip": ip }, total: O.limiterTotal, concurrency: c });
      const admitted = r.statuses[200] ?? 0;
      const refused = r.statuses[429] ?? 0;
      out[w.name].push({ concurrency: c, total: O.limiterTotal, admitted, refused, other: O.limiterTotal - admitted - refused, decisionsPerS: round(O.limiterTotal / (r.elapsedMs / 1000), 0) });
      log(`limiter ${w.name} c=${c}: admitted ${admitted}/${O.limiterTotal} (limit 100), ${refused} refused, ${(O.limiterTotal / (r.elapsedMs / 1000)).toFixed(0)} decisions/s`);
    }
  }
  return out;
}

// One hot key (a fresh client IP per level) against 1,000,000 per hour, a
// limit it never reaches: decisions per second and limiter object calls per
// request. Tidegate's calls come from its admin `stats/limiter` (per
// isolate; the bench runs one); the peer makes one `stub.check` per request
// by construction (bench/peer/worker.ts).
async function limiterStats(w) {
  if (!w.name.startsWith("tidegate")) return null;
  try {
    const res = await fetch(`http://127.0.0.1:${w.port}/__tidegate/stats/limiter`, { headers: { authorization: `Bearer ${adminKey}` } });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

async function hotKey(workers) {
  const out = {};
  const levels = SMOKE ? [1, 32] : [1, 8, 32, 128];
  for (const w of workers) {
    out[w.name] = [];
    for (const c of levels) {
      checkDeadline(`hot key ${w.name} c=${c}`);
      const ip = `10.${w.port % 250}.${200 + (c % 50)}.${randomBytes(1)[0]}`;
      const before = await limiterStats(w);
      const r = await counted({ url: `http://127.0.0.1:${w.port}`, path: "/hotkey/item", headers: { "cf-connecting-ip": ip }, total: O.hotKeyTotal, concurrency: c });
      const after = await limiterStats(w);
      const admitted = r.statuses[200] ?? 0;
      const callsPerRequest = before && after && after.requests > before.requests ? round((after.calls - before.calls) / (after.requests - before.requests), 3) : w.name === "peer" ? 1 : null;
      const decisionsPerS = round(O.hotKeyTotal / (r.elapsedMs / 1000), 0);
      out[w.name].push({ concurrency: c, total: O.hotKeyTotal, limit: 1_000_000, admitted, other: O.hotKeyTotal - admitted, decisionsPerS, callsPerRequest });
      log(`hot key ${w.name} c=${c}: admitted ${admitted}/${O.hotKeyTotal} (limit 1000000/h), ${decisionsPerS} decisions/s, ${callsPerRequest ?? "?"} limiter calls/request`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- main
checkBuild();
if (O.compareBuild) checkBuild(O.compareBuild);
const wrk = wrkVersion();
if (!wrk) throw new Error("wrk is not installed: apt-get install wrk (Debian), or see BENCHMARKS.md");
const Miniflare = await loadMiniflare();
const peerPath = await buildPeer();
const adminKey = `admin_${randomBytes(24).toString("base64url")}`;
const key = apiKey();
const pool = tokenPool(SMOKE ? 256 : 2048, 64);
const tokensFile = writeCacheFile("tokens.txt", `${pool.map((t) => `${t.token} ${t.subject}`).join("\n")}\n`);

const origin = await startOrigin(PORT.origin);
const jwks = await startJwks(PORT.jwks, jwk);
const config = tidegateConfig(origin.url, jwks.url, { tokenPool: pool.length });
const report = {
  machine: machine({ wrk, ...versions() }),
  options: O,
  command: `node bench/edge.mjs ${args.join(" ")}`.trim(),
  tokens: { pool: pool.length, subjects: 64 },
};
let mf;
let doDir;
try {
  report.bundle = bundles(peerPath);
  if (O.compareBuild) report.bundleB = sizes([`${O.compareBuild}/worker/shim.mjs`, `${O.compareBuild}/index.js`, `${O.compareBuild}/index_bg.wasm`]);
  report.wasmCompileNode = await wasmCompile();
  log("startup: fresh isolates, module evaluation timed inside workerd");
  report.startup = await startup(Miniflare, { config, adminKey, peerPath });

  const all = {
    floor: floorWorker({ origin: origin.url, port: PORT.floor }),
    "io-floor": ioFloorWorker({ origin: origin.url, port: PORT.ioFloor }),
    tidegate: tidegateWorker({ config, adminKey, apiKeys: key.json, port: PORT.tidegate }),
    "tidegate-b": O.compareBuild ? tidegateWorker({ config, adminKey, apiKeys: key.json, port: PORT.tidegateB, name: "tidegate-b", dir: O.compareBuild }) : undefined,
    peer: peerWorker({ peerPath, origin: origin.url, jwks: jwks.url, issuer: ISSUER, audience: AUDIENCE, apiKeys: key.json, port: PORT.peer }),
  };
  if (O.doStorage === "tmpfs") {
    doDir = mkdtempSync("/dev/shm/tidegate-bench-");
  }
  const storage = doDir ? { durableObjectsPersist: `${doDir}/do`, cachePersist: `${doDir}/cache` } : {};
  const workers = WORKERS.map((w) => all[w.name]);
  mf = new Miniflare({ ...sharedOptions(PORT.miniflare), ...storage, workers });
  await mf.ready;
  log(`one workerd, Workers ${WORKERS.map((w) => `${w.name}@${w.port}`).join(", ")}; wrk -t1 -c${O.connections}, ${O.rounds} rounds × ${O.seconds} s`);
  report.throughput = await throughput({ origin, tokensFile, apiKey: key.key, pool });
  report.limiter = await limiter(WORKERS.filter((w) => w.name !== "floor" && w.name !== "io-floor"));
  report.hotKey = await hotKey(WORKERS.filter((w) => w.name !== "floor" && w.name !== "io-floor"));
  if (O.profileSeconds > 0) {
    // A second workerd with the inspector on, so the throughput runs above
    // had none.
    await mf.dispose();
    mf = new Miniflare({ ...sharedOptions(PORT.miniflare), inspectorPort: O.inspectorPort, ...storage, workers });
    await mf.ready;
    report.isolateCpu = await isolateCpu(await mf.getInspectorURL(), { tokensFile, apiKey: key.key, pool });
  }
  report.jwksFetches = jwks.hits;
} finally {
  await mf?.dispose();
  if (doDir) rmSync(doDir, { recursive: true, force: true });
  await origin.close();
  await jwks.close();
}
report.machine.loadavgEnd = load();
report.finished = new Date().toISOString();

const md = markdown(report);
console.log(md);
if (O.json) writeFileSync(O.json, `${JSON.stringify(report, null, 2)}\n`);
