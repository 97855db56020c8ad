// A paired A/B of two Tidegate builds in one workerd, for a noisy machine:
// per path, A and B run back to back in ABBA order for `--rounds` rounds, and
// the figure is the median of the per-pair differences in workerd CPU per
// request (B − A), so load that drifts over seconds cancels out. Same
// routes, origin, JWKS and token pool as bench/edge.mjs; no floor or peer
// (the difference needs none).
//
//   node bench/ab.mjs OTHER/build [--rounds 6] [--seconds 2] [--paths not-found,proxy,hit,...]
//   node bench/ab.mjs --token-cache-off [...]   (B: this build, token cache off)
//   node bench/ab.mjs peer|io-floor [...]       (B: the TypeScript peer, or the I/O floor)
//   node bench/ab.mjs OTHER/build --health [...] (A, this build, with [health] on the proxy route)
//   --port-base N: the origin on N, the JWKS on N+1, Miniflare on N+2, A and B on N+3 and N+4
//   (8731 by default), so two runs can share a machine
//
// Against `io-floor`, B − A is minus Tidegate's own CPU; against `peer`, the
// peer's own CPU minus Tidegate's, both paired. A build of bench/rust-floor
// (the thinnest Rust Worker: async on the worker crate, async on web-sys
// alone, or sync with JS doing the I/O) as OTHER separates what the async
// request path costs from what wasm itself costs.
//
// `not-found` (a path no route matches: 404) is the gateway's fixed cost per
// request: ids, config, route table, problem+json, headers, the log line.
//
// A is build/ (this tree), B is OTHER/build. A measurement, not a test.
import { runWrk, wrkVersion } from "./lib/load.mjs";
import { PATHS as ALL_PATHS } from "./lib/paths.mjs";
import { childPids, cpuMs, load } from "./lib/proc.mjs";
import { startJwks, startOrigin } from "./lib/servers.mjs";
import { round, spread } from "./lib/stats.mjs";
import { healthSection, tidegateConfig } from "./lib/config.mjs";
import { AUDIENCE, ISSUER, apiKey, jwk, tokenPool } from "./lib/tokens.mjs";
import { buildDir, buildPeer, checkBuild, ioFloorWorker, loadMiniflare, peerWorker, sharedOptions, tidegateWorker, writeCacheFile } from "./lib/workers.mjs";

const args = process.argv.slice(2);
// `--token-cache-off` instead of OTHER/build: B is this build with
// `[gateway.token_cache] enabled = false`, so B − A is what the cache saves.
const cacheOff = args[0] === "--token-cache-off";
const other = cacheOff ? buildDir : args[0];
if (!other || other.startsWith("--")) throw new Error("usage: node bench/ab.mjs OTHER/build|--token-cache-off [--rounds 6] [--seconds 2] [--paths proxy,hit]");
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? fallback : args[i + 1];
};
const ROUNDS = Number(opt("rounds", 6));
const SECONDS = Math.max(1, Math.round(Number(opt("seconds", 2))));
const PORT = Number(opt("port-base", 8731));
if (!Number.isInteger(PORT) || PORT < 1024 || PORT > 65000) throw new Error(`--port-base ${opt("port-base")}: a port from 1024 to 65000`);
const PATHS = ALL_PATHS.filter((p) => !opt("paths", "") || opt("paths", "").split(",").includes(p.key));
const log = (...a) => console.error("[bench-ab]", ...a);
if (!wrkVersion()) throw new Error("wrk is missing: run bash bench/edge.sh once (it installs it) or apt-get install wrk");
const jsPeer = ["peer", "io-floor"].includes(other) ? other : null;
checkBuild();
if (!jsPeer) checkBuild(other);

