// The Worker's entry module (copied to build/worker/shim.mjs by
// scripts/build-worker.sh, replacing worker-build's re-export).
//
// It re-exports what worker-build generated and wraps the `Throttle` Durable
// Object: workerd serves RPC methods only on classes that extend
// `DurableObject`, and wasm-bindgen's class cannot. The wrapper forwards each
// call to the Rust object, which holds all the logic.
import { DurableObject } from "cloudflare:workers";
import { Throttle as RustThrottle } from "../index.js";

export * from "../index.js";
export { default } from "../index.js";

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
