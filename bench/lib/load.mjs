// Load generators. `wrk` (C, epoll) drives the latency/throughput runs at a
// fixed concurrency for a fixed time; `counted` (node:http, keep-alive)
// sends an exact number of requests for the limiter's exactness runs.
import { spawn, spawnSync } from "node:child_process";
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";

const WRK_LUA = fileURLToPath(new URL("wrk.lua", import.meta.url));
let runs = 0;

export function wrkVersion() {
  const r = spawnSync("wrk", ["--version"], { encoding: "utf8" });
  if (r.error) return null;
  return /wrk (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? "?";
}

/**
 * One wrk run: `connections` connections on one thread for `seconds`.
 * `reuse` > 0 cycles that many tokens of the pool (a client per connection
 * that keeps its token) instead of walking the whole pool.
 * Returns wrk's counts and latency quantiles (ms), and wrk's own CPU (ms,
 * from the shell's `times`).
 */
export function runWrk({ url, path, mode, unique, reuse = 0, browser = false, seconds, connections, tokensFile, apiKey }) {
  return new Promise((resolve, reject) => {
    const args = [
      "-c",
      "wrk \"$@\"; st=$?; times; exit $st",
      "wrk",
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      "--timeout",
      "10s",
      "-s",
      WRK_LUA,
      `${url}${path}`,
      "--",
      tokensFile,
      mode,
      unique ? "1" : "0",
      apiKey ?? "",
      `${process.pid}.${(runs += 1)}`,
      String(reuse),
      browser ? "1" : "0",
    ];
    const child = spawn("bash", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = /^WRK_JSON (.+)$/m.exec(out)?.[1];
      if (code !== 0 || !line) return reject(new Error(`wrk failed (exit ${code}): ${err || out}`));
      const r = JSON.parse(line);
      // `times` prints the shell's user/sys, then its children's (wrk's).
      const t = [...out.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].at(-1);
      const wrkCpuMs = t ? (Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4])) * 1000 : NaN;
      const ms = (us) => us / 1000;
      resolve({
        requests: r.requests,
        seconds: r.duration_us / 1e6,
        rps: r.requests / (r.duration_us / 1e6),
        errors: r.errors,
        non200: r.non200,
        cache: r.cache,
        latencyMs: Object.fromEntries(Object.entries(r.lat_us).map(([k, v]) => [k, ms(v)])),
        wrkCpuMs,
      });
    });
  });
}

/**
 * Sends exactly `total` GETs with `concurrency` in flight (keep-alive);
 * returns the status counts and the elapsed time.
 */
export async function counted({ url, path, headers, total, concurrency }) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = {};
  let next = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () => {
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end();
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        await one();
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  agent.destroy();
  return { statuses, elapsedMs };
}

/**
 * Stores the entry a HIT path serves: one request per subject of `pool`
 * (private entries are per subject), or one for a path without tokens; then
 * a pause for the background cache puts to land. Anything but 200 stops the run.
 */
export async function prime({ url, path, mode, apiKey }, pool) {
  const seen = new Set();
  for (const { token, subject } of pool) {
    if (seen.has(subject)) continue;
    seen.add(subject);
    const headers = mode === "jwt" ? { authorization: `Bearer ${token}`, "x-bench-key": subject } : mode === "apikey" ? { "x-api-key": apiKey } : {};
    const res = await fetch(`${url}${path}`, { headers });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`priming ${url}${path} answered ${res.status}`);
    if (mode !== "jwt") break;
  }
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the background cache puts land
}
