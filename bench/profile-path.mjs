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
import { prime, runWrk, wrkVersion } from "./lib/load.mjs";
import { PATHS as ALL_PATHS } from "./lib/paths.mjs";
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
// One sequential client: a repeated-token path keeps one token.
const PATHS = ALL_PATHS.map((p) => ({ ...p, reuse: p.reuse ? 1 : 0 })).filter((p) => opt("paths", "proxy").split(",").includes(p.key));
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
        const base = { url: `http://127.0.0.1:${t.port}`, path: p.path, mode: p.mode, unique: p.unique, reuse: p.reuse, browser: p.browser ?? false, connections: 1, tokensFile, apiKey: key.key };
        if (p.prime) await prime(base, pool);
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
