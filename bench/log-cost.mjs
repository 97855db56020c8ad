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
import { wrkVersion } from "./lib/load.mjs";
import { compareOptions } from "./lib/options.mjs";

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

await compareOptions({
  options: Object.fromEntries(
    Object.entries(OPTIONS).map(([name, body]) => [name, `export default { fetch() { ${body} return new Response("ok"); } };`]),
  ),
  rounds: O.rounds,
  seconds: O.seconds,
  portBase: O.portBase,
  log,
});
