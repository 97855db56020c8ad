#!/usr/bin/env node
// Load and soak run against `wrangler dev` (workerd, the real Durable Object
// and Cache API): fixed concurrency for a bounded duration over a mix of
// routes, then checks and prints the figures recorded in RELIABILITY.md:
//   - counts per route and status; zero gateway 5xx and zero unexpected statuses;
//   - exact limiting: the hot API key's admitted count equals what GCRA allows
//     over the run (limit + one per emission interval elapsed);
//   - memory, judged after forced GCs (RELIABILITY.md says why): every 5 s, through
//     the inspector, a full GC of the Worker's isolate (its JS heap before and after)
//     and of every other isolate a request passes through in its workerd (Miniflare's
//     entry, cache, outbound services; wrangler's observability collector), then that
//     process's RSS. Fails when, between the medians of the first and last third after
//     warm-up, the JS heap grows > 10 % (and > 0.5 MiB) or that RSS grows > 10 %;
//   - the Worker's own wasm linear memory (admin health's wasm_memory_bytes) every 5 s;
//   - raw RSS of each workerd from /proc every second (anon/file; wrangler's own dev
//     proxy told apart): reported, judged only with --inspect off.
// Usage: node tests/reliability/soak.mjs [--duration 60] [--concurrency 16] [--port 8670]
//        [--inspector-port 9670] [--origin-port 8671] [--jwks-port 8672] [--json out.json]
//        [--runtime wrangler|miniflare]   (miniflare: plain workerd, no dev session)
//        Attribution knobs (RELIABILITY.md): [--inspect on|off] (off: no DevTools client,
//        no forced GC; memory judged on raw RSS, as before), [--heap-snapshots on]
//        (per-constructor diff of the Worker's heap, start → end), [--worker-log off]
//        (the snapshot's glue drops the Worker's console.log), [--cached-keys 20]
//        (distinct cached paths); env SOAK_RUNTIME_ENABLE=1 (enable console events on
//        the Worker's isolate, as wrangler does), SOAK_MF_PERSIST=dir (miniflare: state on disk),
//        SOAK_LEAK=1 (negative control: the glue keeps every incoming Request; must fail).
// Exit status 1 when a check fails. Everything binds 127.0.0.1; wrangler's
// state goes to a fresh directory under .cache/soak/ and is removed after.
import { spawn } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, Agent } from "node:http";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

function parseArgs(argv) {
  const opts = { duration: 60, concurrency: 16, port: 8670, inspectorPort: 9670, originPort: 8671, jwksPort: 8672, json: null, runtime: "wrangler", inspect: "on", heapSnapshots: "off", workerLog: "on", cachedKeys: 20 };
  const names = { "--duration": "duration", "--concurrency": "concurrency", "--port": "port", "--inspector-port": "inspectorPort", "--origin-port": "originPort", "--jwks-port": "jwksPort", "--json": "json", "--runtime": "runtime", "--inspect": "inspect", "--heap-snapshots": "heapSnapshots", "--worker-log": "workerLog", "--cached-keys": "cachedKeys" };
  const text = new Set(["json", "runtime", "inspect", "heapSnapshots", "workerLog"]);
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) throw new Error(`usage: soak.mjs [--duration s] [--concurrency n] [--port p] [--inspector-port p] [--origin-port p] [--jwks-port p] [--json file] [--runtime wrangler|miniflare] [--inspect on|off] [--heap-snapshots on|off] [--worker-log on|off] [--cached-keys n]; got ${argv[i]}`);
    opts[key] = text.has(key) ? argv[i + 1] : Number(argv[i + 1]);
  }
  for (const k of ["inspect", "heapSnapshots", "workerLog"]) if (!["on", "off"].includes(opts[k])) throw new Error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is on or off`);
  if (!(opts.cachedKeys >= 1)) throw new Error("--cached-keys must be at least 1");
  if (!["wrangler", "miniflare"].includes(opts.runtime)) throw new Error("--runtime is wrangler or miniflare");
  if (!(opts.duration > 0) || !(opts.concurrency > 0)) throw new Error("--duration and --concurrency must be positive");
  return opts;
}

const say = (msg) => console.log(`==> [soak] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64url = (x) => Buffer.from(x).toString("base64url");
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

// ---- the origin and the JWKS endpoint ----------------------------------------

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function startOrigin(port) {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      if (req.url.startsWith("/cached/")) res.setHeader("cache-control", "public, max-age=60");
      res.end(JSON.stringify({ url: req.url, subject: req.headers["x-tidegate-subject"] ?? null }));
    });
  });
  server.keepAliveTimeout = 300_000;
  return listen(server, port);
}

