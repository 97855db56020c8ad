// Renders bench/edge.mjs's report as the Markdown tables BENCHMARKS.md holds.
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const mm = (s, d = 2) => `${f(s.median, d)} (${f(s.min, d)}–${f(s.max, d)})`;
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);
const verdict = (ok) => (ok ? "✔ met" : "✘ missed");

export function markdown(r) {
  const m = r.machine;
  const o = r.options;
  const out = [];
  const t = r.throughput?.table ?? {};
  out.push(`### Run of ${m.date}`);
  out.push("");
  out.push(`- Command: \`${r.command}\``);
  out.push(
    `- Machine: ${m.nproc} × ${m.cpu}; ${m.os}; node ${m.node}; miniflare ${m.miniflare} (workerd ${m.workerd}); wrk ${m.wrk}; jose ${m.jose}.`,
  );
  out.push(`- Load average (1 min) at start ${m.loadavg[0]}, at end ${m.loadavgEnd?.[0]}; per scenario in the JSON report.`);
  out.push(
    `- Load: wrk -t1 -c${o.connections}, ${o.rounds} round(s) × ${o.seconds} s per scenario after 1 s warm-up, scenario order rotated each round; ${r.tokens.pool} distinct RS256 tokens over ${r.tokens.subjects} subjects, cycled (rows marked "repeated token": ${o.connections} tokens, one per connection's worth of requests, each back every ${o.connections} requests; Tidegate's token cache holds ${Math.floor(r.tokens.pool / 2)}, oldest out first, so the distinct-token rows never find a token in it); JWKS fetched ${r.jwksFetches} time(s) in all.`,
  );
  out.push("");

  out.push("| path | Worker | req/s median (min–max) | latency p50 ms median (min–max) | p99 ms median (min–max) | workerd CPU ms/req median (min–max) | origin calls/req |");
  out.push("|---|---|---|---|---|---|---|");
  const order = ["proxy", "apikey", "jwt", "jwt-reuse", "limited", "limited-reuse", "miss", "miss-reuse", "hit", "hit-reuse", "public-hit"];
  const labels = {
    proxy: "no-auth proxy",
    apikey: "API key + proxy",
    jwt: "RS256 JWT + proxy",
    "jwt-reuse": "RS256 JWT + proxy (repeated token)",
    limited: "JWT + DO limiter + proxy",
    "limited-reuse": "JWT + DO limiter + proxy (repeated token)",
    miss: "JWT + limiter + cache MISS",
    "miss-reuse": "JWT + limiter + cache MISS (repeated token)",
    hit: "JWT + limiter + cache HIT (private)",
    "hit-reuse": "JWT + limiter + cache HIT (private, repeated token)",
    "public-hit": "cache HIT (public, no auth)",
  };
  /** The path whose I/O floor a path is measured against: a repeated token changes no I/O. */
  const floorPath = (path) => {
    const p = path.replace(/-reuse$/, "");
    return p === "apikey" || p === "jwt" ? "proxy" : p;
  };
  for (const path of order) {
    for (const worker of ["floor", "io-floor", "tidegate", "tidegate-b", "peer"]) {
      const s = t[worker]?.[path];
      if (!s) continue;
      out.push(`| ${labels[path]} | ${worker} | ${mm(s.rps, 0)} | ${mm(s.p50)} | ${mm(s.p99)} | ${mm(s.workerdCpuMs, 3)} | ${f(s.originPerRequest.median)} |`);
    }
  }
  out.push("");

  const fl = t.floor?.proxy;
  if (fl) {
    out.push(
      `The load generator is not the bottleneck: on the floor (the cheapest path, highest rate) wrk used ${f(fl.wrkCpuMs.median, 3)} ms CPU per request and the node process (origin + JWKS) ${f(fl.nodeCpuMs.median, 3)} ms, against ${f(fl.workerdCpuMs.median, 3)} ms for workerd; every other path runs at a lower rate with the same per-request client cost.`,
    );
    out.push("");
  }

  // Gateway CPU: workerd CPU per request minus the I/O-equivalent floor's on the same path.
  const io = (path) => t["io-floor"]?.[path]?.workerdCpuMs.median;
  out.push("Own CPU per request (workerd CPU/req minus the I/O-equivalent floor's on the same path; median of rounds):");
  out.push("");
  const b_ = t["tidegate-b"] ? " tidegate-b − floor ms |" : "";
  out.push(`| path | I/O floor ms | Tidegate − floor ms | peer − floor ms |${b_}`);
  out.push(`|---|---|---|---|${b_ ? "---|" : ""}`);
  for (const path of order) {
    const base = io(floorPath(path));
    if (!Number.isFinite(base)) continue;
    const own = (w) => f(t[w]?.[path]?.workerdCpuMs.median - base, 3);
    out.push(`| ${labels[path]} | ${f(base, 3)} | ${own("tidegate")} | ${own("peer")} |${b_ ? ` ${own("tidegate-b")} |` : ""}`);
  }
  out.push("");

  if (r.isolateCpu) {
    const c = r.isolateCpu;
    out.push("CPU inside the Worker's isolate (V8 sampling profiler through workerd's inspector, 100 µs; busy time ÷ requests, one sequential client; the Worker's Durable Objects run in the same isolate and are included):");
    out.push("");
    const hasB = Boolean(c["tidegate-b"]);
    out.push(`| path | floor | io-floor | Tidegate | peer |${hasB ? " tidegate-b |" : ""} Tidegate's heaviest functions (self ms over the run) |`);
    out.push(`|---|---|---|---|---|${hasB ? "---|" : ""}---|`);
    for (const path of order) {
      const cell = (w) => (c[w]?.[path] ? f(c[w][path].cpuMs, 3) : "");
      const top = (c.tidegate?.[path]?.top ?? []).slice(0, 3).map((x) => `${x.name.replace(/::h[0-9a-f]{16}/, "").replace(/ tidegate_edge\.wasm-[0-9a-f]+/, " (wasm)").slice(0, 70)} ${f(x.ms, 1)}`).join("; ");
      out.push(`| ${labels[path]} | ${cell("floor")} | ${cell("io-floor")} | ${cell("tidegate")} | ${cell("peer")} |${hasB ? ` ${cell("tidegate-b")} |` : ""} ${top} |`);
    }
    out.push("");
  }

  const floorP50 = t.floor?.proxy?.p50.median;
  out.push("Targets (issues 6 and 16), medians of rounds:");
  out.push("");
  out.push("| target | figure | verdict |");
  out.push("|---|---|---|");
  for (const path of ["miss", "hit"]) {
    const tg = t.tidegate?.[path];
    const peer = t.peer?.[path];
    if (tg && floorP50) {
      const x = ratio(tg.p50.median, floorP50);
      out.push(`| ${labels[path]}: p50 within 1.5× the floor's | ${f(tg.p50.median)} / ${f(floorP50)} ms = ${f(x)}× | ${verdict(x <= 1.5)} |`);
    }
    if (tg && peer) {
      const x = ratio(tg.p50.median, peer.p50.median);
      const y = ratio(tg.rps.median, peer.rps.median);
      out.push(`| ${labels[path]}: at least as fast as the peer | p50 ${f(x)}× the peer's; throughput ${f(y)}× | ${verdict(x <= 1.0 && y >= 1.0)} |`);
    }
  }
  // Issue 16, clients that reuse their token: every authenticated path at
  // least 1.5× the peer's throughput, RS256 within 1.5× of the no-auth proxy.
  for (const path of ["apikey", "jwt-reuse", "limited-reuse", "hit-reuse"]) {
    const tg = t.tidegate?.[path];
    const peer = t.peer?.[path];
    if (tg && peer) {
      const y = ratio(tg.rps.median, peer.rps.median);
      out.push(`| ${labels[path]}: at least 1.5× the peer's throughput | ${f(tg.rps.median, 0)} / ${f(peer.rps.median, 0)} req/s = ${f(y)}× | ${verdict(y >= 1.5)} |`);
    }
  }
  const proxyRps = t.tidegate?.proxy?.rps.median;
  const jwtReuseRps = t.tidegate?.["jwt-reuse"]?.rps.median;
  if (proxyRps && jwtReuseRps) {
    const x = ratio(proxyRps, jwtReuseRps);
    out.push(`| ${labels["jwt-reuse"]}: within 1.5× of the no-auth proxy | proxy ${f(proxyRps, 0)} / ${f(jwtReuseRps, 0)} req/s = ${f(x)}× | ${verdict(x <= 1.5)} |`);
  }
  const hit = t.tidegate?.hit?.p50.median;
  const miss = t.tidegate?.miss?.p50.median;
  if (hit && miss) out.push(`| cache HIT faster than a proxied MISS | HIT p50 ${f(hit)} ms vs MISS ${f(miss)} ms | ${verdict(hit < miss)} |`);
  out.push("");

  const b = r.bundle;
  const s = r.startup;
  out.push("Budgets (issue 3):");
  out.push("");
  out.push("| measure | figure | budget |");
  out.push("|---|---|---|");
  out.push(`| index_bg.wasm raw / gzip -9 | ${kib(b.wasm.raw)} / ${kib(b.wasm.gzip)} | |`);
  out.push(`| Tidegate upload (shim.mjs + index.js + wasm) raw / gzip -9 | ${kib(b.tidegate.raw)} / **${kib(b.tidegate.gzip)}** | < 1 MB: ${verdict(b.tidegate.gzip < 1024 * 1024)} |`);
  if (r.bundleB) out.push(`| tidegate-b upload (${r.options.compareBuild}) raw / gzip -9 | ${kib(r.bundleB.raw)} / ${kib(r.bundleB.gzip)} | |`);
  out.push(`| peer bundle (esbuild, minified, jose included) raw / gzip -9 | ${kib(b.peer.raw)} / ${kib(b.peer.gzip)} | |`);
  if (r.wasmCompileNode) {
    out.push(`| wasm compile in node, p50 (min–max) | ${f(r.wasmCompileNode.p50, 1)} ms (${f(r.wasmCompileNode.min, 1)}–${f(r.wasmCompileNode.max, 1)}) | |`);
  } else {
    out.push("| wasm compile in node | not measured: this node's V8 lacks wasm features workerd's has | |");
  }
  for (const kind of ["tidegate", "peer", "trivial"]) {
    const k = s[kind];
    out.push(`| startup ${kind}: module evaluation in a fresh isolate, p50 (min–max) | ${f(k.importMs.p50, 1)} ms (${f(k.importMs.min, 1)}–${f(k.importMs.max, 1)}) | ${kind === "tidegate" ? `< 50 ms: ${verdict(k.importMs.p50 < 50)}` : ""} |`);
    if (k.firstMs.n) out.push(`| startup ${kind}: 1st request after it (config parse), p50 (min–max); 2nd | ${f(k.firstMs.p50, 1)} ms (${f(k.firstMs.min, 1)}–${f(k.firstMs.max, 1)}); ${f(k.secondMs.p50, 1)} ms | |`);
  }
  const hitCpu = t.tidegate?.["public-hit"]?.workerdCpuMs.median - io("public-hit");
  const privHitCpu = t.tidegate?.hit?.workerdCpuMs.median - io("hit");
  const missCpu = t.tidegate?.miss?.workerdCpuMs.median - io("miss");
  out.push(`| gateway CPU/req, cache HIT public (private, JWT + limiter) | ${f(hitCpu, 3)} ms (${f(privHitCpu, 3)} ms) | well under 1 ms: ${verdict(hitCpu < 0.5)} |`);
  out.push(`| gateway CPU/req, RS256 + throttled cache MISS | ${f(missCpu, 3)} ms | < 2 ms: ${verdict(missCpu < 2)} |`);
  out.push("");

  if (r.limiter) {
    out.push("Limiter: one hot key, limit 100 per hour, exact count of requests at each concurrency (node:http client):");
    out.push("");
    out.push("| Worker | concurrency | sent | admitted (limit 100) | refused 429 | other | decisions/s |");
    out.push("|---|---|---|---|---|---|---|");
    for (const [w, rows] of Object.entries(r.limiter)) {
      for (const x of rows) out.push(`| ${w} | ${x.concurrency} | ${x.total} | ${x.admitted} | ${x.refused} | ${x.other} | ${x.decisionsPerS} |`);
    }
    out.push("");
  }
  if (r.hotKey) {
    out.push("Limiter hot key: one key, limit 1,000,000 per hour (never reached), limiter object calls per request (Tidegate: admin stats/limiter; the peer: one per request by construction):");
    out.push("");
    out.push("| Worker | concurrency | sent | admitted | other | decisions/s | object calls / request |");
    out.push("|---|---|---|---|---|---|---|");
    for (const [w, rows] of Object.entries(r.hotKey)) {
      for (const x of rows) out.push(`| ${w} | ${x.concurrency} | ${x.total} | ${x.admitted} | ${x.other} | ${x.decisionsPerS} | ${x.callsPerRequest ?? "?"} |`);
    }
    out.push("");
  }
  return out.join("\n");
}
