// Measures the edge Worker's budgets (issue 3): bundle size, startup, and
// per-request cost in workerd through Miniflare, on 127.0.0.1.
//
//   make bench-edge            (setup, release build, then this script)
//   node bench/edge-budgets.mjs [--requests 500] [--warmup 50] [--instances 10] [--json out.json]
//
// Needs build/ (bash scripts/build-worker.sh --release) and tests/node_modules
// (miniflare). A minimal, self-contained copy of what tests/edge/support does
// (echo origin, JWKS server, RS256 tokens, Miniflare with the THROTTLE Durable
// Object): the support files are TypeScript run by vitest, and a benchmark
// should not depend on a test runner.
//
// Every loop is bounded in count and the whole run in time (--deadline-s,
// default 300): this is a measurement, not a test; it asserts nothing.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { cpus, loadavg, release, type as osType } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

const root = fileURLToPath(new URL("../", import.meta.url));
const buildDir = `${root}build`;
const shim = `${buildDir}/worker/shim.mjs`;

// ---------------------------------------------------------------- options
const args = process.argv.slice(2);
function opt(name, fallback) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = args[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return typeof fallback === "number" ? Number(v) : v;
}
const REQUESTS = Math.min(Math.max(opt("requests", 500), 10), 10_000);
const WARMUP = Math.min(Math.max(opt("warmup", 50), 0), 1_000);
const INSTANCES = Math.min(Math.max(opt("instances", 10), 1), 50);
const DEADLINE = Date.now() + Math.min(opt("deadline-s", 300), 1800) * 1000;
const JSON_OUT = opt("json", "");

function checkDeadline(what) {
  if (Date.now() > DEADLINE) throw new Error(`deadline passed during ${what}: raise --deadline-s or lower --requests`);
}

// ---------------------------------------------------------------- miniflare
const requireFromTests = createRequire(`${root}tests/package.json`);
let Miniflare;
try {
  ({ Miniflare } = await import(pathToFileURL(requireFromTests.resolve("miniflare")).href));
} catch (error) {
  throw new Error(`miniflare is not installed in tests/node_modules: run 'make setup' (${error.message})`);
}
if (!existsSync(shim) || !existsSync(`${buildDir}/index.js`)) {
  throw new Error(`${shim} is missing: build the Worker first (bash scripts/build-worker.sh --release)`);
}
const compatibilityDate =
  /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}wrangler.toml`, "utf8"))?.[1] ?? "2026-07-30";

// ---------------------------------------------------------------- stats
const round = (x, d = 3) => Number(x.toFixed(d));
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    min: round(s[0]),
    p50: round(quantile(s, 0.5)),
    p90: round(quantile(s, 0.9)),
    p99: round(quantile(s, 0.99)),
    max: round(s[s.length - 1]),
  };
}

// ---------------------------------------------------------------- servers on 127.0.0.1
async function listen(handler) {
  const server = createServer(handler);
  server.keepAliveTimeout = 300_000;
  const sockets = new Set();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    hits: 0,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The origin: a small JSON echo, cacheable (the gateway's cache rule decides the TTL). */
async function startOrigin() {
  const origin = await listen((req, res) => {
    req.resume();
    req.on("end", () => {
      origin.hits += 1;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ method: req.method, url: req.url, hit: origin.hits }));
    });
  });
  return origin;
}

async function startJwks(jwk) {
  const jwks = await listen((req, res) => {
    jwks.hits += 1;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  return jwks;
}

// ---------------------------------------------------------------- tokens
const ISSUER = "https://idp.bench.test/";
const AUDIENCE = "https://api.bench.test";
const b64url = (d) => Buffer.from(d).toString("base64url");
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const KID = "bench-rsa-1";
const jwk = { ...publicKey.export({ format: "jwk" }), kid: KID, alg: "RS256", use: "sig" };
/** A distinct RS256 token per call (unique jti), same subject: no verification can be reused. */
function rs256Token(sub = "bench-user") {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: KID }));
  const payload = b64url(
    JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub, iat: now, nbf: now, exp: now + 3600, jti: randomBytes(8).toString("hex") }),
  );
  const input = `${header}.${payload}`;
  return `${input}.${b64url(sign("sha256", Buffer.from(input), privateKey))}`;
}

// ---------------------------------------------------------------- config
function benchConfig(origin, jwks) {
  return `
