// Command-line options of the bench scripts.

/** `--name N` from `args` as a number in min..max, or `fallback` when absent. */
export function numberOption(args, name, fallback, min, max) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(args[i + 1]);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in ${min}..${max}`);
  return n;
}
