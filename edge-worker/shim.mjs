// The Worker's entry module (copied to build/worker/shim.mjs by
// scripts/build-worker.sh, replacing worker-build's re-export).
//
// It re-exports what worker-build generated, with two additions:
//
// - The default export extends worker-build's entry class with the
//   synchronous fast path (edge-worker/src/fast/): a request the policy
//   calls a plain proxy is planned by one synchronous wasm call, its origin
//   fetch awaited here, and its response finished by one more; a new bearer
//   token whose key is held and imported is planned as a `FastVerify`: its
//   signature checked here with `crypto.subtle.verify`, the answer handed
//   back with one more synchronous call (`resume`), which gives the next
//   step or sends the request the full way (a bad signature, a refusal);
//   a request on a cached route is planned as a `FastLookup`: the entry
//   looked up here, a fresh one answered by one more call (`serve`), a miss
//   filled as a proxy request whose answer the Rust side stores in the
//   background (`ctx.waitUntil`), the rest sent the full way with the lookup
//   handed over.
//   Every other request goes to the Rust `fetch` unchanged. The binding
//   `TIDEGATE_FAST_PATH = "off"` sends every request the full way.
// - It wraps the `Throttle` Durable Object: workerd serves RPC methods only on
//   classes that extend `DurableObject`, and wasm-bindgen's class cannot. The
//   wrapper forwards each call to the Rust object, which holds all the logic.
import { DurableObject } from "cloudflare:workers";
import Generated, { FastLookup, FastProxy, FastVerify, Throttle as RustThrottle } from "../index.js";

export * from "../index.js";

// worker-build puts exported wasm functions on its entry class's prototype,
// where they would also be RPC methods of this entrypoint: taken off it.
const entry = Generated.prototype;
const plan = entry.tidegatePlan;
delete entry.tidegatePlan;

// The problem+json the Rust path gives for a runtime failure
// (EdgeError::Runtime), for a failure that leaves no wasm to render it.
const INTERNAL = JSON.stringify({
  type: "https://tidegate.dev/problems/internal",
  title: "Internal error",
  status: 500,
  detail: "The gateway failed to handle this request.",
});

/**
 * A failure on the fast path that the wasm could not turn into a response
 * itself (a trap, or a throw where none is expected): a problem+json 500,
 * never a rejection. A trap leaves the instance unusable: flagged so that
 * worker-build's entry proxy starts a new one for the next request.
 */
function failed(error) {
  if (error instanceof WebAssembly.RuntimeError && globalThis.__worker_init_state) {
    globalThis.__worker_init_state.criticalError = true;
  }
  console.error(JSON.stringify({ error: `fast path: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` }));
  return new Response(INTERNAL, { status: 500, headers: { "content-type": "application/problem+json" } });
}

/** The planned proxy request: sent, awaited, finished. */
async function proxied(proxy, request) {
  try {
    let answer;
    try {
      answer = await proxy.send(request.body);
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) throw error;
      return proxy.unreachable(error);
    }
    return proxy.answer(answer);
  } catch (error) {
    return failed(error);
  }
}

/**
 * The planned cache lookup: the Cache API's answer for the entry's key
 * (none when `match` rejects, as the full path reads a failed lookup), then
 * `serve` answers a fresh entry, gives a `FastProxy` that fills a miss (sent
 * and finished as a proxy request; its answer stored by `answer`), or gives
 * `undefined`: the full path, handed the lookup (so it does not look up
 * again).
 */
async function lookedUp(lookup, request, full) {
  let key;
  try {
    key = lookup.key;
  } catch (error) {
    return failed(error);
  }
  let found;
  try {
    found = await caches.default.match(key);
  } catch {
    found = undefined;
  }
  let answer;
  try {
    answer = lookup.serve(found, request);
  } catch (error) {
    return failed(error);
  }
  if (answer === undefined) return full();
  return answer instanceof FastProxy ? proxied(answer, request) : answer;
}

/** The step after the plan (or after `resume`): run, or the full path. */
function next(step, request, full) {
  if (step instanceof FastLookup) return lookedUp(step, request, full);
  if (step instanceof FastVerify) return verified(step, request, full);
  if (step !== undefined) return proxied(step, request);
  return full();
}

/**
 * The planned request whose token's signature is checked here: WebCrypto
 * answers, `resume` finishes the plan with the answer (false when verify
 * threw or rejected) and gives the next step (a proxy or a cache lookup),
 * or `undefined` for the full path, which checks the token again and
 * renders any refusal. A throw or trap of the wasm calls (the getters,
 * `resume`) is the fast path's 500.
 */
async function verified(step, request, full) {
  let args;
  try {
    args = [step.algorithm, step.key, step.signature, step.data];
  } catch (error) {
    return failed(error);
  }
  let valid = false;
  try {
    valid = (await crypto.subtle.verify(...args)) === true;
  } catch {
    valid = false;
  }
  let after;
  try {
    after = step.resume(valid);
  } catch (error) {
    return failed(error);
  }
  return next(after, request, full);
}

export default class Tidegate extends Generated {
  fetch(request) {
    const env = this.env;
    if (env.TIDEGATE_FAST_PATH !== "off") {
      let step;
      try {
        step = plan(request.method, request.url, request.headers, env, this.ctx);
      } catch (error) {
        return failed(error);
      }
      return next(step, request, () => super.fetch(request));
    }
    return super.fetch(request);
  }
}

export class Throttle extends DurableObject {
  #inner;

  constructor(ctx, env) {
    super(ctx, env);
    this.#inner = new RustThrottle(ctx, env);
  }

  fetch(request) {
    return this.#inner.fetch(request);
  }

  /** One JSON limiter op in, one JSON reply out (edge-worker/src/durable.rs). */
  decide(op) {
    return this.#inner.decide(op);
  }
}
