// A stand-in for the Throttle Durable Object that fails on demand, bound as
// THROTTLE in the fault specs. POST /mode?m=<mode> on this worker switches
// every instance. Each mode breaks the RPC method `decide` the gateway calls:
// throw (the default), non-string (an object instead of a JSON string),
// garbage (a string that is not JSON), no-decision (a reply without a
// decision), slow (answers after 10 s).
import { DurableObject } from "cloudflare:workers";

let mode = "throw";
const noDecision = () => JSON.stringify({ decision: null, tat_ns: 0, stored: false, now_ms: Date.now() });

export class BrokenThrottle extends DurableObject {
  async decide() {
    switch (mode) {
      case "throw":
        throw new Error("limiter object crashed (injected)");
      case "non-string":
        return { allowed: true };
      case "garbage":
        return "<html>not json</html>";
      case "no-decision":
        return noDecision();
      case "slow":
        await new Promise((resolve) => setTimeout(resolve, 10_000));
        return noDecision();
      default:
        throw new Error(`unknown mode ${mode}`);
    }
  }
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/mode") {
      mode = url.searchParams.get("m") ?? "throw";
      return new Response(mode);
    }
    return new Response("not found", { status: 404 });
  },
};