const pool = tokenPool(512, 64);
// One API key in API_KEYS, for the apikey path.
const key = apiKey();
const tokensFile = writeCacheFile("ab-tokens.txt", `${pool.map((t) => `${t.token} ${t.subject}`).join("\n")}\n`);
const origin = await startOrigin(PORT);
const jwks = await startJwks(PORT + 1, jwk);
const config = tidegateConfig(origin.url, jwks.url, { tokenPool: pool.length });
// `--health`: A (this build) also records the proxy route's answers for a
// HealthMonitor (issue 18); B keeps the plain config (an older build would
// refuse [health]).
const health = args.includes("--health");
const builds = [
  { name: "A", dir: buildDir, port: PORT + 3, health, ...(health ? { config: config + healthSection } : {}) },
  { name: "B", dir: other, port: PORT + 4, config: cacheOff ? config.replace("[gateway.token_cache]\n", "[gateway.token_cache]\nenabled = false\n") : config },
];
const peerPath = jsPeer === "peer" ? await buildPeer() : null;
const Miniflare = await loadMiniflare();
const mf = new Miniflare({
  ...sharedOptions(PORT + 2),
  workers: builds.map((b) => {
    if (b.name === "B" && jsPeer === "peer") {
      return peerWorker({ peerPath, origin: origin.url, jwks: jwks.url, issuer: ISSUER, audience: AUDIENCE, apiKeys: key.json, port: b.port });
    }
    if (b.name === "B" && jsPeer === "io-floor") return ioFloorWorker({ origin: origin.url, port: b.port });
    return tidegateWorker({ config: b.config ?? config, adminKey: "a".repeat(40), apiKeys: key.json, port: b.port, name: `tidegate-${b.name}`, dir: b.dir, health: b.health });
  }),
});
await mf.ready;
const pids = childPids(/workerd/);
/** A Tidegate build's per-isolate counters (`stats/fast-path`, `stats/limiter`), or null (an older build, the peer). */
async function stats(b) {
  if (jsPeer && b.name === "B") return null;
  const get = async (path) => {
    const res = await fetch(`http://127.0.0.1:${b.port}/__tidegate/${path}`, { headers: { authorization: `Bearer ${"a".repeat(40)}` } });
    return res.status === 200 ? res.json() : (await res.arrayBuffer(), null);
  };
  return { fast: await get("stats/fast-path"), limiter: await get("stats/limiter") };
}
const out = {};
try {
  for (const p of PATHS) {
    for (const b of builds) {
      const base = { url: `http://127.0.0.1:${b.port}`, path: p.path, mode: p.mode, unique: p.unique, reuse: p.reuse ?? 0, browser: p.browser ?? false, connections: 8, tokensFile, apiKey: key.key };
      if (p.prime) {
        for (const { token, subject } of pool) {
          const res = await fetch(`${base.url}${p.path}`, { headers: p.mode === "jwt" ? { authorization: `Bearer ${token}`, "x-bench-key": subject } : {} });
          await res.arrayBuffer();
          if (p.mode !== "jwt") break;
        }
      }
      await runWrk({ ...base, seconds: 1 }); // warm-up
    }
    const diffs = [];
    const perBuild = { A: [], B: [] };
    const before = { A: await stats(builds[0]), B: await stats(builds[1]) };
    const served = { A: 0, B: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ["A", "B", "B", "A"] : ["B", "A", "A", "B"];
      const got = { A: [], B: [] };
      for (const name of order) {
        const b = builds.find((x) => x.name === name);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const cpu0 = cpuMs(pids);
        const run = await runWrk({ url: `http://127.0.0.1:${b.port}`, path: p.path, mode: p.mode, unique: p.unique, reuse: p.reuse ?? 0, browser: p.browser ?? false, connections: 8, tokensFile, apiKey: key.key, seconds: SECONDS });
        const wrong = p.status === 404 ? run.requests - run.non200 : run.non200;
        if (wrong > 0) throw new Error(`${name} ${p.key}: ${wrong} answers other than ${p.status ?? 200}`);
        got[name].push((cpuMs(pids) - cpu0) / run.requests);
        served[name] += run.requests;
      }
      const a = (got.A[0] + got.A[1]) / 2;
      const bb = (got.B[0] + got.B[1]) / 2;
      perBuild.A.push(a);
      perBuild.B.push(bb);
      diffs.push(bb - a);
    }
    out[p.key] = { A: spread(perBuild.A), B: spread(perBuild.B), diff: spread(diffs) };
    log(`${p.key.padEnd(10)} A ${round(out[p.key].A.median)} ms  B ${round(out[p.key].B.median)} ms  B−A ${round(out[p.key].diff.median)} ms (${round(out[p.key].diff.min)}…${round(out[p.key].diff.max)})  load ${load()[0]}`);
    // Per build, of the measured requests: new tokens verified on the fast
    // path and limiter object calls (one isolate per build here).
    for (const b of builds) {
      const [s0, s1] = [before[b.name], await stats(b)];
      if (!s0 || !s1) continue;
      const per = (x0, x1) => (x0 === undefined || x1 === undefined ? "n/a" : `${round((x1 - x0) / served[b.name])}`);
      log(`  ${b.name}: ${served[b.name]} requests; per request: fast-path verifications ${per(s0.fast?.verified, s1.fast?.verified)} answered, ${per(s0.fast?.verified_then_declined, s1.fast?.verified_then_declined)} declined after (${per(s0.fast?.taken_over, s1.fast?.taken_over)} taken over by the full path), limiter calls ${per(s0.limiter?.calls, s1.limiter?.calls)}`);
    }
  }
} finally {
  await mf.dispose();
  await origin.close();
  await jwks.close();
}
console.log(`\nA = ${buildDir}, B = ${cacheOff ? "the same build, token cache off" : other}; ${ROUNDS} ABBA rounds × ${SECONDS} s per path; workerd CPU ms per request\n`);
console.log("| path | A median | B median | B − A median (min…max of pairs) |\n|---|---|---|---|");
for (const [k, v] of Object.entries(out)) console.log(`| ${k} | ${v.A.median} | ${v.B.median} | **${v.diff.median}** (${v.diff.min}…${v.diff.max}) |`);
