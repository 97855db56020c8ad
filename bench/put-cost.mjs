// What a Cache API `put` costs in workerd, by how the stored response's body
// is handed over (issue 16: the MISS path). One workerd, one Worker per
// option; each fetches the origin (≈ 100-byte JSON) for a new key per
// request and stores it in `waitUntil`, so the difference in workerd CPU per
// request against `none` (fetch only) is the put's cost, the Cache API
// simulator's share included (Miniflare runs the cache as a service in the
// same workerd; in production it is not the Worker's CPU). No inspector.
//
// Usage: node bench/put-cost.mjs [--rounds 3] [--seconds 3] [--port-base 8780]
import { numberOption } from "./lib/args.mjs";
import { runWrk, wrkVersion } from "./lib/load.mjs";
import { childPids, cpuMs, load } from "./lib/proc.mjs";
import { startOrigin } from "./lib/servers.mjs";
import { round, spread } from "./lib/stats.mjs";
import { compatibilityDate, loadMiniflare, sharedOptions, writeCacheFile } from "./lib/workers.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback, min, max) => numberOption(args, name, fallback, min, max);
const O = { rounds: opt("rounds", 3, 1, 10), seconds: opt("seconds", 3, 1, 30), portBase: opt("port-base", 8780, 1024, 65000) };
const log = (...a) => console.error("[bench-put-cost]", ...a);
if (!wrkVersion()) throw new Error("wrk is missing: run bash bench/edge.sh once (it installs it) or apt-get install wrk");

const HEADERS = `{ "content-type": fresh.headers.get("content-type") ?? "application/json", "cache-control": "max-age=3600" }`;
const OPTIONS = {
  none: "return fresh;",
  // The peer's and the I/O floor's way: the response's clone, a stream.
  "put-stream": `const r = new Response(fresh.body, fresh); r.headers.set("cache-control", "max-age=3600");
    ctx.waitUntil(caches.default.put(key, r.clone())); return r;`,
  // Tidegate's way: the body read whole from a tee, then stored as a buffer.
  "put-buffer": `const [mine, copy] = fresh.body.tee();
    ctx.waitUntil((async () => { const buf = await new Response(copy).arrayBuffer();
      await caches.default.put(key, new Response(buf, { status: 200, headers: ${HEADERS} })); })());
    return new Response(mine, fresh);`,
  // The tee read whole, then stored as a stream of that buffer.
  "put-buffer-stream": `const [mine, copy] = fresh.body.tee();
    ctx.waitUntil((async () => { const buf = await new Response(copy).arrayBuffer();
      await caches.default.put(key, new Response(new Blob([buf]).stream(), { status: 200, headers: ${HEADERS} })); })());
    return new Response(mine, fresh);`,
};

const origin = await startOrigin(O.portBase);
const workers = Object.entries(OPTIONS).map(([name, body], i) => ({
  name,
  port: O.portBase + 2 + i,
  script: `let n = 0;
export default { async fetch(request, env, ctx) {
  const key = "https://cache.put-cost/" + (n += 1) + "/" + Math.random();
  const fresh = await fetch(env.ORIGIN + "/item");
  ${body}
} };`,
}));
const Miniflare = await loadMiniflare();
const mf = new Miniflare({
  ...sharedOptions(O.portBase + 1),
  workers: workers.map((w) => ({
    name: w.name,
    compatibilityDate,
    modules: true,
    script: w.script,
    bindings: { ORIGIN: origin.url },
    unsafeDirectSockets: [{ host: "127.0.0.1", port: w.port }],
  })),
});
await mf.ready;
const pids = childPids(/workerd/);
const tokensFile = writeCacheFile("put-cost-tokens.txt", "");
const results = Object.fromEntries(workers.map((w) => [w.name, []]));
try {
  for (let r = 0; r < O.rounds; r += 1) {
    const order = workers.slice(r % workers.length).concat(workers.slice(0, r % workers.length));
    for (const w of order) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = cpuMs(pids);
      const run = await runWrk({ url: `http://127.0.0.1:${w.port}`, path: "/", mode: "none", unique: false, seconds: O.seconds, connections: 8, tokensFile });
      const perReq = (cpuMs(pids) - before) / run.requests;
      if (run.non200 > 0) throw new Error(`${w.name}: ${run.non200} answers other than 200`);
      results[w.name].push({ rps: run.rps, cpuMs: perReq });
      log(`${w.name.padEnd(18)} ${run.rps.toFixed(0)} req/s  workerd ${(perReq * 1000).toFixed(1)} µs/req  (load ${load()[0]})`);
    }
  }
} finally {
  await mf.dispose();
  await origin.close();
}
const base = spread(results.none.map((x) => x.cpuMs)).median;
console.log(`\n| option | req/s median | workerd CPU µs/req median (min–max) | minus \`none\` µs |\n|---|---|---|---|`);
for (const w of workers) {
  const cpu = spread(results[w.name].map((x) => x.cpuMs));
  const rps = spread(results[w.name].map((x) => x.rps));
  console.log(`| ${w.name} | ${round(rps.median, 0)} | ${round(cpu.median * 1000, 1)} (${round(cpu.min * 1000, 1)}–${round(cpu.max * 1000, 1)}) | ${round((cpu.median - base) * 1000, 1)} |`);
}
