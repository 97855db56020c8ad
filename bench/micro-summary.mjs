// Puts the native (criterion) and wasm (node) micro-benchmark figures side
// by side. Usage: node bench/micro-summary.mjs <criterion-dir> <wasm.json> [out.md]
// <criterion-dir> is $CARGO_TARGET_DIR/criterion; per function it reads the
// last run's sample.json (per-sample total time and iteration count) and
// reports ns/op median and p25–p75 over the samples, like run.mjs does over
// its batches. Prints a markdown summary (and writes it to out.md).
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import os from "node:os";

const [criterionDir, wasmFile, outFile] = process.argv.slice(2);
if (!criterionDir || !wasmFile) {
  console.error("usage: node bench/micro-summary.mjs <criterion-dir> <wasm.json> [out.md]");
  process.exit(2);
}
const wasm = JSON.parse(readFileSync(wasmFile, "utf8"));

function native(id) {
  // criterion's directory for group/function/param is the id itself.
  const file = join(criterionDir, ...id.split("/"), "new", "sample.json");
  if (!existsSync(file)) return null;
  const { iters, times } = JSON.parse(readFileSync(file, "utf8"));
  const perOp = times.map((t, i) => t / iters[i]).sort((a, b) => a - b);
  const q = (p) => perOp[Math.round(p * (perOp.length - 1))];
  return { median: q(0.5), p25: q(0.25), p75: q(0.75), samples: perOp.length };
}

const ns = (x) => (x >= 1e5 ? `${(x / 1e3).toFixed(0)} µs` : x >= 1e4 ? `${(x / 1e3).toFixed(1)} µs` : x >= 100 ? `${x.toFixed(0)} ns` : `${x.toFixed(1)} ns`);
const cell = (r) => (r ? `${ns(r.median)} [${ns(r.p25)}–${ns(r.p75)}]` : "–");

const rows = wasm.results.map((w) => ({ id: w.id, native: native(w.id), wasm: w }));
const lines = [];
lines.push("| function | native ns/op, median [p25–p75] | wasm (node) ns/op, median [p25–p75] | wasm ÷ native |");
lines.push("|---|---|---|---|");
for (const r of rows.filter((r) => !r.id.startsWith("route_match/"))) {
  lines.push(`| ${r.id} | ${cell(r.native)} | ${cell(r.wasm)} | ${r.native ? (r.wasm.median / r.native.median).toFixed(1) + "×" : "–"} |`);
}
lines.push("");
lines.push("Route match (`RouteTable::match_request`, a hit among 16 probe paths spread over the table; linear = `RoutePattern::match_path` on each route in order):");
lines.push("");
const counts = [...new Set(rows.filter((r) => r.id.startsWith("route_match/")).map((r) => r.id.split("/")[2]))];
const series = [...new Set(rows.filter((r) => r.id.startsWith("route_match/")).map((r) => r.id.split("/")[1]))];
lines.push(`| routes | ${series.map((s) => `${s} native | ${s} wasm`).join(" | ")} |`);
lines.push(`|---|${series.map(() => "---|---").join("|")}|`);
for (const n of counts) {
  const cells = series.flatMap((s) => {
    const r = rows.find((x) => x.id === `route_match/${s}/${n}`);
    return [r?.native ? ns(r.native.median) : "–", r ? ns(r.wasm.median) : "–"];
  });
  lines.push(`| ${Number(n).toLocaleString("en")} | ${cells.join(" | ")} |`);
}
const growth = series.map((s) => {
  const a = rows.find((x) => x.id === `route_match/${s}/${counts[0]}`)?.native;
  const b = rows.find((x) => x.id === `route_match/${s}/${counts.at(-1)}`)?.native;
  return a && b ? `${s}: ×${(b.median / a.median).toFixed(2)}` : null;
}).filter(Boolean);
lines.push("");
lines.push(`Native growth from ${counts[0]} to ${Number(counts.at(-1)).toLocaleString("en")} routes: ${growth.join(", ")}.`);
lines.push("");
lines.push(`Machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), ${os.type()} ${os.release()}; node ${wasm.node} (V8 ${wasm.v8}); load average ${os.loadavg().map((x) => x.toFixed(2)).join(", ")}; ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC.`);

const text = lines.join("\n") + "\n";
process.stdout.write(text);
if (outFile) writeFileSync(outFile, text);
