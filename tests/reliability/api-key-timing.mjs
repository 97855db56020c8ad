#!/usr/bin/env node
// Timing probe of the credential compares (API keys and the admin key),
// against the built Worker in workerd (Miniflare). Tests never assert
// timings; this script measures and prints the figures kept in
// RELIABILITY.md. Wrong keys of the valid key's length that share 0 or all
// but one leading characters with it are sent interleaved, one at a time;
// a leak would make the second group slower. The first group, split at
// random in two, gives the noise floor (an A/A comparison). Differences of medians come with
// a bootstrap 95 % interval.
// Usage: node tests/reliability/api-key-timing.mjs [--samples 2000]   (needs build/: make build or scripts/build-worker.sh)
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";

const root = fileURLToPath(new URL("../../", import.meta.url));
const argv = process.argv.slice(2);
const samples = argv[0] === "--samples" ? Number(argv[1]) : 2000;
if (!(samples >= 100)) throw new Error("usage: api-key-timing.mjs [--samples N>=100]");

const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}wrangler.toml`, "utf8"))[1];
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const valid = `tg_test_${randomBytes(24).toString("base64url")}`;
const adminKey = `admin_${randomBytes(24).toString("base64url")}`;
const config = JSON.stringify({
  gateway: { admin_prefix: "/__tidegate/" },
  api_keys: { header: "x-api-key" },
  // Rejected keys never reach the upstream; nothing listens there.
  routes: [{ name: "keys", path: "/keys/*", upstream: "http://127.0.0.1:9", auth: { require: "api_key" } }],
});
const apiKeys = JSON.stringify([{ id: "k1", consumer: "c", sha256: sha256(valid), scopes: [] }]);

/** `secret` with its first `n` characters kept and the rest changed (same length). */
const sharing = (secret, n) => secret.slice(0, n) + [...secret.slice(n)].map((c) => (c === "A" ? "B" : "A")).join("");

const mf = new Miniflare({
  host: "127.0.0.1",
  port: 0,
  compatibilityDate,
  modules: true,
  scriptPath: `${root}build/worker/shim.mjs`,
  modulesRoot: `${root}build`,
  modulesRules: [
    { type: "ESModule", include: ["**/*.js"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  bindings: { TIDEGATE_CONFIG: config, API_KEYS: apiKeys, ADMIN_KEY: adminKey },
  // One log line per request: not wanted here.
  handleRuntimeStdio(stdout, stderr) {
    stdout.resume();
    stderr.resume();
  },
});

async function timed(path, headers) {
  const t0 = process.hrtime.bigint();
  const res = await mf.dispatchFetch(`http://gateway.test${path}`, { headers });
  await res.arrayBuffer();
  const us = Number(process.hrtime.bigint() - t0) / 1000;
  return { status: res.status, us };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))];

/** Bootstrap 95 % interval of median(b) - median(a). */
function bootstrap(a, b, rounds = 1000) {
  const pick = (xs) => Array.from({ length: xs.length }, () => xs[Math.floor(Math.random() * xs.length)]);
  const diffs = Array.from({ length: rounds }, () => median(pick(b)) - median(pick(a))).sort((x, y) => x - y);
  return [diffs[Math.floor(0.025 * rounds)], diffs[Math.floor(0.975 * rounds)]];
}

async function probe(name, secret, request) {
  // far-a and far-b are the same kind of key: their difference is the noise floor (A/A).
  const groups = { "far-a": [], "far-b": [], near: [] };
  const names = Object.keys(groups);
  const statuses = new Set();
  // Warm-up: compile paths, fill caches.
  for (let i = 0; i < 200; i++) await request(sharing(secret, i % 2 ? 0 : secret.length - 1));
  for (let i = 0; i < 3 * samples; i++) {
    const group = names[Math.floor(Math.random() * names.length)];
    const candidate = sharing(secret, group === "near" ? secret.length - 1 : 0);
    const { status, us } = await request(candidate);
    statuses.add(status);
    groups[group].push(us);
  }
  const far = [...groups["far-a"], ...groups["far-b"]];
  const a1 = groups["far-a"];
  const a2 = groups["far-b"];
  const row = (xs) => `median ${median(xs).toFixed(1)} µs, p10 ${quantile(xs, 0.1).toFixed(1)}, p90 ${quantile(xs, 0.9).toFixed(1)} (n=${xs.length})`;
  const diff = median(groups.near) - median(far);
  const [lo, hi] = bootstrap(far, groups.near);
  const noise = median(a2) - median(a1);
  const [nlo, nhi] = bootstrap(a1, a2);
  console.log(`\n${name} (statuses seen: ${[...statuses].join(", ")})`);
  console.log(`  shares 0 chars:              ${row(far)}`);
  console.log(`  shares ${secret.length - 1} of ${secret.length} chars:       ${row(groups.near)}`);
  console.log(`  difference of medians:       ${diff.toFixed(1)} µs, 95 % CI [${lo.toFixed(1)}, ${hi.toFixed(1)}]`);
  console.log(`  noise (A/A, 0 vs 0, random split): ${noise.toFixed(1)} µs, 95 % CI [${nlo.toFixed(1)}, ${nhi.toFixed(1)}]`);
  return { name, far: median(far), near: median(groups.near), diff, ci: [lo, hi], noise, noiseCi: [nlo, nhi], statuses: [...statuses] };
}

try {
  await mf.ready;
  console.log(`timing probe: ${samples} samples per group and credential, sequential, interleaved at random (node ${process.version})`);
  const api = await probe("API key (x-api-key, SHA-256 then constant-time compare)", valid, (key) => timed("/keys/x", { "x-api-key": key }));
  const admin = await probe("admin key (Authorization: Bearer, SHA-256 then constant-time compare)", adminKey, (key) =>
    timed("/__tidegate/health", { authorization: `Bearer ${key}` }),
  );
  for (const r of [api, admin]) {
    if (r.statuses.length !== 1 || r.statuses[0] !== 401) throw new Error(`${r.name}: expected only 401, saw ${r.statuses.join(", ")}`);
  }
} finally {
  await mf.dispose();
}