[gateway]
admin_prefix = "/__tidegate/"
default_timeout = "5s"

[[issuers]]
name = "bench-idp"
issuer = "${ISSUER}"
audiences = ["${AUDIENCE}"]
jwks_url = "${jwks}/jwks.json"
algorithms = ["RS256"]

[issuers.jwks_cache]
ttl = "1h"
max_stale = "1h"
refetch_cooldown = "1h"
negative_ttl = "1h"

# No auth, no limit, no cache: the plain proxy.
[[routes]]
name = "proxy"
path = "/proxy/*"
upstream = "${origin}"
auth = { require = "none" }

# Public, shared cache: the cache-hit budget.
[[routes]]
name = "cached"
methods = ["GET", "HEAD"]
path = "/cached/*"
upstream = "${origin}"
auth = { require = "none" }

[routes.cache]
ttl = "1h"

# RS256 JWT + per-subject limit (Durable Object) + private cache: every query
# is part of the cache key, so a unique query is a MISS that goes to the origin.
[[routes]]
name = "secure"
methods = ["GET", "HEAD"]
path = "/secure/*"
upstream = "${origin}"
auth = { require = "jwt" }

[routes.rate_limit]
limits = [{ name = "per-subject", limit = 1000000000, period = "1h", key = "subject" }]

