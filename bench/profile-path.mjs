// Where one path's CPU goes, step by step: one sequential client (wrk -c1)
// per path while the V8 sampling profiler runs in the Worker's isolate, then
// the heaviest functions by inclusive time (a caller holds its callees) and
// by self time, in µs per request. For finding which step of a request
// costs what (bench/edge.mjs's profiles list self time only); the absolute
// figures are wall-clock samples, inflated by load and by the inspector
// (`console.log` most), so compare rows within one run and confirm a change
// with bench/ab.mjs.
//
//   node bench/profile-path.mjs [--paths proxy,apikey] [--seconds 5] [--interval 50] [--top 40] [--peer]
//
// `--peer` profiles the TypeScript peer on the same paths after Tidegate.
// A measurement, not a test.
import { runWrk, wrkVersion } from "./lib/load.mjs";
import { analyse, inclusive, openProfiler } from "./lib/profile.mjs";
import { startJwks, startOrigin } from "./lib/servers.mjs";
import { tidegateConfig } from "./lib/config.mjs";
import { AUDIENCE, ISSUER, apiKey, jwk, tokenPool } from "./lib/tokens.mjs";
import { buildPeer, checkBuild, loadMiniflare, peerWorker, sharedOptions, tidegateWorker, writeCacheFile } from "./lib/workers.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? fallback : args[i + 1];
};
const SECONDS = Math.max(1, Math.round(Number(opt("seconds", 5))));
const INTERVAL_US = Math.max(10, Number(opt("interval", 50)));
const TOP = Number(opt("top", 40));
const PATHS = [
  { key: "not-found", path: "/nowhere/item", mode: "none" },
  { key: "proxy", path: "/proxy/item", mode: "none" },
  { key: "apikey", path: "/apikey/item", mode: "apikey" },
  { key: "jwt", path: "/jwt/item", mode: "jwt" },
  { key: "jwt-reuse", path: "/jwt/item", mode: "jwt", reuse: 1 },
  { key: "limited-reuse", path: "/limited/item", mode: "jwt", reuse: 1 },
  { key: "miss", path: "/secure/item", mode: "jwt", unique: true },
  { key: "hit", path: "/secure/item", mode: "jwt", prime: true },
  { key: "hit-reuse", path: "/secure/item", mode: "jwt", prime: true, reuse: 1 },
  { key: "public-hit", path: "/cached/item", mode: "none", prime: true },
].filter((p) => opt("paths", "proxy").split(",").includes(p.key));
const log = (...a) => console.error("[profile-path]", ...a);
if (!wrkVersion()) throw new Error("wrk is missing: apt-get install wrk");
checkBuild();

const pool = tokenPool(512, 64);
const key = apiKey();
const tokensFile = writeCacheFile("profile-tokens.txt", `${pool.map((t) => `${t.token} ${t.subject}`).join("\n")}\n`);
const origin = await startOrigin(8741);
const jwks = await startJwks(8742, jwk);
const config = tidegateConfig(origin.url, jwks.url, { tokenPool: pool.length });
const targets = [{ name: "tidegate", port: 8744 }];
if (args.includes("--peer")) targets.push({ name: "peer", port: 8745 });
const Miniflare = await loadMiniflare();
const mf = new Miniflare({
  ...sharedOptions(8743),
  inspectorPort: 9743,
  workers: await Promise.all(
    targets.map(async (t) =>
      t.name === "peer"
        ? peerWorker({ peerPath: await buildPeer(), origin: origin.url, jwks: jwks.url, issuer: ISSUER, audience: AUDIENCE, apiKeys: key.json, port: t.port })
        : tidegateWorker({ config, adminKey: "a".repeat(40), apiKeys: key.json, port: t.port }),
    ),
  ),
});
await mf.ready;
const us = (ms, n) => ((ms * 1000) / n).toFixed(1).padStart(7);
try {
  for (const t of targets) {
    const profiler = await openProfiler(await mf.getInspectorURL(), t.name, INTERVAL_US);
    try {
      for (const p of PATHS) {
        const base = { url: `http://127.0.0.1:${t.port}`, path: p.path, mode: p.mode, unique: p.unique, reuse: p.reuse ?? 0, connections: 1, tokensFile, apiKey: key.key };
        // HIT paths: one request per subject stores its entry first.
        if (p.prime) {
          for (const { token, subject } of p.mode === "jwt" ? pool : [{}]) {
            const headers = token ? { authorization: `Bearer ${token}`, "x-bench-key": subject } : {};
            await (await fetch(`${base.url}${p.path}`, { headers })).arrayBuffer();
          }
        }
        await runWrk({ ...base, seconds: 2 }); // warm-up: JIT, caches, leases
        await profiler.start();
        const r = await runWrk({ ...base, seconds: SECONDS });
        const raw = await profiler.stopRaw();
        const self = analyse(raw);
        const incl = [...inclusive(raw).entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
        console.log(`\n## ${t.name} ${p.key}: ${r.requests} sequential requests, busy ${us(self.busyMs, r.requests).trim()} µs/req (GC ${us(self.gcMs, r.requests).trim()})\n`);
        console.log("| inclusive µs/req | function |\n|---|---|");
        for (const [name, ms] of incl) console.log(`| ${us(ms, r.requests)} | \`${name}\` |`);
        console.log("\n| self µs/req | function |\n|---|---|");
        for (const { name, ms } of self.top) console.log(`| ${us(ms, r.requests)} | \`${name}\` |`);
      }
    } finally {
      profiler.close();
    }
  }
} finally {
  await mf.dispose();
  await origin.close();
  await jwks.close();
}
log("done");
