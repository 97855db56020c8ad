// A JWKS endpoint on 127.0.0.1: serves one key set per path, lets a spec
// replace a set (key rotation) and counts fetches per path, so specs can
// assert that unknown kids do not make the gateway fetch on every request.
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";

export type PublicJwk = Record<string, unknown> & { kid: string };

export class JwksServer {
  private readonly sets = new Map<string, PublicJwk[]>();
  private readonly counts = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<JwksServer> {
    const jwks: { self?: JwksServer } = {};
    const server = createServer((req, res) => {
      const self = jwks.self;
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      if (!self || req.method !== "GET") {
        res.statusCode = 405;
        res.end();
        return;
      }
      self.counts.set(path, (self.counts.get(path) ?? 0) + 1);
      const keys = self.sets.get(path);
      if (!keys) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys }));
    });
    // Longer than any run: a server closing an idle connection just as workerd
    // reuses it would turn into a spurious 502. stop() and close() destroy sockets.
    server.keepAliveTimeout = 300_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("jwks: no TCP address");
    jwks.self = new JwksServer(server, address.port);
    return jwks.self;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Publishes `keys` at `path` (replacing what was there): a rotation. */
  setKeys(path: string, keys: PublicJwk[]): void {
    this.sets.set(path, keys);
  }

  /** How many times `path` was fetched. */
  fetches(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
