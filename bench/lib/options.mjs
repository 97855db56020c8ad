// A side-by-side of small JS Workers, one per option of one question (how to
// log a line, how to store a response...): all in one workerd, each on its
// own direct socket, wrk against each in rotated order for `rounds` rounds,
// and a table of workerd CPU per request against the option named `none`.
// No inspector. Used by bench/log-cost.mjs and bench/put-cost.mjs.
import { runWrk } from "./load.mjs";
import { childPids, cpuMs, load } from "./proc.mjs";
import { round, spread } from "./stats.mjs";
import { compatibilityDate, loadMiniflare, sharedOptions, writeCacheFile } from "./workers.mjs";

/**
 * Runs `options` (name → module source; one must be `none`) on ports
 * `portBase + 1…` and prints the table; `bindings` go to every Worker.
 * Answers other than 200 stop the run.
 */
export async function compareOptions({ options, rounds, seconds, portBase, bindings = {}, log }) {
  const workers = Object.entries(options).map(([name, script], i) => ({ name, script, port: portBase + 1 + i }));
  const Miniflare = await loadMiniflare();
  const mf = new Miniflare({
    ...sharedOptions(portBase),
    workers: workers.map((w) => ({
      name: w.name,
      compatibilityDate,
      modules: true,
      script: w.script,
      bindings,
      unsafeDirectSockets: [{ host: "127.0.0.1", port: w.port }],
    })),
  });
  await mf.ready;
  const pids = childPids(/workerd/);
  const tokensFile = writeCacheFile("options-tokens.txt", "");
  const results = Object.fromEntries(workers.map((w) => [w.name, []]));
  try {
    for (let r = 0; r < rounds; r += 1) {
      const order = workers.slice(r % workers.length).concat(workers.slice(0, r % workers.length));
      for (const w of order) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        const before = cpuMs(pids);
        const run = await runWrk({ url: `http://127.0.0.1:${w.port}`, path: "/", mode: "none", unique: false, seconds, connections: 8, tokensFile });
        const perReq = (cpuMs(pids) - before) / run.requests;
        if (run.non200 > 0) throw new Error(`${w.name}: ${run.non200} answers other than 200`);
        results[w.name].push({ rps: run.rps, cpuMs: perReq });
        log(`${w.name.padEnd(18)} ${run.rps.toFixed(0)} req/s  workerd ${(perReq * 1000).toFixed(1)} µs/req  (load ${load()[0]})`);
      }
    }
  } finally {
    await mf.dispose();
  }
  const base = spread(results.none.map((x) => x.cpuMs)).median;
  console.log(`\n| option | req/s median | workerd CPU µs/req median (min–max) | minus \`none\` µs |\n|---|---|---|---|`);
  for (const w of workers) {
    const cpu = spread(results[w.name].map((x) => x.cpuMs));
    const rps = spread(results[w.name].map((x) => x.rps));
    console.log(`| ${w.name} | ${round(rps.median, 0)} | ${round(cpu.median * 1000, 1)} (${round(cpu.min * 1000, 1)}–${round(cpu.max * 1000, 1)}) | ${round((cpu.median - base) * 1000, 1)} |`);
  }
}