[routes.cache]
ttl = "1h"
scope = "private"
`;
}

const ADMIN_KEY = `admin_${randomBytes(24).toString("base64url")}`;

/** A trivial JS Worker in the same Miniflare setup: what Miniflare and workerd cost by themselves. */
function newControlMiniflare() {
  return new Miniflare({
    host: "127.0.0.1",
    port: 0,
    compatibilityDate,
    modules: true,
    script: 'export default { fetch() { return new Response("ok"); } };',
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
}

function newMiniflare(config) {
  return new Miniflare({
    host: "127.0.0.1",
    port: 0,
    compatibilityDate,
    modules: true,
    scriptPath: shim,
    modulesRoot: buildDir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    bindings: { TIDEGATE_CONFIG: config, ADMIN_KEY },
    durableObjects: { THROTTLE: { className: "Throttle", useSQLite: true } },
    // The Worker logs one JSON line per request: drain it, do not print it.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
}

// ---------------------------------------------------------------- workerd CPU time (/proc)
const CLK_TCK = 100; // USER_HZ on Linux
/** PIDs of workerd processes that are children of this node process. */
function workerdPids() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === process.pid && /workerd/.test(comm)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}
/** utime + stime of `pids` (all threads), in milliseconds; 10 ms resolution. */
function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  }
  return (ticks * 1000) / CLK_TCK;
}

// ---------------------------------------------------------------- 1. bundle
function bundleSizes() {
  const wasmFiles = [];
  for (const dir of [`${buildDir}/worker`, buildDir]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (f.endsWith(".wasm")) wasmFiles.push(`${dir}/${f}`);
  }
  if (wasmFiles.length === 0) throw new Error("no .wasm in build/ or build/worker/");
  const wasm = wasmFiles.map((f) => ({ file: f.slice(root.length), raw: statSync(f).size, gzip: gzipSync(readFileSync(f), { level: 9 }).length }));
  // The upload: what the Worker's modules are (shim + index.js + wasm), each gzip -9, and as one stream.
  const uploadFiles = [shim, `${buildDir}/index.js`, wasmFiles.find((f) => f.startsWith(`${buildDir}/worker/`)) ?? wasmFiles[0]];
  const buffers = uploadFiles.map((f) => readFileSync(f));
  return {
    wasm,
    upload: {
      files: uploadFiles.map((f) => f.slice(root.length)),
      raw: buffers.reduce((n, b) => n + b.length, 0),
      gzipEach: buffers.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0),
      gzipConcat: gzipSync(Buffer.concat(buffers), { level: 9 }).length,
    },
  };
}

// ---------------------------------------------------------------- 2a. wasm in node
async function wasmInNode(wasmPath) {
  const bytes = readFileSync(wasmPath);
  const compile = [];
  const instantiate = [];
  let instantiateNote = "";
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const module = await WebAssembly.compile(bytes);
    compile.push(performance.now() - t0);
    // The JS glue (index.js) imports cloudflare:workers, which node lacks: give
    // every import a stub of the right kind. Instantiation (memory, tables,
    // data segments) is measured; nothing is called unless a start section does.
    const imports = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      imports[imp.module] ??= {};
      if (imp.kind === "function") imports[imp.module][imp.name] = () => { throw new Error(`stub ${imp.name}`); };
      else if (imp.kind === "memory") imports[imp.module][imp.name] = new WebAssembly.Memory({ initial: 17 });
      else if (imp.kind === "table") imports[imp.module][imp.name] = new WebAssembly.Table({ initial: 0, element: "anyfunc" });
      else if (imp.kind === "global") imports[imp.module][imp.name] = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
      // wasm-bindgen imports WebAssembly.JSTag (JS exceptions) as a tag.
      else if (imp.kind === "tag") imports[imp.module][imp.name] = WebAssembly.JSTag ?? new WebAssembly.Tag({ parameters: ["externref"] });
    }
    try {
      const t1 = performance.now();
      await WebAssembly.instantiate(module, imports);
      instantiate.push(performance.now() - t1);
    } catch (error) {
      instantiateNote = `instantiate with stub imports failed: ${error.message}`;
    }
  }
  return { compile: summary(compile), instantiate: instantiate.length ? summary(instantiate) : null, instantiateNote };
}

// ---------------------------------------------------------------- 2b. startup in Miniflare
async function startup(config) {
  const out = {};
  for (const [label, make, path, init] of [
    ["tidegate", () => newMiniflare(config), "/__tidegate/health", { headers: { authorization: `Bearer ${ADMIN_KEY}` } }],
    ["control", () => newControlMiniflare(), "/", {}],
  ]) {
    const ready = [];
    const first = [];
    const second = [];
    const total = [];
    for (let i = 0; i < INSTANCES; i++) {
      checkDeadline("startup");
      const t0 = performance.now();
      const mf = make();
      try {
        await mf.ready;
        const t1 = performance.now();
        const res = await mf.dispatchFetch(`http://gateway.test${path}`, init);
        await res.text();
        const t2 = performance.now();
        if (res.status !== 200) throw new Error(`${label}: first request answered ${res.status}`);
        const res2 = await mf.dispatchFetch(`http://gateway.test${path}`, init);
        await res2.text();
        const t3 = performance.now();
        ready.push(t1 - t0);
        first.push(t2 - t1);
        second.push(t3 - t2);
        total.push(t2 - t0);
      } finally {
        await mf.dispose();
      }
    }
    out[label] = { ready: summary(ready), firstResponse: summary(first), secondResponse: summary(second), total: summary(total) };
  }
  return out;
}

