// The floor: a bare pass-through Worker. It forwards the request to the
// origin and returns the answer, nothing else: what workerd, the loopback
// origin and the load generator cost by themselves.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(`${env.ORIGIN}${url.pathname}${url.search}`, { method: request.method, headers: request.headers });
  },
};
