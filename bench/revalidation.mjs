// What a 304 revalidation saves against a full refetch (issue 15's budget):
// origin bandwidth and the gateway's own CPU per request.
//
// One workerd runs Tidegate (build/). The origin serves the same 16 KiB body
// with `ETag` and `Cache-Control: max-age=0` (every use is a revalidation) on
// two paths: /reval/ answers a matching If-None-Match with 304 (headers
// only), /refetch/ ignores it and sends the whole 200 again (what a cache
// without validators does: refetch and store anew). wrk drives one path at a
// time with one connection (so requests are not coalesced), for `--rounds`
// rounds of `--seconds`; per request it reports workerd CPU, origin body
// bytes and the X-Cache-Status mix. It asserts nothing about time.
//
// Usage: node bench/revalidation.mjs [--rounds 3] [--seconds 3] [--port-base 8700] [--body-bytes 16384]
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";

import { numberOption } from "./lib/args.mjs";
import { runWrk, wrkVersion } from "./lib/load.mjs";
import { childPids, cpuMs, load } from "./lib/proc.mjs";
import { round, summary } from "./lib/stats.mjs";
import { checkBuild, loadMiniflare, sharedOptions, tidegateWorker, writeCacheFile } from "./lib/workers.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback, min, max) => numberOption(args, name, fallback, min, max);
const O = {
  rounds: opt("rounds", 3, 1, 10),
  seconds: opt("seconds", 3, 1, 30),
  portBase: opt("port-base", 8700, 1024, 65000),
  bodyBytes: opt("body-bytes", 16_384, 1, 4_194_304),
};
const log = (...a) => console.error("[bench-revalidation]", ...a);
if (!wrkVersion()) throw new Error("wrk is missing: run bash bench/edge.sh once (it installs it) or apt-get install wrk");
checkBuild();

const BODY = Buffer.alloc(O.bodyBytes, "x");
const ETAG = '"v1"';
const stats = { reval: { hits: 0, bytes: 0, notModified: 0 }, refetch: { hits: 0, bytes: 0, notModified: 0 } };

const origin = createServer((req, res) => {
  req.resume();
  const kind = req.url.startsWith("/reval/") ? "reval" : "refetch";
  const s = stats[kind];
  s.hits += 1;
  res.setHeader("cache-control", "max-age=0");
  res.setHeader("etag", ETAG);
  res.setHeader("content-type", "text/plain");
  if (kind === "reval" && req.headers["if-none-match"] === ETAG) {
    s.notModified += 1;
    res.statusCode = 304;
    res.end();
    return;
  }
  s.bytes += BODY.length;
  res.setHeader("content-length", BODY.length);
  res.end(BODY);
});
origin.keepAliveTimeout = 300_000;
await new Promise((resolve) => origin.listen(O.portBase + 1, "127.0.0.1", resolve));
const originUrl = `http://127.0.0.1:${O.portBase + 1}`;

const config = `
[[routes]]
name = "reval"
methods = ["GET", "HEAD"]
path = "/reval/*"
upstream = "${originUrl}"
auth = { require = "none" }
cache = { ttl = "1h" }

[[routes]]
name = "refetch"
methods = ["GET", "HEAD"]
path = "/refetch/*"
upstream = "${originUrl}"
auth = { require = "none" }
cache = { ttl = "1h" }
`;
const Miniflare = await loadMiniflare();
const port = O.portBase + 2;
const mf = new Miniflare({
  ...sharedOptions(O.portBase),
  workers: [tidegateWorker({ config, adminKey: randomBytes(16).toString("hex"), apiKeys: "[]", port })],
});
const tokensFile = writeCacheFile("revalidation-tokens.txt", "none none\n");
const results = { reval: [], refetch: [] };
try {
  await mf.ready;
  const pids = childPids(/workerd/);
  const url = `http://127.0.0.1:${port}`;
  for (const kind of Object.keys(results)) {
    const path = `/${kind}/item`;
    const first = await fetch(`${url}${path}`);
    await first.arrayBuffer();
    await runWrk({ url, path, mode: "none", seconds: 1, connections: 1, tokensFile });
  }
  for (let r = 0; r < O.rounds; r++) {
    for (const kind of r % 2 ? ["refetch", "reval"] : ["reval", "refetch"]) {
      const path = `/${kind}/item`;
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = { ...stats[kind], cpu: cpuMs(pids) };
      const w = await runWrk({ url, path, mode: "none", seconds: O.seconds, connections: 1, tokensFile });
      const s = stats[kind];
      results[kind].push({
        rps: w.rps,
        workerdCpuMs: (cpuMs(pids) - before.cpu) / w.requests,
        originBytes: (s.bytes - before.bytes) / w.requests,
        originCalls: (s.hits - before.hits) / w.requests,
        notModified: (s.notModified - before.notModified) / w.requests,
        cache: w.cache,
        p50: w.latencyMs.p50,
      });
    }
  }
} finally {
  await mf.dispose();
  origin.close();
}

const med = (runs, f) => round(summary(runs.map(f)).p50);
console.log(`Command: node bench/revalidation.mjs ${args.join(" ")}`.trim());
console.log(`Body ${O.bodyBytes} B, ${O.rounds} rounds × ${O.seconds} s, wrk -c1, load ${load().join(" ")}`);
console.log("");
console.log("| path | req/s | p50 ms | workerd CPU ms/req | origin body B/req | origin 304s/req | X-Cache-Status (last round) |");
console.log("|---|---|---|---|---|---|---|");
for (const [kind, runs] of Object.entries(results)) {
  const last = runs.at(-1).cache;
  console.log(
    `| ${kind === "reval" ? "304 revalidation" : "full refetch"} | ${med(runs, (x) => x.rps)} | ${med(runs, (x) => x.p50)} | ${med(runs, (x) => x.workerdCpuMs)} | ${med(runs, (x) => x.originBytes)} | ${med(runs, (x) => x.notModified)} | hit ${last.hit}, miss ${last.miss}, other ${last.other} |`,
  );
}
log("done");
