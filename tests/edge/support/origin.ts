// The origin behind the gateway: a node:http server on 127.0.0.1 that echoes
// each request as JSON, counts hits per path, and can be told, per path, to
// answer with another status, extra headers (Cache-Control, Set-Cookie, ...)
// or after a delay. It can be stopped and restarted on the same port, so a
// spec can take it down (stale-if-error) and bring it back.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** What the origin answers on one path (exact path, query ignored). */
export interface Behaviour {
  /** Status to answer with (default 200). */
  status?: number;
  /** Extra response headers; an array value sends the header several times. */
  headers?: Record<string, string | string[]>;
  /** Answer only after this many milliseconds (the request may be aborted first). */
  delayMs?: number;
  /** Answer with a text body of this many bytes (see `bodyOf`) instead of the JSON echo. */
  bodyBytes?: number;
  /** Send the body in two writes without `Content-Length` (`Transfer-Encoding: chunked`). */
  chunked?: boolean;
  /**
   * Sends `ETag: <etag>` and answers a request whose `If-None-Match` matches it
   * (weak comparison, RFC 9110 §13.1.2; a list; `*`) with 304 and no body.
   */
  etag?: string;
  /**
   * Sends `Last-Modified: <lastModified>` and, when the request has no
   * `If-None-Match`, answers `If-Modified-Since` at or after it with 304 (RFC 9110 §13.1.3).
   */
  lastModified?: string;
  /** Headers computed when the answer is sent (Date, Expires, Last-Modified relative to now); win over `headers`. */
  dynamicHeaders?: () => Record<string, string>;
}