function startJwks(port, jwk) {
  let fetches = 0;
  const server = createServer((req, res) => {
    fetches += 1;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  server.keepAliveTimeout = 300_000;
  return listen(server, port).then((s) => ({ server: s, fetches: () => fetches }));
}

// ---- configuration ---------------------------------------------------------------

const ISSUER = "https://soak.tidegate.test/";
const AUDIENCE = "https://api.tidegate.test";
/** The hot key's limit: HOT_LIMIT per HOT_PERIOD_S, keyed by API key. */
const HOT_LIMIT = 100;
const HOT_PERIOD_S = 300;

function gatewayConfig(originUrl, jwksUrl) {
  const upstream = originUrl;
  return {
    gateway: { admin_prefix: "/__tidegate/", default_timeout: "5s" },
    issuers: [
      { name: "soak-idp", issuer: ISSUER, audiences: [AUDIENCE], jwks_url: jwksUrl, algorithms: ["RS256"] },
    ],
    api_keys: { header: "x-api-key" },
    routes: [
      { name: "public", path: "/public/*", upstream, auth: { require: "none" } },
      { name: "cached", methods: ["GET", "HEAD"], path: "/cached/*", upstream, auth: { require: "none" }, cache: { ttl: "1m" } },
      { name: "jwt", path: "/jwt/*", upstream, auth: { require: "jwt" } },
      {
        name: "keyed",
        path: "/keyed/*",
        upstream,
        auth: { require: "api_key" },
        rate_limit: { limits: [{ name: "per-key", limit: 1_000_000, period: "1h", key: "api_key" }] },
      },
      {
        name: "hot",
        path: "/hot",
        upstream,
        auth: { require: "api_key" },
        rate_limit: { limits: [{ name: "per-key", limit: HOT_LIMIT, period: `${HOT_PERIOD_S}s`, key: "api_key" }] },
      },
    ],
  };
}

// ---- wrangler dev and workerd's memory ----------------------------------------

function childrenOf(pid) {
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

function descendants(pid) {
  const all = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    for (const c of childrenOf(p)) {
      all.push(c);
      queue.push(c);
    }
  }
  return all;
}

const commOf = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
};

/** RSS in KiB of `pid`, or null when it is gone. */
function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** RSS of `pid` split as the kernel counts it (KiB): anonymous (heaps), file-backed (code), shared memory. */
function rssParts(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? 0);
    return { rss: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile"), shmem: field("RssShmem") };
  } catch {
    return null;
  }
}

/**
 * Which workerd is which: under wrangler dev, one workerd runs wrangler's own
 * ProxyWorker and InspectorProxyWorker (it owns the listening socket on
 * `port`), the other runs the Worker. Plain Miniflare has only the latter.
 */
function workerdRoles(pids, port) {
  const inodes = new Set();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 9 && f[3] === "0A" && parseInt(f[1].split(":").pop(), 16) === port) inodes.add(f[9]);
      }
    } catch {
      /* no such table */
    }
  }
  const owns = (pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          return m !== null && inodes.has(m[1]);
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  };
  return Object.fromEntries(pids.map((p) => [p, pids.length > 1 && owns(p) ? "wrangler-proxy" : "worker"]));
}

// ---- the isolate's JS heap, through the inspector (Chrome DevTools Protocol) ----

/**
 * A DevTools client on the inspector port: wrangler's inspector proxy, or
 * Miniflare's. Console events the Worker sends are read and dropped.
 */
async function openInspector(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  if (!Array.isArray(targets) || targets.length === 0) throw new Error(`no inspector target on port ${port}`);
  return connectCdp(targets[0].webSocketDebuggerUrl);
}

/**
 * DevTools clients on every other isolate of the Worker's workerd (Miniflare's
 * own services: the entry router, the Cache API simulator, the outbound
 * service...), through the runtime's inspector address (`--inspector-addr`).
 * Each request passes through some of them, so their garbage is part of the
 * process's RSS too. Empty when the process has no inspector address.
 */
async function openServiceIsolates(pid) {
  let addr;
  try {
    addr = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").find((a) => a.startsWith("--inspector-addr="))?.slice("--inspector-addr=".length);
  } catch {
    return [];
  }
  if (!addr) return [];
  // Port 0 (wrangler) means "any": then try the process's listening sockets.
  const host = addr.slice(0, addr.lastIndexOf(":"));
  const candidates = addr.endsWith(":0") ? listeningPorts(pid).map((p) => `${host}:${p}`) : [addr];
  let targets = null;
  for (const c of candidates) {
    try {
      const res = await fetch(`http://${c}/json`, { signal: AbortSignal.timeout(2_000) });
      const list = await res.json();
      if (Array.isArray(list) && list.some((x) => String(x.id).startsWith("core:"))) {
        addr = c;
        targets = list;
        break;
      }
    } catch {
      /* not the inspector */
    }
  }
  if (!targets) return [];
  // Only the services a request passes through (wrangler adds an
  // observability collector that receives every request's trace): the others
  // (D1, KV, R2... simulators wrangler starts unused) answer slowly or not at all.
  const used = targets.filter((x) => /^(core:entry$|cache:|outbound:|core:user:miniflare-observability)/.test(String(x.id)));
  const opened = await Promise.all(
    used.map((t) =>
      Promise.race([connectCdp(`ws://${addr}/${t.id}`), sleep(5_000).then(() => null)])
        .then((cdp) => (cdp ? { name: t.id, cdp } : null))
        .catch(() => null),
    ),
  );
  return opened.filter(Boolean);
}

