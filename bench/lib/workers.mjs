// The Workers under test, as Miniflare worker options: all of them run in
// ONE workerd process, each on its own direct socket (workerd's own HTTP
// listener, no Miniflare entry worker in the path), against the same origin.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

export const root = fileURLToPath(new URL("../../", import.meta.url));
export const buildDir = `${root}build`;
export const shim = `${buildDir}/worker/shim.mjs`;
export const requireFromTests = createRequire(`${root}tests/package.json`);
const cacheDir = `${root}.cache/bench`;

export async function loadMiniflare() {
  try {
    return (await import(pathToFileURL(requireFromTests.resolve("miniflare")).href)).Miniflare;
  } catch (error) {
    throw new Error(`miniflare is not installed in tests/node_modules: run 'make setup' (${error.message})`);
  }
}

export const compatibilityDate =
  /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}wrangler.toml`, "utf8"))?.[1] ?? "2026-07-30";

export function versions() {
  const v = (name) => JSON.parse(readFileSync(requireFromTests.resolve(`${name}/package.json`), "utf8")).version;
  return { miniflare: v("miniflare"), workerd: v("workerd"), jose: v("jose") };
}

/** Bundles the peer (TypeScript + jose) with esbuild, as wrangler would: one ES module. */
export async function buildPeer() {
  const esbuild = await import(pathToFileURL(requireFromTests.resolve("esbuild")).href);
  mkdirSync(cacheDir, { recursive: true });
  const outfile = `${cacheDir}/peer.mjs`;
  await esbuild.build({
    entryPoints: [`${root}bench/peer/worker.ts`],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    minify: true,
    external: ["cloudflare:workers"],
    nodePaths: [`${root}tests/node_modules`],
    outfile,
    logLevel: "error",
  });
  return outfile;
}

/** The Tidegate build in `dir`, or a clear error. */
export function checkBuild(dir = buildDir) {
  if (!existsSync(`${dir}/worker/shim.mjs`) || !existsSync(`${dir}/index.js`) || !existsSync(`${dir}/index_bg.wasm`)) {
    throw new Error(`${dir}/worker/shim.mjs, index.js or index_bg.wasm is missing: build the Worker first (bash scripts/build-worker.sh --release)`);
  }
}

const drain = (stdout, stderr) => {
  // Workers log a JSON line per request: drain it, do not print it.
  stdout.resume();
  stderr.resume();
};

/** Tidegate from `dir` (build/ by default; another build for an A/B run). */
export function tidegateWorker({ config, adminKey, apiKeys, port, name = "tidegate", dir = buildDir, health = false }) {
  return {
    name,
    compatibilityDate,
    modules: true,
    scriptPath: `${dir}/worker/shim.mjs`,
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    bindings: { TIDEGATE_CONFIG: config, ADMIN_KEY: adminKey, API_KEYS: apiKeys },
    // HEALTH only for builds that export HealthMonitor (issue 18 and later).
    durableObjects: {
      THROTTLE: { className: "Throttle", useSQLite: true },
      ...(health ? { HEALTH: { className: "HealthMonitor", useSQLite: true } } : {}),
    },
    ...(port === undefined ? {} : { unsafeDirectSockets: [{ host: "127.0.0.1", port }] }),
  };
}

function jsWorker(name, scriptPath, port, extra) {
  return {
    name,
    compatibilityDate,
    modules: true,
    scriptPath,
    ...(port === undefined ? {} : { unsafeDirectSockets: [{ host: "127.0.0.1", port }] }),
    ...extra,
  };
}

export const floorWorker = ({ origin, port }) =>
  jsWorker("floor", `${root}bench/workers/floor.js`, port, { bindings: { ORIGIN: origin } });

export const ioFloorWorker = ({ origin, port }) =>
  jsWorker("io-floor", `${root}bench/workers/io-floor.js`, port, {
    bindings: { ORIGIN: origin },
    durableObjects: { IO_COUNTER: { className: "IoCounter", useSQLite: true } },
  });

export const peerWorker = ({ peerPath, origin, jwks, issuer, audience, apiKeys, port }) =>
  jsWorker("peer", peerPath, port, {
    bindings: { ORIGIN: origin, JWKS_URL: `${jwks}/jwks.json`, ISSUER: issuer, AUDIENCE: audience, API_KEYS: apiKeys },
    durableObjects: { LIMITER: { className: "Limiter", useSQLite: true } },
  });

/** Shared Miniflare options: 127.0.0.1, stdio drained. */
export const sharedOptions = (port) => ({ host: "127.0.0.1", port, handleRuntimeStdio: drain });

export function writeCacheFile(name, text) {
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(`${cacheDir}/${name}`, text);
  return `${cacheDir}/${name}`;
}
