// What a Cache API `put` costs in workerd, by how the stored response's body
// is handed over (issue 16: the MISS path). One workerd, one Worker per
// option; each fetches the origin (≈ 100-byte JSON) for a new key per
// request and stores it in `waitUntil`, so the difference in workerd CPU per
// request against `none` (fetch only) is the put's cost, the Cache API
// simulator's share included (Miniflare runs the cache as a service in the
// same workerd; in production it is not the Worker's CPU). No inspector.
//
// Usage: node bench/put-cost.mjs [--rounds 3] [--seconds 3] [--port-base 8780]
import { numberOption } from "./lib/args.mjs";
import { wrkVersion } from "./lib/load.mjs";
import { compareOptions } from "./lib/options.mjs";
import { startOrigin } from "./lib/servers.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback, min, max) => numberOption(args, name, fallback, min, max);
const O = { rounds: opt("rounds", 3, 1, 10), seconds: opt("seconds", 3, 1, 30), portBase: opt("port-base", 8780, 1024, 65000) };
const log = (...a) => console.error("[bench-put-cost]", ...a);
if (!wrkVersion()) throw new Error("wrk is missing: run bash bench/edge.sh once (it installs it) or apt-get install wrk");

const HEADERS = `{ "content-type": fresh.headers.get("content-type") ?? "application/json", "cache-control": "max-age=3600" }`;
const OPTIONS = {
  none: "return fresh;",
  // The peer's and the I/O floor's way: the response's clone, a stream.
  "put-stream": `const r = new Response(fresh.body, fresh); r.headers.set("cache-control", "max-age=3600");
    ctx.waitUntil(caches.default.put(key, r.clone())); return r;`,
  // Tidegate's way: the body read whole from a tee, then stored as a buffer.
  "put-buffer": `const [mine, copy] = fresh.body.tee();
    ctx.waitUntil((async () => { const buf = await new Response(copy).arrayBuffer();
      await caches.default.put(key, new Response(buf, { status: 200, headers: ${HEADERS} })); })());
    return new Response(mine, fresh);`,
  // The tee read whole, then stored as a stream of that buffer.
  "put-buffer-stream": `const [mine, copy] = fresh.body.tee();
    ctx.waitUntil((async () => { const buf = await new Response(copy).arrayBuffer();
      await caches.default.put(key, new Response(new Blob([buf]).stream(), { status: 200, headers: ${HEADERS} })); })());
    return new Response(mine, fresh);`,
};

const origin = await startOrigin(O.portBase);
try {
  await compareOptions({
    options: Object.fromEntries(
      Object.entries(OPTIONS).map(([name, body]) => [
        name,
        `let n = 0;
export default { async fetch(request, env, ctx) {
  const key = "https://cache.put-cost/" + (n += 1) + "/" + Math.random();
  const fresh = await fetch(env.ORIGIN + "/item");
  ${body}
} };`,
      ]),
    ),
    rounds: O.rounds,
    seconds: O.seconds,
    portBase: O.portBase + 1,
    bindings: { ORIGIN: origin.url },
    log,
  });
} finally {
  await origin.close();
}