/** The TCP ports `pid` listens on. */
function listeningPorts(pid) {
  const inodes = new Set();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        /* closed */
      }
    }
  } catch {
    return [];
  }
  const ports = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 9 && f[3] === "0A" && inodes.has(f[9])) ports.push(parseInt(f[1].split(":").pop(), 16));
      }
    } catch {
      /* no such table */
    }
  }
  return ports;
}

async function connectCdp(url) {
  const { default: WebSocket } = await import("ws");
  const ws = new WebSocket(url, { headers: { origin: "http://127.0.0.1" }, maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const pending = new Map();
  const listeners = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString("utf8"));
    if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(`${msg.error.message} (${msg.error.code})`));
      else resolve(msg.result);
    } else if (msg.method && listeners.has(msg.method)) listeners.get(msg.method)(msg.params);
  });
  const send = (method, params = {}, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const n = ++id;
      pending.set(n, { resolve, reject });
      ws.send(JSON.stringify({ id: n, method, params }));
      setTimeout(() => {
        if (pending.delete(n)) reject(new Error(`inspector: ${method} timed out`));
      }, timeoutMs).unref();
    });
  return {
    send,
    on: (method, fn) => listeners.set(method, fn),
    close: () => ws.close(),
  };
}

/** The isolate's JS heap (bytes) as V8 counts it, before and after a full GC. */
async function jsHeap(inspector) {
  const before = await inspector.send("Runtime.getHeapUsage", {}, 10_000);
  await inspector.send("HeapProfiler.collectGarbage", {}, 10_000);
  const after = await inspector.send("Runtime.getHeapUsage", {}, 10_000);
  return { used: before.usedSize, total: before.totalSize, usedAfterGc: after.usedSize, totalAfterGc: after.totalSize };
}

/**
 * A heap snapshot summarised per constructor (count, self bytes); the
 * snapshot itself forces a GC first, so only live objects are counted.
 */
async function heapSummary(inspector) {
  const chunks = [];
  inspector.on("HeapProfiler.addHeapSnapshotChunk", (p) => chunks.push(p.chunk));
  await inspector.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, 180_000);
  const snap = JSON.parse(chunks.join(""));
  const meta = snap.snapshot.meta;
  const width = meta.node_fields.length;
  const typeAt = meta.node_fields.indexOf("type");
  const nameAt = meta.node_fields.indexOf("name");
  const sizeAt = meta.node_fields.indexOf("self_size");
  const types = meta.node_types[typeAt];
  const byName = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]];
    const name = type === "object" || type === "closure" || type === "native" ? `${type === "closure" ? "(closure) " : ""}${snap.strings[snap.nodes[i + nameAt]]}` : `(${type})`;
    const size = snap.nodes[i + sizeAt];
    total += size;
    const e = byName.get(name) ?? { count: 0, bytes: 0 };
    e.count += 1;
    e.bytes += size;
    byName.set(name, e);
  }
  return { total, byName };
}

/** The constructors whose live count or bytes grew most between two summaries. */
function heapGrowth(a, b, top = 12) {
  const rows = [];
  for (const [name, e] of b.byName) {
    const was = a.byName.get(name) ?? { count: 0, bytes: 0 };
    rows.push({ name, count: e.count, count_delta: e.count - was.count, bytes: e.bytes, bytes_delta: e.bytes - was.bytes });
  }
  rows.sort((x, y) => y.bytes_delta - x.bytes_delta);
  return rows.slice(0, top);
}

/**
 * A wrangler config for a snapshot of the built Worker: wrangler.toml's
 * bindings without its [build] command, so the run measures build/ as it
 * was at the start (make soak builds first), neither rebuilding at start-up
 * nor reloading if build/ changes during the run.
 */
