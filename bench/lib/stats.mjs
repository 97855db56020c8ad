// Small statistics helpers: quantiles of samples, median and spread of runs.
export const round = (x, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);

/** The q-quantile of an ascending array (nearest rank). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** n, min, p25, p50, p75, p90, p99, max of samples. */
export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => round(quantile(s, q));
  return { n: s.length, min: round(s[0]), p25: at(0.25), p50: at(0.5), p75: at(0.75), p90: at(0.9), p99: at(0.99), max: round(s[s.length - 1]) };
}

/** Median and min–max of one measure over repeated runs. */
export function spread(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { median: round(quantile(v, 0.5)), min: round(v[0]), max: round(v[v.length - 1]), runs: v.length };
}
