// A stand-in for the Throttle Durable Object that fails on demand, bound as
// THROTTLE in the fault specs. POST /mode?m=<mode> on this worker switches
// every instance: throw (the default), status-500, garbage,
// no-decision, slow (answers after 10 s).
let mode = "throw";

export class BrokenThrottle {
  async fetch() {
    switch (mode) {
      case "throw":
        throw new Error("limiter object crashed (injected)");
      case "status-500":
        return new Response("injected failure", { status: 500 });
      case "garbage":
        return new Response("<html>not json</html>", { status: 200 });
      case "no-decision":
        return Response.json({ decision: null, tat_ns: 0, stored: false, now_ms: Date.now() });
      case "slow":
        await new Promise((resolve) => setTimeout(resolve, 10_000));
        return Response.json({ decision: null, tat_ns: 0, stored: false, now_ms: Date.now() });
      default:
        return new Response("unknown mode", { status: 500 });
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
