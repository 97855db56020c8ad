// Entry module of the rust floor's `sync` variant (bench only): JS does the
// I/O and calls two synchronous wasm functions, with no Rust future and no
// worker-build entry class in the path.
import { DurableObject } from "cloudflare:workers";
import Generated from "../index.js";

// worker-build puts exported wasm functions on its entry class's prototype;
// taken from there they are the plain wasm-bindgen wrappers (the class's
// Proxy only wraps methods reached through an instance).
const { floor_plan, floor_log_line } = Generated.prototype;

export default {
  async fetch(request, env) {
    const target = floor_plan(request.url, env.TIDEGATE_CONFIG ?? "");
    const resp = await fetch(target, request);
    console.log(floor_log_line(request.url, resp.status));
    return resp;
  },
};

export class Throttle extends DurableObject {}