function soakWranglerConfig(work, runId, workerLog) {
  cpSync(`${root}build`, `${work}/build-${runId}`, { recursive: true });
  if (workerLog === "off") {
    // A measurement knob only (--worker-log off): the snapshot's glue drops
    // the Worker's console.log (its one JSON line per request); warnings stay.
    const glue = `${work}/build-${runId}/index.js`;
    const js = readFileSync(glue, "utf8");
    const patched = js.replace(/(__wbg_log_[0-9a-f]+:function\((\w)\))\{console\.log\(\2\)\}/, "$1{}");
    if (patched === js) throw new Error("--worker-log off: the console.log import was not found in build/index.js");
    writeFileSync(glue, patched);
  }
  if (process.env.SOAK_LEAK === "1") {
    // Negative control (env SOAK_LEAK=1): the snapshot's glue keeps every
    // incoming Request in a global array, a leak of JS objects and the native
    // memory they own (headers, cf, body); the memory checks must fail on it.
    const glue = `${work}/build-${runId}/index.js`;
    const js = readFileSync(glue, "utf8");
    const patched = js.replace(/\{let (\w);c\(\);try\{\1=i\.fetch\((\w),(\w),(\w)\)/, "{let $1;(globalThis.__soakLeak??=[]).push($2);c();try{$1=i.fetch($2,$3,$4)");
    if (patched === js) throw new Error("SOAK_LEAK=1: the Worker's fetch entry was not found in build/index.js");
    writeFileSync(glue, patched);
  }
  const main = readFileSync(`${root}wrangler.toml`, "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(main)?.[1];
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  const file = `${work}/wrangler-${runId}.toml`;
  writeFileSync(
    file,
    [
      'name = "tidegate-soak"',
      `main = "build-${runId}/worker/shim.mjs"`,
      `compatibility_date = "${date}"`,
      "",
      "[[durable_objects.bindings]]",
      'name = "THROTTLE"',
      'class_name = "Throttle"',
      "",
      "[[migrations]]",
      'tag = "v1"',
      'new_sqlite_classes = ["Throttle"]',
      "",
    ].join("\n"),
  );
  return file;
}

async function startWrangler(opts, envFile, persistDir, logFile, configFile) {
  const args = [
    "dev",
    "--config", configFile,
    "--local",
    "--ip", "127.0.0.1",
    "--port", String(opts.port),
    "--inspector-port", String(opts.inspectorPort),
    "--persist-to", persistDir,
    "--env-file", envFile,
    "--show-interactive-dev-session=false",
    "--log-level", "warn",
  ];
  const child = spawn(`${root}tests/node_modules/.bin/wrangler`, args, {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const log = [];
  for (const s of [child.stdout, child.stderr]) s.on("data", (c) => log.push(c.toString("utf8")));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  // Ready when health answers.
  const deadline = Date.now() + 3 * 60_000;
  while (Date.now() < deadline) {
    const code = await Promise.race([exited, sleep(500).then(() => undefined)]);
    if (code !== undefined) {
      writeFileSync(logFile, log.join(""));
      throw new Error(`wrangler dev exited with ${code} before it was ready; its output is in ${logFile}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${opts.port}/__tidegate/health`);
      await res.text();
      if (res.status === 401 || res.status === 200) {
        return { child, log, stop: () => stopWrangler(child, exited, log, logFile) };
      }
    } catch {
      /* not up yet */
    }
  }
  await stopWrangler(child, exited, log, logFile);
  throw new Error(`wrangler dev did not answer on port ${opts.port} within 3 min; output in ${logFile}`);
}

/**
 * The same Worker in plain Miniflare (workerd without wrangler's dev
 * session or inspector), to tell the runtime's memory from the dev tool's.
 */
async function startMiniflare(opts, buildDir, bindings) {
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: opts.port,
    ...(opts.inspect === "on" ? { inspectorPort: opts.inspectorPort } : {}),
    // Attribution knob: persist the Durable Object and Cache API state on disk, as wrangler dev does.
    ...(process.env.SOAK_MF_PERSIST ? { defaultPersistRoot: process.env.SOAK_MF_PERSIST } : {}),
    compatibilityDate: /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}wrangler.toml`, "utf8"))[1],
    modules: true,
    scriptPath: `${buildDir}/worker/shim.mjs`,
    modulesRoot: buildDir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    bindings,
    durableObjects: { THROTTLE: { className: "Throttle", useSQLite: true }, HEALTH: { className: "HealthMonitor", useSQLite: true } },
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  await mf.ready;
  return { child: { pid: process.pid }, stop: () => mf.dispose() };
}

async function stopWrangler(child, exited, log, logFile) {
  // Our own process group only (detached above): wrangler and the workerd it started.
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    /* already gone */
  }
  const code = await Promise.race([exited, sleep(5_000).then(() => "timeout")]);
  if (code === "timeout") {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  writeFileSync(logFile, log.join(""));
}

// ---- the load --------------------------------------------------------------------

function makeRequests(tokens, keys, cachedKeys) {
  // One slot per kind; workers take them round-robin. expected: statuses that are not failures.
  return [
    { kind: "public", path: (i) => `/public/item-${i % 500}`, headers: {}, expected: [200] },
    { kind: "cached", path: (i) => `/cached/item-${i % cachedKeys}`, headers: {}, expected: [200] },
    { kind: "jwt", path: (i) => `/jwt/item-${i % 100}`, headers: (i) => ({ authorization: `Bearer ${tokens[i % tokens.length]}` }), expected: [200] },
    { kind: "api-key", path: (i) => `/keyed/item-${i % 100}`, headers: { "x-api-key": keys.normal }, expected: [200] },
    { kind: "hot-key", path: () => "/hot", headers: { "x-api-key": keys.hot }, expected: [200, 429] },
    { kind: "bad-token", path: (i) => `/jwt/bad-${i % 10}`, headers: { authorization: "Bearer not.a.token" }, expected: [401] },
    { kind: "no-route", path: (i) => `/nowhere/${i % 10}`, headers: {}, expected: [404] },
  ];
}

function send(agent, port, path, headers) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = httpRequest({ host: "127.0.0.1", port, path, headers, agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, at: Date.now() }));
      res.on("error", () => resolve({ status: "error", ms: performance.now() - started, at: Date.now() }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: "error", ms: performance.now() - started, at: Date.now() }));
    req.end();
  });
}

/** The isolate's wasm linear memory in bytes, from the admin health endpoint (null if unreadable). */
async function wasmMemoryBytes(port, adminKey) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/__tidegate/health`, { headers: { authorization: `Bearer ${adminKey}` } });
    const body = await res.json();
    return typeof body.wasm_memory_bytes === "number" ? body.wasm_memory_bytes : null;
  } catch {
    return null;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---- main --------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const runId = randomBytes(4).toString("hex");
  const work = `${root}.cache/soak`;
  const persistDir = `${work}/state-${runId}`;
  const envFile = `${work}/env-${runId}`;
  const logFile = `${work}/wrangler-${runId}.log`;
  mkdirSync(work, { recursive: true });

  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "soak-1", alg: "RS256", use: "sig" };
  const now = Math.floor(Date.now() / 1000);
  const tokens = Array.from({ length: 20 }, (_, i) => {
    const input = `${b64url(JSON.stringify({ alg: "RS256", kid: "soak-1", typ: "JWT" }))}.${b64url(
      JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: `user-${i}`, iat: now, exp: now + 7200 }),
    )}`;
    return `${input}.${b64url(sign("sha256", Buffer.from(input), privateKey))}`;
  });
  const keys = { normal: `tg_soak_${randomBytes(24).toString("base64url")}`, hot: `tg_soak_${randomBytes(24).toString("base64url")}` };
  const apiKeys = [
    { id: "soak-normal", consumer: "soak", sha256: sha256(keys.normal), scopes: [] },
    { id: `soak-hot-${runId}`, consumer: "soak-hot", sha256: sha256(keys.hot), scopes: [] },
  ];

  const origin = await startOrigin(opts.originPort);
  const jwks = await startJwks(opts.jwksPort, jwk);
  const config = gatewayConfig(`http://127.0.0.1:${opts.originPort}`, `http://127.0.0.1:${opts.jwksPort}/jwks.json`);
  // One line per variable: JSON needs no quoting in a dotenv file when wrapped in single quotes.
  writeFileSync(
    envFile,
    `TIDEGATE_CONFIG='${JSON.stringify(config)}'\nAPI_KEYS='${JSON.stringify(apiKeys)}'\nADMIN_KEY='admin_${runId}'\n`,
    { mode: 0o600 },
  );

  say(`starting ${opts.runtime === "wrangler" ? `wrangler dev (inspector ${opts.inspectorPort})` : "Miniflare"} on 127.0.0.1:${opts.port}, state in ${persistDir}`);
  let wrangler;
  let inspector = null;
  let services = [];
  const cleanup = async () => {
    inspector?.close();
    for (const x of services) x.cdp.close();
    if (wrangler) await wrangler.stop();
    origin.close();
    jwks.server.close();
    rmSync(persistDir, { recursive: true, force: true });
    rmSync(`${work}/build-${runId}`, { recursive: true, force: true });
    rmSync(`${work}/wrangler-${runId}.toml`, { force: true });
    rmSync(envFile, { force: true });
  };
  try {
    if (!existsSync(`${root}build/worker/shim.mjs`)) throw new Error("build/worker/shim.mjs is missing: run `make soak` (it builds first) or scripts/build-worker.sh --release");
    const wranglerConfig = soakWranglerConfig(work, runId, opts.workerLog);
    wrangler =
      opts.runtime === "wrangler"
        ? await startWrangler(opts, envFile, persistDir, logFile, wranglerConfig)
        : await startMiniflare(opts, `${work}/build-${runId}`, { TIDEGATE_CONFIG: JSON.stringify(config), API_KEYS: JSON.stringify(apiKeys), ADMIN_KEY: `admin_${runId}` });
    const workerd = descendants(wrangler.child.pid).filter((p) => commOf(p) === "workerd");
    if (workerd.length === 0) throw new Error("no workerd process under wrangler dev: cannot sample memory");
    const roles = workerdRoles(workerd, opts.port);
    say(`ready; workerd pid(s) ${workerd.map((p) => `${p} (${roles[p]})`).join(", ")}; ${opts.concurrency} in flight for ${opts.duration} s`);
    // The inspector client: connected before the load, so that wrangler's
    // inspector proxy forwards the runtime's console events to it instead of
    // buffering them while no DevTools is attached (see RELIABILITY.md).
    inspector = opts.inspect === "on" ? await openInspector(opts.inspectorPort) : null;
    // Attribution knob: enable the Runtime domain (console events) on the
    // Worker's isolate, as wrangler's inspector proxy always does.
    if (inspector && process.env.SOAK_RUNTIME_ENABLE === "1") await inspector.send("Runtime.enable");
    const workerPid = workerd.find((p) => roles[p] === "worker");
    services = inspector ? await openServiceIsolates(workerPid) : [];
    if (inspector) say(`inspector: the Worker's isolate${services.length ? ` and ${services.length} service isolates (${services.map((x) => x.name).join(", ")})` : ""}, a forced GC every 5 s`);

    const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
    const requests = makeRequests(tokens, keys, opts.cachedKeys);
    // Warm-up: one of each, so compilation and the JWKS fetch are not in the
    // figures. The hot key's warm-up request is its bucket's first check; it
    // goes last, right before the load: the GCRA bounds below assume demand
    // from that check on, and an idle gap of more than one emission interval
    // (the first heap samples take seconds) would refill the bucket.
    for (const r of requests.filter((x) => x.kind !== "hot-key")) {
      await send(agent, opts.port, r.path(0), typeof r.headers === "function" ? r.headers(0) : r.headers);
    }
    const hotRequest = requests.find((x) => x.kind === "hot-key");

    const heapStart = opts.heapSnapshots === "on" && inspector ? await heapSummary(inspector) : null;
    const samples = [];
    const sampleRss = () => {
      const parts = Object.fromEntries(workerd.map((p) => [p, rssParts(p)]));
      samples.push({ t: Date.now(), kib: workerd.reduce((sum, p) => sum + (parts[p]?.rss ?? 0), 0), parts });
    };
    sampleRss();
    const sampler = setInterval(sampleRss, 1_000);
    const wasmSamples = [];
    const sampleWasm = async () => wasmSamples.push({ t: Date.now(), bytes: await wasmMemoryBytes(opts.port, `admin_${runId}`) });
    await sampleWasm();
    const wasmSampler = setInterval(sampleWasm, 5_000);
    // Every 5 s (one round at a time): the Worker's JS heap before and after
    // a forced full GC, a forced GC of every other isolate in its workerd,
    // then that process's RSS: memory still held once all garbage is gone.
    const heapSamples = [];
    let heapBusy = false;
    const sampleHeap = async () => {
      if (!inspector || heapBusy) return;
      heapBusy = true;
      try {
        const heap = await jsHeap(inspector);
        const serviceHeaps = await Promise.all(
          services.map(async (x) => {
            const before = await x.cdp.send("Runtime.getHeapUsage", {}, 10_000).catch(() => null);
            await x.cdp.send("HeapProfiler.collectGarbage", {}, 10_000).catch(() => {});
            return [x.name, before ? +(before.usedSize / 1048576).toFixed(2) : null];
          }),
        );
        heapSamples.push({ t: Date.now(), ...heap, workerRss: rssParts(workerPid), services: Object.fromEntries(serviceHeaps) });
      } catch (error) {
        say(error.message);
      } finally {
        heapBusy = false;
      }
    };
    await sampleHeap();
    // Every 5 s, more often for short runs: the judgement needs at least 6 samples.
    const heapSampler = setInterval(sampleHeap, Math.max(1_000, Math.min(5_000, (opts.duration * 1_000) / 12)));

    const hotSentAt = Date.now();
    const hotWarm = { sentAt: hotSentAt, ...(await send(agent, opts.port, hotRequest.path(0), hotRequest.headers)) };
    if (hotWarm.status !== 200) throw new Error(`the hot key's first request answered ${hotWarm.status}, not 200`);

    const results = [];
    let next = 0;
    const started = Date.now();
    const deadline = started + opts.duration * 1_000;
    const worker = async () => {
      while (Date.now() < deadline) {
        const i = next++;
        const r = requests[i % requests.length];
        const headers = typeof r.headers === "function" ? r.headers(i) : r.headers;
        const sentAt = Date.now();
        const res = await send(agent, opts.port, r.path(i), headers);
        results.push({ kind: r.kind, ok: r.expected.includes(res.status), sentAt, ...res });
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const elapsed = Date.now() - started;
    clearInterval(sampler);
    clearInterval(wasmSampler);
    clearInterval(heapSampler);
    while (heapBusy) await sleep(50);
    sampleRss();
    await sampleWasm();
    await sampleHeap();
    agent.destroy();
    const heapEnd = heapStart ? await heapSummary(inspector) : null;

    // ---- figures ----
    const byKind = {};
    for (const r of results) {
      const k = (byKind[r.kind] ??= { total: 0, statuses: {} });
      k.total += 1;
      k.statuses[r.status] = (k.statuses[r.status] ?? 0) + 1;
    }
    const gateway5xx = results.filter((r) => typeof r.status === "number" && r.status >= 500).length;
    const errors = results.filter((r) => r.status === "error").length;
    const unexpected = results.filter((r) => !r.ok).length;
    const latencies = results.map((r) => r.ms).sort((a, b) => a - b);

    // GCRA under continuous demand: HOT_LIMIT at once, then one per emission
    // interval T. Each check happened between a request's send and its answer,
    // so the time from the first check (warm-up) to the last lies in [eMin, eMax].
    const hot = results.filter((r) => r.kind === "hot-key");
    const admitted = hot.filter((r) => r.status === 200).length + 1;
    const interval = (HOT_PERIOD_S * 1_000) / HOT_LIMIT;
    const eMin = Math.max(...hot.map((r) => r.sentAt)) - hotWarm.at;
    const eMax = Math.max(...hot.map((r) => r.at)) - hotWarm.sentAt;
    const expectedMin = HOT_LIMIT + Math.floor(eMin / interval);
    const expectedMax = HOT_LIMIT + Math.floor(eMax / interval);
    const overDemand = hot.length + 1 > expectedMax;

    const afterWarm = samples.filter((s) => s.t >= started + Math.min(10_000, elapsed / 6));
    const startKiB = afterWarm[0]?.kib ?? samples[0].kib;
    const endKiB = samples[samples.length - 1].kib;
    const maxKiB = Math.max(...samples.map((s) => s.kib));
    // Least-squares slope of RSS over the run after warm-up, in MiB per minute.
    const n = afterWarm.length;
    const mt = afterWarm.reduce((a, s) => a + s.t, 0) / n;
    const mk = afterWarm.reduce((a, s) => a + s.kib, 0) / n;
    const slope = afterWarm.reduce((a, s) => a + (s.t - mt) * (s.kib - mk), 0) / Math.max(1, afterWarm.reduce((a, s) => a + (s.t - mt) ** 2, 0));
    const slopeMiBPerMin = (slope * 60_000) / 1024;
    const growthPct = ((endKiB - startKiB) / startKiB) * 100;
    // Memory is "not growing" if the end is within 10 % of the post-warm-up start,
    // or the trend is under 2 MiB per minute.
    const rawRssHeld = growthPct <= 10 || slopeMiBPerMin < 2;
    // With the inspector (the default), memory is judged after forced GCs
    // (RELIABILITY.md, "Load and soak": the raw RSS rise is garbage V8 has not
    // collected yet, mostly native memory its wrappers hold, plus wrangler's
    // own dev proxy). Medians of the first and last third after warm-up:
    //   - the Worker's JS heap after GC: within 10 % or 0.5 MiB;
    //   - the Worker's workerd RSS after GC of all its isolates: within 10 %.
    const warm = started + Math.min(10_000, elapsed / 6);
    const judged = heapSamples.filter((h) => h.t >= warm && h.t <= started + elapsed + 5_000);
    const median = (xs) => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length === 0 ? null : v[Math.floor(v.length / 2)];
    };
    const third = Math.floor(judged.length / 3);
    const ends = (f) => (third >= 2 ? [median(judged.slice(0, third).map(f)), median(judged.slice(-third).map(f))] : [null, null]);
    const [heapFirst, heapLast] = ends((h) => h.usedAfterGc);
    const [gcRssFirst, gcRssLast] = ends((h) => h.workerRss?.rss ?? 0);
    const heapHeld = heapFirst !== null && heapLast - heapFirst <= Math.max(0.1 * heapFirst, 0.5 * 1048576);
    const gcRssHeld = gcRssFirst !== null && gcRssLast - gcRssFirst <= 0.1 * gcRssFirst;
    const memoryHeld = inspector ? heapHeld && gcRssHeld : rawRssHeld;
    // The Worker's linear memory only grows; after warm-up it should stay put.
    const wasmRead = wasmSamples.filter((s) => s.bytes !== null);
    const wasmStart = wasmRead[0]?.bytes ?? null;
    const wasmEnd = wasmRead[wasmRead.length - 1]?.bytes ?? null;
    const wasmHeld = wasmStart !== null && wasmEnd !== null && wasmEnd <= wasmStart * 1.1;

    const mib = (kib) => +(kib / 1024).toFixed(1);
    const firstParts = afterWarm[0]?.parts ?? samples[0].parts;
    const lastParts = samples[samples.length - 1].parts;
    const perProcess = workerd.map((p) => ({
      pid: p,
      role: roles[p],
      start: Object.fromEntries(Object.entries(firstParts[p] ?? {}).map(([k, v]) => [k, mib(v)])),
      end: Object.fromEntries(Object.entries(lastParts[p] ?? {}).map(([k, v]) => [k, mib(v)])),
    }));
    const heapMiB = (b) => +(b / 1048576).toFixed(2);
    const summary = {
      run: runId,
      command: `node tests/reliability/soak.mjs --duration ${opts.duration} --concurrency ${opts.concurrency} --runtime ${opts.runtime} --inspect ${opts.inspect} --worker-log ${opts.workerLog} --cached-keys ${opts.cachedKeys}${process.env.MINIFLARE_WORKERD_V8_FLAGS ? ` (MINIFLARE_WORKERD_V8_FLAGS="${process.env.MINIFLARE_WORKERD_V8_FLAGS}")` : ""}`,
      duration_s: elapsed / 1000,
      concurrency: opts.concurrency,
      requests: results.length,
      rps: Math.round((results.length / elapsed) * 1000),
      latency_ms: { p50: +percentile(latencies, 50).toFixed(1), p95: +percentile(latencies, 95).toFixed(1), p99: +percentile(latencies, 99).toFixed(1), max: +latencies[latencies.length - 1].toFixed(1) },
      by_kind: byKind,
      gateway_5xx: gateway5xx,
      connection_errors: errors,
      unexpected_statuses: unexpected,
      hot_key: { limit: HOT_LIMIT, period_s: HOT_PERIOD_S, sent: hot.length + 1, emission_interval_ms: interval, admitted, expected_min: expectedMin, expected_max: expectedMax, first_to_last_check_ms: [eMin, eMax], over_demand: overDemand },
      jwks_fetches: jwks.fetches(),
      worker_wasm_memory_mib: {
        start: wasmStart === null ? null : +(wasmStart / 1048576).toFixed(2),
        end: wasmEnd === null ? null : +(wasmEnd / 1048576).toFixed(2),
        samples: wasmRead.length,
      },
      workerd_rss_mib: {
        start: +(startKiB / 1024).toFixed(1),
        end: +(endKiB / 1024).toFixed(1),
        max: +(maxKiB / 1024).toFixed(1),
        growth_pct: +growthPct.toFixed(1),
        slope_mib_per_min: +slopeMiBPerMin.toFixed(2),
        samples: samples.length,
        // Every 10th sample: seconds since the start of the load → MiB.
        series: samples.filter((_, i) => i % 10 === 0 || i === samples.length - 1).map((x) => [Math.round((x.t - started) / 1000), +(x.kib / 1024).toFixed(1)]),
        per_process: perProcess,
        // Every 10th sample per process: seconds → [anon, file] MiB.
        per_process_series: Object.fromEntries(
          workerd.map((p) => [`${p} ${roles[p]}`, samples.filter((_, i) => i % 10 === 0 || i === samples.length - 1).map((x) => [Math.round((x.t - started) / 1000), mib(x.parts[p]?.anon ?? 0), mib(x.parts[p]?.file ?? 0)])]),
        ),
      },
      // The isolate's JS heap: seconds → [used, used after a forced GC, heap size after it] MiB.
      // Every sample: seconds → [JS heap used, used after a forced GC, heap size after it, the Worker's workerd RSS after GC of all its isolates] MiB.
      js_heap_mib: heapSamples.length === 0 ? null : heapSamples.map((h) => [Math.round((h.t - started) / 1000), heapMiB(h.used), heapMiB(h.usedAfterGc), heapMiB(h.totalAfterGc), mib(h.workerRss?.rss ?? 0)]),
      after_gc: inspector
        ? {
            judged_samples: judged.length,
            service_isolates: services.map((x) => x.name),
            // Each service isolate's JS heap used before its forced GC (MiB), per sample.
            service_heaps_mib: heapSamples.map((h) => [Math.round((h.t - started) / 1000), h.services]),
            js_heap_mib: { first_third: heapFirst === null ? null : heapMiB(heapFirst), last_third: heapLast === null ? null : heapMiB(heapLast), held: heapHeld },
            worker_rss_mib: { first_third: gcRssFirst === null ? null : mib(gcRssFirst), last_third: gcRssLast === null ? null : mib(gcRssLast), held: gcRssHeld },
          }
        : null,
      heap_snapshot_growth: heapStart && heapEnd ? { start_mib: heapMiB(heapStart.total), end_mib: heapMiB(heapEnd.total), top: heapGrowth(heapStart, heapEnd) } : null,
    };
    console.log(JSON.stringify(summary, null, 2));
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify(summary, null, 2)}\n`);

    const failures = [];
    if (gateway5xx > 0) failures.push(`${gateway5xx} responses were 5xx`);
    if (errors > 0) failures.push(`${errors} requests failed at the connection`);
    if (unexpected > 0) failures.push(`${unexpected} responses had an unexpected status`);
    if (!overDemand) failures.push(`the hot key was not over its limit (${hot.length} sent): raise --concurrency or --duration`);
    if (overDemand && (admitted < expectedMin || admitted > expectedMax)) failures.push(`hot key admitted ${admitted}, GCRA allows ${expectedMin}..${expectedMax}`);
    if (!wasmHeld) failures.push(`the Worker's wasm memory grew from ${wasmStart} to ${wasmEnd} bytes`);
    if (!inspector && !memoryHeld) failures.push(`workerd RSS grew ${growthPct.toFixed(1)} % (${slopeMiBPerMin.toFixed(2)} MiB/min) (--inspect off: raw RSS, no forced GC)`);
    if (inspector && third < 2) failures.push(`only ${judged.length} heap samples after warm-up: too few to judge memory (a longer --duration)`);
    else if (inspector && !heapHeld) failures.push(`the Worker's JS heap after GC grew from ${heapFirst} to ${heapLast} bytes (medians of the first and last third)`);
    if (inspector && third >= 2 && !gcRssHeld) failures.push(`the Worker's workerd RSS after GC grew from ${mib(gcRssFirst ?? 0)} to ${mib(gcRssLast ?? 0)} MiB (medians of the first and last third)`);
    if (failures.length) {
      for (const f of failures) say(`FAIL: ${f}`);
      process.exitCode = 1;
    } else {
      say(`ok: ${results.length} requests, 0 gateway 5xx, hot key admitted ${admitted} (GCRA ${expectedMin}..${expectedMax}), ${inspector ? `after GC: JS heap ${heapMiB(heapFirst)} → ${heapMiB(heapLast)} MiB, the Worker's workerd RSS ${mib(gcRssFirst)} → ${mib(gcRssLast)} MiB; ` : ""}raw RSS (all workerd, no forced GC) ${summary.workerd_rss_mib.start} → ${summary.workerd_rss_mib.end} MiB (max ${summary.workerd_rss_mib.max})`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((error) => {
  console.error(`==> [soak] error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
