// Times the policy workloads in wasm under node (V8, the engine workerd
// runs). Usage: node bench/wasm-policy/run.mjs <pkg-dir> <out.json>
// <pkg-dir> holds wasm-bindgen's `--target nodejs` output of
// bench/wasm-policy. Keys and tokens are made here with node:crypto, signing
// the claims the wasm module hands out, so they verify like the native ones.
// Time is the main thread's CPU time (process.threadCpuUsage, as the native
// side measures CLOCK_THREAD_CPUTIME_ID): the machine is shared, and wall
// time would mostly count waiting for a core. Each case: warm up for at
// least 300 ms of CPU (so V8 has tiered the hot functions up from Liftoff
// to TurboFan, as in a long-lived workerd isolate), size a batch to ~40 ms,
// then 15 timed batches; reports ns/op median, p25, p75, min, max over the
// batches. Bounded: about 1 s of CPU a case.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import crypto from "node:crypto";

const [pkgDir, outFile] = process.argv.slice(2);
if (!pkgDir || !outFile) {
  console.error("usage: node bench/wasm-policy/run.mjs <pkg-dir> <out.json>");
  process.exit(2);
}
const wasm = createRequire(import.meta.url)(resolve(pkgDir, "tidegate_bench_wasm.js"));

const BATCH_NS = 40e6;
const WARMUP_NS = 300e6;
const BATCHES = 15;
const ROUTE_COUNTS = [10, 100, 1000, 10000];
const ROUTE_DEPTHS = [3, 8];

const b64 = (buf) => Buffer.from(buf).toString("base64url");

function signedCase(alg) {
  const header = b64(JSON.stringify({ alg, typ: "JWT", kid: "k1" }));
  const input = `${header}.${b64(wasm.JwtVerifyBench.claims())}`;
  let sig, jwk;
  if (alg === "HS256") {
    const secret = crypto.randomBytes(32);
    sig = crypto.createHmac("sha256", secret).update(input).digest();
    jwk = { kty: "oct", k: b64(secret) };
  } else {
    const { privateKey, publicKey } =
      alg === "RS256"
        ? crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })
        : alg === "ES256"
          ? crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })
          : crypto.generateKeyPairSync("ed25519");
    const opts =
      alg === "ES256" ? { key: privateKey, dsaEncoding: "ieee-p1363" } : privateKey;
    sig = crypto.sign(alg === "EdDSA" ? null : "sha256", Buffer.from(input), opts);
    jwk = publicKey.export({ format: "jwk" });
  }
  const jwks = JSON.stringify({ keys: [{ ...jwk, kid: "k1" }] });
  return new wasm.JwtVerifyBench(alg, `${input}.${b64(sig)}`, jwks);
}

const cpuNs = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) * 1000;
};

function measure(id, bench, expectAll = true) {
  const time = (n) => {
    const t0 = cpuNs();
    const got = bench.run(n);
    const ns = cpuNs() - t0;
    if (expectAll && got !== n) throw new Error(`${id}: ${got} of ${n} succeeded`);
    return ns;
  };
  // Warm up: double the batch until WARMUP_NS of CPU has gone by.
  let n = 1;
  let spent = 0;
  let last = 0;
  while (spent < WARMUP_NS && n < 1 << 24) {
    last = time(n);
    spent += last;
    if (spent < WARMUP_NS) n *= 2;
  }
  // Size the batch from the warmest (last) timing.
  n = Math.max(1, Math.round((n * BATCH_NS) / Math.max(last, 1)));
  const perOp = [];
  for (let i = 0; i < BATCHES; i++) perOp.push(time(n) / n);
  perOp.sort((a, b) => a - b);
  const q = (p) => perOp[Math.round(p * (perOp.length - 1))];
  const r = { id, iterations: n, batches: BATCHES, median: q(0.5), p25: q(0.25), p75: q(0.75), min: perOp[0], max: perOp.at(-1) };
  console.log(`  ${id.padEnd(28)} ${r.median.toFixed(1).padStart(12)} ns/op  (p25 ${r.p25.toFixed(1)}, p75 ${r.p75.toFixed(1)}; ${n} ops/batch)`);
  return r;
}

const results = [];
for (const alg of ["HS256", "RS256", "ES256", "EdDSA"]) {
  results.push(measure(`jwt_verify/${alg}`, signedCase(alg)));
}
// GCRA admits some and limits others by design: no success count to check.
results.push(measure("gcra_check", new wasm.GcraBench(), false));
results.push(measure("cache_key_url", new wasm.CacheKeyBench(), false));
for (const depth of ROUTE_DEPTHS) {
  for (const n of ROUTE_COUNTS) {
    results.push(measure(`route_match/trie_d${depth}/${n}`, new wasm.RouteMatchBench(n, depth, false)));
  }
}
for (const n of ROUTE_COUNTS) {
  results.push(measure(`route_match/linear_d3/${n}`, new wasm.RouteMatchBench(n, 3, true)));
}

writeFileSync(outFile, JSON.stringify({ node: process.version, v8: process.versions.v8, date: new Date().toISOString(), results }, null, 2));
console.log(`wrote ${outFile}`);