/** The opaque tag of an entity tag, without `W/` (RFC 9110 §8.8.3.2 weak comparison). */
const opaqueTag = (tag: string) => tag.trim().replace(/^W\//, "");

/** Whether an `If-None-Match` field value matches `etag` by weak comparison (RFC 9110 §13.1.2). */
export function noneMatchHits(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === "*") return true;
  const ours = opaqueTag(etag);
  return (ifNoneMatch.match(/(?:W\/)?"[^"]*"/g) ?? []).some((tag) => opaqueTag(tag) === ours);
}

/** The body a `bodyBytes` behaviour sends: `size` bytes of a repeating, position-dependent pattern. */
export function bodyOf(size: number): string {
  const line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n";
  return line.repeat(Math.ceil(size / line.length)).slice(0, size);
}

/** The JSON body of every origin response. */
export interface Echo {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Lower-case header name → values joined by ", " (node's view). */
  headers: Record<string, string>;
  /** Every header line as received, in order: spots duplicates. */
  rawHeaders: [string, string][];
  /** How many requests this path (without query) has received, this one included. */
  hit: number;
  /** The request body (first 4 KiB). */
  body: string;
}

/** Longest a delayed answer may be held, whatever a spec asks. */
const MAX_DELAY_MS = 30_000;
/** Requests kept for inspection. */
const MAX_RECORDED = 1_000;

export class Origin {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly hitCounts = new Map<string, number>();
  private readonly notModifiedCounts = new Map<string, number>();
  private readonly recorded: Echo[] = [];
  private boundPort = 0;
  /**
   * Send `Date` rounded up to the next whole second (a clock at most 1 s ahead)
   * unless the behaviour sets one. node's own Date is rounded down, so an entry
   * can look up to a second old (RFC 9111 §4.2.3 apparent age) the moment it
   * arrives, which makes checks on max-age=1 racy; rounded up, its apparent age is 0.
   */
  dateRoundedUp = false;

  /** Starts listening on 127.0.0.1 (an ephemeral port the first time, the same port after `stop`). */
  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.handle(req, res));
    // Longer than any run: a server closing an idle connection just as workerd
    // reuses it would turn into a spurious 502. stop() and close() destroy sockets.
    server.keepAliveTimeout = 300_000;
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.boundPort, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("origin: no TCP address");
    this.boundPort = address.port;
    this.server = server;
  }

  /** Stops listening and drops every open connection: the port refuses connections until `start`. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  get port(): number {
    return this.boundPort;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  get running(): boolean {
    return this.server !== null;
  }

  /** Makes `path` (exact, without query) answer as described until `reset`. */
  respond(path: string, behaviour: Behaviour): void {
    this.behaviours.set(path, behaviour);
  }

  /** Back to the plain 200 echo on `path`. */
  reset(path: string): void {
    this.behaviours.delete(path);
  }

  /** Requests `path` (without query) has received. */
  hits(path: string): number {
    return this.hitCounts.get(path) ?? 0;
  }

  /** 304s `path` (without query) has answered to conditional requests (`etag` / `lastModified`). */
  notModified(path: string): number {
    return this.notModifiedCounts.get(path) ?? 0;
  }

  /** Every request `path` (without query) has received, oldest first (of the last 1,000 kept). */
  requests(path: string): Echo[] {
    return this.recorded.filter((e) => e.url.split("?")[0] === path);
  }

  /** The last request the origin received on `path` (without query), if any. */
  last(path: string): Echo | undefined {
    for (let i = this.recorded.length - 1; i >= 0; i--) {
      const e = this.recorded[i];
      if (e && e.url.split("?")[0] === path) return e;
    }
    return undefined;
  }

  /** Whether a GET/HEAD is answered 304 (RFC 9110 §13.1.2, §13.1.3, §13.2.2: If-None-Match first). */
  private notModifiedFor(req: IncomingMessage, behaviour: Behaviour): boolean {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const inm = req.headers["if-none-match"];
    if (inm !== undefined) return behaviour.etag !== undefined && noneMatchHits(inm, behaviour.etag);
    const ims = req.headers["if-modified-since"];
    if (ims === undefined || behaviour.lastModified === undefined) return false;
    const since = Date.parse(ims);
    const modified = Date.parse(behaviour.lastModified);
    return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? "/";
    const path = url.split("?")[0] ?? "/";
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (size < 4096) chunks.push(chunk);
      size += chunk.length;
    });
    req.on("end", () => {
      const hit = (this.hitCounts.get(path) ?? 0) + 1;
      this.hitCounts.set(path, hit);
      const rawHeaders: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        rawHeaders.push([req.rawHeaders[i] ?? "", req.rawHeaders[i + 1] ?? ""]);
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
      const echo: Echo = {
        method: req.method ?? "",
        url,
        headers,
        rawHeaders,
        hit,
        body: Buffer.concat(chunks).toString("utf8").slice(0, 4096),
      };
      this.recorded.push(echo);
      if (this.recorded.length > MAX_RECORDED) this.recorded.shift();
      const behaviour = this.behaviours.get(path) ?? {};
      const send = () => {
        if (res.destroyed) return;
        for (const [name, value] of Object.entries(behaviour.headers ?? {})) res.setHeader(name, value);
        if (behaviour.etag !== undefined) res.setHeader("etag", behaviour.etag);
        if (behaviour.lastModified !== undefined) res.setHeader("last-modified", behaviour.lastModified);
        for (const [name, value] of Object.entries(behaviour.dynamicHeaders?.() ?? {})) res.setHeader(name, value);
        if (this.dateRoundedUp && !res.hasHeader("date")) {
          res.setHeader("date", new Date(Math.ceil(Date.now() / 1000) * 1000).toUTCString());
        }
        if (this.notModifiedFor(req, behaviour)) {
          this.notModifiedCounts.set(path, (this.notModifiedCounts.get(path) ?? 0) + 1);
          res.statusCode = 304;
          res.end();
          return;
        }
        res.statusCode = behaviour.status ?? 200;
        const sized = behaviour.bodyBytes !== undefined;
        if (!res.hasHeader("content-type")) res.setHeader("content-type", sized ? "text/plain" : "application/json");
        const body = sized ? bodyOf(behaviour.bodyBytes ?? 0) : JSON.stringify(echo);
        if (req.method === "HEAD") {
          res.end();
        } else if (behaviour.chunked) {
          const half = Math.floor(body.length / 2);
          res.write(body.slice(0, half));
          res.end(body.slice(half));
        } else {
          res.end(body);
        }
      };
      const delay = Math.min(behaviour.delayMs ?? 0, MAX_DELAY_MS);
      if (delay <= 0) {
        send();
        return;
      }
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        send();
      }, delay);
      this.timers.add(timer);
      // The gateway gave up (timeout): do not hold the timer.
      res.on("close", () => {
        clearTimeout(timer);
        this.timers.delete(timer);
      });
    });
  }
}

/** A started origin. */
export async function startOrigin(): Promise<Origin> {
  const origin = new Origin();
  await origin.start();
  return origin;
}

/** A 127.0.0.1 port with nothing listening on it (bound, then released): connections are refused. */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === "string") throw new Error("deadPort: no TCP address");
  return address.port;
}
