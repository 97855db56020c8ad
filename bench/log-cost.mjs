// What one log line per request costs in workerd, by the ways a Worker can
// write it (issue 16: "measure the options workerd offers"). One workerd,
// one Worker per option, each answering a fixed 2-byte body without any
// I/O, so the difference in workerd CPU per request against `none` is the
// log line's cost. No inspector is attached (an attached inspector
// serialises every console message and inflates `console.log` in
// profiles); stdio is drained as in bench/edge.mjs.
//
// Usage: node bench/log-cost.mjs [--rounds 3] [--seconds 3] [--port-base 8760]
import { numberOption } from "./lib/args.mjs";
import { runWrk, wrkVersion } from "./lib/load.mjs";
import { childPids, cpuMs, load } from "./lib/proc.mjs";
import { round, spread } from "./lib/stats.mjs";
import { compatibilityDate, loadMiniflare, sharedOptions, writeCacheFile } from "./lib/workers.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback, min, max) => numberOption(args, name, fallback, min, max);
const O = { rounds: opt("rounds", 3, 1, 10), seconds: opt("seconds", 3, 1, 30), portBase: opt("port-base", 8760, 1024, 65000) };
const log = (...a) => console.error("[bench-log-cost]", ...a);
if (!wrkVersion()) throw new Error("wrk is missing: run bash bench/edge.sh once (it installs it) or apt-get install wrk");

// A line shaped like Tidegate's on an authenticated, throttled HIT (≈ 330 bytes).
const FIELDS = `{ id: "0d4f3c1e9a7b4b2f8c6d5e4f3a2b1c0d", method: "GET", path: "/secure/item", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
  route: "secure", status: 200, subject: "https://issuer.example/:user-042", key_id: "bench-rs256", cache: "HIT", limiter: "allowed",
  ms: { auth: 0, throttle: 1, cache: 0, total: 2 } }`;
const OPTIONS = {
  none: "",
  "log-string": `console.log(JSON.stringify(${FIELDS}));`,
  "log-short": `console.log(JSON.stringify({ id: "0d4f3c1e9a7b4b2f", path: "/secure/item", status: 200, cache: "HIT", ms: 2 }));`,
  "log-object": `console.log(${FIELDS});`,
  "info-string": `console.info(JSON.stringify(${FIELDS}));`,
};

const workers = Object.entries(OPTIONS).map(([name, body], i) => ({
  name,
  port: O.portBase + 1 + i,
  script: `export default { fetch() { ${body} return new Response("ok"); } };`,
}));
const Miniflare = await loadMiniflare();
const mf = new Miniflare({
  ...sharedOptions(O.portBase),
  workers: workers.map((w) => ({
    name: w.name,
    compatibilityDate,
    modules: true,
    script: w.script,
    unsafeDirectSockets: [{ host: "127.0.0.1", port: w.port }],
  })),
});
await mf.ready;
const pids = childPids(/workerd/);
const tokensFile = writeCacheFile("log-cost-tokens.txt", "");
const results = Object.fromEntries(workers.map((w) => [w.name, []]));
try {
  for (let r = 0; r < O.rounds; r += 1) {
    const order = workers.slice(r % workers.length).concat(workers.slice(0, r % workers.length));
    for (const w of order) {
      const before = cpuMs(pids);
      const run = await runWrk({ url: `http://127.0.0.1:${w.port}`, path: "/", mode: "none", unique: false, seconds: O.seconds, connections: 8, tokensFile });
      const perReq = (cpuMs(pids) - before) / run.requests;
      results[w.name].push({ rps: run.rps, cpuMs: perReq, non200: run.non200 });
      log(`${w.name.padEnd(12)} ${run.rps.toFixed(0)} req/s  workerd ${(perReq * 1000).toFixed(1)} µs/req  (load ${load()[0]})`);
    }
  }
} finally {
  await mf.dispose();
}
const base = spread(results.none.map((x) => x.cpuMs)).median;
console.log(`\n| option | req/s median | workerd CPU µs/req median (min–max) | minus \`none\` µs |\n|---|---|---|---|`);
for (const w of workers) {
  const cpu = spread(results[w.name].map((x) => x.cpuMs));
  const rps = spread(results[w.name].map((x) => x.rps));
  console.log(`| ${w.name} | ${round(rps.median, 0)} | ${round(cpu.median * 1000, 1)} (${round(cpu.min * 1000, 1)}–${round(cpu.max * 1000, 1)}) | ${round((cpu.median - base) * 1000, 1)} |`);
}
