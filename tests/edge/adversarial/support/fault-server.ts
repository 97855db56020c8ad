// An HTTP server on 127.0.0.1 that misbehaves on demand, per path: serves
// a fixed body (a JWKS, JSON), answers slowly, answers a status, sends
// garbage, writes raw bytes no HTTP library would, or breaks the connection
// before or in the middle of an answer.
// Counts requests per path. Used as an origin and as a JWKS endpoint.
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";

export type Fault =
  | { kind: "ok"; body: string; headers?: Record<string, string> }
  | { kind: "slow"; delayMs: number; body: string }
  | { kind: "status"; status: number; body?: string }
  /** Destroys the socket before sending anything. */
  | { kind: "reset-before-headers" }
  /** Sends headers and half the announced body, then destroys the socket. */
  | { kind: "reset-mid-body" }
  /** Accepts the request and never answers (until stopped). */
  | { kind: "hang" }
  /**
   * Writes these bytes on the connection as the whole answer (status line,
   * headers, body: anything, including what HTTP does not allow), then
   * closes it, or keeps it open for `holdMs` first.
   */
  | { kind: "raw"; bytes: Buffer; holdMs?: number };

export class FaultServer {
  private readonly faults = new Map<string, Fault>();
  private readonly counts = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<FaultServer> {
    const holder: { self?: FaultServer } = {};
    const server = createServer((req, res) => holder.self?.handle(req.url ?? "/", req.socket, res));
    server.keepAliveTimeout = 300_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("fault server: no TCP address");
    const self = new FaultServer(server, address.port);
    server.on("connection", (socket) => {
      self.sockets.add(socket);
      socket.on("close", () => self.sockets.delete(socket));
    });
    holder.self = self;
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What `path` (exact, query ignored) does from now on. */
  set(path: string, fault: Fault): void {
    this.faults.set(path, fault);
  }

  /** Requests `path` received. */
  hits(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  private handle(url: string, socket: Socket, res: import("node:http").ServerResponse): void {
    const path = url.split("?")[0] ?? "/";
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    const fault = this.faults.get(path) ?? { kind: "status", status: 404 };
    switch (fault.kind) {
      case "ok":
        res.writeHead(200, { "content-type": "application/json", ...fault.headers });
        res.end(fault.body);
        return;
      case "slow": {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (!res.destroyed) {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(fault.body);
          }
        }, fault.delayMs);
        this.timers.add(timer);
        res.on("close", () => clearTimeout(timer));
        return;
      }
      case "status":
        res.writeHead(fault.status, { "content-type": "text/plain" });
        res.end(fault.body ?? "");
        return;
      case "reset-before-headers":
        socket.destroy();
        return;
      case "reset-mid-body":
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
        res.write(`{"partial":"${"x".repeat(400)}`);
        setTimeout(() => socket.destroy(), 20);
        return;
      case "hang":
        return;
      case "raw": {
        socket.write(fault.bytes);
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          socket.destroy();
        }, fault.holdMs ?? 0);
        this.timers.add(timer);
        return;
      }
    }
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