// ---------------------------------------------------------------- 3. per request
async function perRequest(config, origin) {
  const mf = newMiniflare(config);
  await mf.ready;
  const pids = workerdPids();
  const adminHeaders = { authorization: `Bearer ${ADMIN_KEY}` };
  let seq = 0;
  const scenarios = [
    {
      name: "health (admin key, no origin)",
      expect: { status: 200 },
      make: () => ["/__tidegate/health", { headers: adminHeaders }],
    },
    {
      name: "proxy, no auth (origin on loopback)",
      expect: { status: 200, cache: "BYPASS" },
      make: () => ["/proxy/item", {}],
    },
    {
      name: "cache HIT, public shared route",
      expect: { status: 200, cache: "HIT" },
      make: () => ["/cached/item", {}],
      prime: true,
    },
    {
      name: "RS256 + throttle (DO) + cache MISS",
      expect: { status: 200, cache: "MISS" },
      make: () => {
        seq += 1;
        return [`/secure/item?n=${seq}`, { headers: { authorization: `Bearer ${rs256Token()}` } }];
      },
      tokens: true,
    },
    {
      name: "RS256 + throttle (DO) + cache HIT (private)",
      expect: { status: 200, cache: "HIT" },
      make: () => ["/secure/item?n=fixed", { headers: { authorization: `Bearer ${rs256Token()}` } }],
      tokens: true,
      prime: true,
    },
  ];
  const results = [];
  let idleCpuMsPerS = NaN;
  try {
    // Warm every path first (JIT tier-up of the wasm and of Miniflare's workers
    // runs on workerd's background threads and would land on the first scenario).
    for (let w = 0; w < Math.max(1, WARMUP); w++) {
      checkDeadline("warm-up");
      for (const sc of scenarios) {
        const [path, init] = sc.make();
        await (await mf.dispatchFetch(`http://gateway.test${path}`, init)).text();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (pids.length) {
      const c0 = cpuMs(pids);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      idleCpuMsPerS = round((cpuMs(pids) - c0) / 2, 1);
    }
    for (const sc of scenarios) {
      // Requests are built before timing (RSA signing happens in node, not in the gateway).
      const n = WARMUP + REQUESTS;
      const requests = Array.from({ length: n }, () => sc.make());
      if (sc.prime) {
        const [path, init] = sc.make();
        await (await mf.dispatchFetch(`http://gateway.test${path}`, init)).text();
      }
      const wall = [];
      const serverTiming = new Map();
      let cpuStart = 0;
      let wallStart = 0;
      let originBefore = 0;
      for (let i = 0; i < n; i++) {
        if (i % 50 === 0) checkDeadline(sc.name);
        if (i === WARMUP) {
          cpuStart = pids.length ? cpuMs(pids) : 0;
          originBefore = origin.hits;
          wallStart = performance.now();
        }
        const [path, init] = requests[i];
        const t0 = performance.now();
        const res = await mf.dispatchFetch(`http://gateway.test${path}`, init);
        await res.text();
        const dt = performance.now() - t0;
        const cache = res.headers.get("x-cache-status");
        if (res.status !== sc.expect.status || (sc.expect.cache && cache !== sc.expect.cache)) {
          throw new Error(`${sc.name}: request ${i} answered ${res.status} X-Cache-Status ${cache}, expected ${JSON.stringify(sc.expect)}`);
        }
        if (i >= WARMUP) {
          wall.push(dt);
          for (const part of (res.headers.get("server-timing") ?? "").split(",")) {
            const m = /^\s*([a-z-]+);dur=([\d.]+)/.exec(part);
            if (m) serverTiming.set(m[1], (serverTiming.get(m[1]) ?? []).concat(Number(m[2])));
          }
        }
      }
      const elapsed = performance.now() - wallStart;
      const cpu = pids.length ? cpuMs(pids) - cpuStart : NaN;
      const st = {};
      // Date.now() advances during CPU work in local workerd (it is frozen only in
      // production), so the Worker's whole-ms phases are real; their mean over many
      // requests estimates the sub-ms average despite the 1 ms quantisation.
      for (const [k, v] of serverTiming) st[k] = round(v.reduce((a, b) => a + b, 0) / v.length, 2);
      results.push({
        name: sc.name,
        wall: summary(wall),
        workerdCpuPerRequestMs: round(cpu / REQUESTS),
        elapsedMs: round(elapsed, 1),
        originHits: origin.hits - originBefore,
        serverTimingMean: st,
      });
    }
  } finally {
    await mf.dispose();
  }
  return { workerdPids: pids.length, idleCpuMsPerS, results };
}

// ---------------------------------------------------------------- machine
function machine() {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "?";
  let os = `${osType()} ${release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
    if (pretty) os = `${pretty}, kernel ${release()}`;
  } catch {
    // no os-release
  }
  const mfVersion = JSON.parse(readFileSync(requireFromTests.resolve("miniflare/package.json"), "utf8")).version;
  return { date: new Date().toISOString(), nproc: cpus().length, cpu: model, os, node: process.version, miniflare: mfVersion, loadavg: loadavg().map((x) => round(x, 2)) };
}

// ---------------------------------------------------------------- main
const origin = await startOrigin();
const jwks = await startJwks(jwk);
const config = benchConfig(origin.url, jwks.url);
const report = { machine: machine(), settings: { requests: REQUESTS, warmup: WARMUP, instances: INSTANCES } };
try {
  report.bundle = bundleSizes();
  report.wasmInNode = await wasmInNode(`${root}${report.bundle.wasm[0].file}`);
  report.startup = await startup(config);
  report.perRequest = await perRequest(config, origin);
} finally {
  await origin.close();
  await jwks.close();
}

// ---------------------------------------------------------------- print
const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
const m = report.machine;
console.log(`# edge budgets — ${m.date}`);
console.log(`machine: ${m.nproc} × ${m.cpu}; ${m.os}; node ${m.node}; miniflare ${m.miniflare}`);
console.log(`load average at start / end: ${m.loadavg.join(" ")} / ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`settings: ${REQUESTS} timed requests after ${WARMUP} warm-up per scenario, sequential; ${INSTANCES} fresh instances\n`);
console.log("| measure | figure | budget |");
console.log("|---|---|---|");
for (const w of report.bundle.wasm) console.log(`| ${w.file} raw / gzip -9 | ${kb(w.raw)} / ${kb(w.gzip)} | |`);
const u = report.bundle.upload;
console.log(`| upload (shim + index.js + wasm) raw / gzip -9 per file | ${kb(u.raw)} / ${kb(u.gzipEach)} | < 1 MB gzip |`);
const wn = report.wasmInNode;
console.log(`| node: WebAssembly.compile p50 (min–max) | ${wn.compile.p50} ms (${wn.compile.min}–${wn.compile.max}) | |`);
if (wn.instantiate) console.log(`| node: instantiate, stub imports p50 (min–max) | ${wn.instantiate.p50} ms (${wn.instantiate.min}–${wn.instantiate.max}) | |`);
else console.log(`| node: instantiate | ${wn.instantiateNote} | |`);
for (const [label, s] of Object.entries(report.startup)) {
  const name = label === "tidegate" ? "Tidegate, GET /__tidegate/health" : "control: trivial JS Worker, GET /";
  console.log(`| startup ${name}: new Miniflare → ready p50 (min–max) | ${s.ready.p50} ms (${s.ready.min}–${s.ready.max}) | |`);
  console.log(`| startup ${name}: 1st request on fresh instance p50 (min–max) | ${s.firstResponse.p50} ms (${s.firstResponse.min}–${s.firstResponse.max}) | ${label === "tidegate" ? "< 50 ms" : ""} |`);
  console.log(`| startup ${name}: 2nd request p50 (min–max) | ${s.secondResponse.p50} ms (${s.secondResponse.min}–${s.secondResponse.max}) | |`);
}
console.log("\n| request (warm, sequential) | wall p50 | p90 | p99 | workerd CPU/req | Server-Timing mean (ms) |");
console.log("|---|---|---|---|---|---|");
for (const r of report.perRequest.results) {
  const st = Object.entries(r.serverTimingMean).map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`| ${r.name} | ${r.wall.p50} ms | ${r.wall.p90} ms | ${r.wall.p99} ms | ${r.workerdCpuPerRequestMs} ms | ${st} |`);
}
console.log(`\nworkerd idle CPU after warm-up: ${report.perRequest.idleCpuMsPerS} ms per second (not subtracted).`);
console.log(
  "\nwall = dispatchFetch → body read, in node: an UPPER BOUND on the Worker's CPU (includes Miniflare's dispatch over loopback HTTP," +
    " its entry worker, the DO round trip, the Cache API simulator and the origin). workerd CPU/req = utime+stime of the workerd" +
    " process(es) over the timed requests / count (/proc, 10 ms ticks): every thread of workerd, Miniflare's entry and cache workers" +
    " and the Durable Object included — also an upper bound, but without node, the origin and the network wait.",
);
if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`);
