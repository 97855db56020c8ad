// The origin and the JWKS server: node:http on 127.0.0.1, keep-alive.
import { createServer } from "node:http";

async function listen(port, handler) {
  const server = createServer(handler);
  server.keepAliveTimeout = 300_000;
  const sockets = new Set();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`cannot listen on 127.0.0.1:${port}: ${e.message}`)));
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    hits: 0,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A small JSON echo (about 100 bytes), cacheable: the routes' cache rules decide the TTL. */
export async function startOrigin(port) {
  const origin = await listen(port, (req, res) => {
    req.resume();
    req.on("end", () => {
      origin.hits += 1;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ method: req.method, url: req.url, subject: req.headers["x-tidegate-subject"] ?? req.headers["x-user-subject"] ?? null }));
    });
  });
  return origin;
}

export async function startJwks(port, jwk) {
  const jwks = await listen(port, (req, res) => {
    jwks.hits += 1;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  return jwks;
}
