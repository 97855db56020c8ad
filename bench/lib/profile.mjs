// CPU profiles of one Worker's isolate through workerd's inspector (the V8
// sampling profiler, as `wrangler check startup` uses it). The isolate's
// thread time that is not "(idle)" is the CPU that Worker (and its Durable
// Objects, same isolate) spent: JS, wasm, GC and the runtime's own calls from
// them. This is the closest local measure of what Cloudflare bills as CPU time.

/** Opens the inspector session of `worker` on Miniflare's inspector URL. */
export async function openProfiler(inspectorUrl, worker, intervalUs = 100) {
  const ws = new WebSocket(new URL(`/core:user:${worker}`, inspectorUrl));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`inspector of ${worker}: cannot connect`));
  });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(`${msg.error.message}`));
      else resolve(msg.result);
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      id += 1;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: intervalUs });
  return {
    start: () => send("Profiler.start"),
    stop: async () => analyse((await send("Profiler.stop")).profile),
    /** The raw V8 profile (nodes, samples, timeDeltas), for `inclusive`. */
    stopRaw: async () => (await send("Profiler.stop")).profile,
    close: () => ws.close(),
  };
}

/** Busy, idle and GC time of a profile, and the heaviest functions by self time. */
export function analyse(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000; // ms; the delta after a sample belongs to it
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  let idle = 0;
  let gc = 0;
  let busy = 0;
  const functions = new Map();
  for (const [nodeId, ms] of self) {
    const { callFrame } = byId.get(nodeId);
    const name = callFrame.functionName || "(anonymous)";
    if (name === "(idle)") {
      idle += ms;
      continue;
    }
    if (name === "(garbage collector)") gc += ms;
    busy += ms;
    const where = callFrame.url ? callFrame.url.split("/").pop() : "";
    const key = `${name}${where ? ` ${where}` : ""}`;
    functions.set(key, (functions.get(key) ?? 0) + ms);
  }
  const top = [...functions.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 12)).map(([name, ms]) => ({ name, ms: Number(ms.toFixed(3)) }));
  return { busyMs: busy, idleMs: idle, gcMs: gc, wallMs: (profile.endTime - profile.startTime) / 1000, top };
}

/**
 * Inclusive time per function (ms): each sample's time counted once for
 * every distinct function on its stack, so a caller's figure holds its
 * callees'. Says which step of a request costs what, where self time
 * (`analyse`) scatters it over leaves (allocator, memcpy, formatting).
 */
export function inclusive(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const seen = new Set();
    for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const { callFrame } = byId.get(id);
      const name = callFrame.functionName || "(anonymous)";
      if (name === "(idle)" || name === "(root)") continue;
      const where = callFrame.url ? callFrame.url.split("/").pop() : "";
      seen.add(`${name}${where ? ` ${where}` : ""}`);
    }
    for (const key of seen) total.set(key, (total.get(key) ?? 0) + dt);
  }
  return total;
}
