// The peer: the same pipeline as Tidegate's bench routes (auth → Durable
// Object limiter → Cache API → origin), written the way most teams would
// write it today: TypeScript, `jose` for JWTs (WebCrypto underneath), a
// Durable Object called over RPC, `caches.default`. Small on purpose, but
// not a strawman: keys are cached by jose's remote JWKS set, API keys are
// compared by SHA-256, the limiter is an exact GCRA in SQLite, private
// cache entries are keyed by subject, and one JSON log line is written per
// request as Tidegate does.
import { DurableObject } from "cloudflare:workers";
import { createRemoteJWKSet, jwtVerify } from "jose";

interface Env {
  ORIGIN: string;
  JWKS_URL: string;
  ISSUER: string;
  AUDIENCE: string;
  /** JSON: [{ "id": "...", "sha256": "<hex>" }] */
  API_KEYS: string;
  LIMITER: DurableObjectNamespace<Limiter>;
}

interface Route {
  prefix: string;
  auth: "none" | "jwt" | "api_key";
  limit?: { limit: number; periodMs: number; key: "subject" | "ip" };
  cache?: { ttlS: number; private: boolean };
}

// The same table as the Tidegate bench config (bench/lib/config.mjs).
const ROUTES: Route[] = [
  { prefix: "/proxy/", auth: "none" },
  { prefix: "/apikey/", auth: "api_key" },
  { prefix: "/jwt/", auth: "jwt" },
  { prefix: "/limited/", auth: "jwt", limit: { limit: 1_000_000_000, periodMs: 3_600_000, key: "subject" } },
  { prefix: "/secure/", auth: "jwt", limit: { limit: 1_000_000_000, periodMs: 3_600_000, key: "subject" }, cache: { ttlS: 3600, private: true } },
  { prefix: "/cached/", auth: "none", cache: { ttlS: 3600, private: false } },
  { prefix: "/hot/", auth: "none", limit: { limit: 100, periodMs: 3_600_000, key: "ip" } },
  { prefix: "/hotkey/", auth: "none", limit: { limit: 1_000_000, periodMs: 3_600_000, key: "ip" } },
];

/** Exact GCRA per key: one object per limiter key, state in SQLite. */
export class Limiter extends DurableObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS gcra (id INTEGER PRIMARY KEY, tat REAL NOT NULL)");
  }

  /** Admits one unit if the quota allows; no await, so it is atomic. */
  check(limit: number, periodMs: number): { allowed: boolean; remaining: number; retryAfterS: number } {
    const now = Date.now();
    const interval = periodMs / limit;
    const row = this.ctx.storage.sql.exec<{ tat: number }>("SELECT tat FROM gcra WHERE id = 0").toArray()[0];
    const tat = Math.max(row?.tat ?? now, now);
    const next = tat + interval;
    if (next - now > periodMs) {
      return { allowed: false, remaining: 0, retryAfterS: Math.ceil((next - now - periodMs) / 1000) };
    }
    this.ctx.storage.sql.exec("INSERT INTO gcra (id, tat) VALUES (0, ?) ON CONFLICT (id) DO UPDATE SET tat = excluded.tat", next);
    return { allowed: true, remaining: Math.floor((periodMs - (next - now)) / interval), retryAfterS: 0 };
  }
}

let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
let apiKeys: Map<string, string> | undefined;

const problem = (status: number, title: string, extra: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: "about:blank", title, status }), {
    status,
    headers: { "content-type": "application/problem+json", ...extra },
  });

const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");

async function authenticate(route: Route, request: Request, env: Env): Promise<string | Response | null> {
  if (route.auth === "none") return null;
  if (route.auth === "api_key") {
    const key = request.headers.get("x-api-key");
    if (!key) return problem(401, "API key required");
    apiKeys ??= new Map((JSON.parse(env.API_KEYS) as { id: string; sha256: string }[]).map((k) => [k.sha256, k.id]));
    const digest = hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    return apiKeys.get(digest) ?? problem(401, "Invalid API key");
  }
  const header = request.headers.get("authorization") ?? "";
  if (!header.startsWith("Bearer ")) return problem(401, "Bearer token required", { "www-authenticate": "Bearer" });
  jwks ??= createRemoteJWKSet(new URL(env.JWKS_URL), { cacheMaxAge: 3_600_000, cooldownDuration: 3_600_000 });
  try {
    const { payload } = await jwtVerify(header.slice(7), jwks, {
      issuer: env.ISSUER,
      audience: env.AUDIENCE,
      algorithms: ["RS256"],
    });
    return payload.sub ?? problem(401, "Token has no subject");
  } catch {
    return problem(401, "Invalid token", { "www-authenticate": 'Bearer error="invalid_token"' });
  }
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const started = Date.now();
    const url = new URL(request.url);
    const route = ROUTES.find((r) => url.pathname.startsWith(r.prefix));
    const requestId = crypto.randomUUID();
    let response: Response;
    let cacheStatus = "BYPASS";
    let subject: string | null = null;
    if (!route) {
      response = problem(404, "Not found");
    } else {
      const auth = await authenticate(route, request, env);
      if (auth instanceof Response) {
        response = auth;
      } else {
        subject = auth;
        let limited: Response | null = null;
        if (route.limit) {
          const key = route.limit.key === "subject" ? subject : request.headers.get("cf-connecting-ip");
          const stub = env.LIMITER.get(env.LIMITER.idFromName(`${route.prefix}:${key ?? "anonymous"}`));
          const decision = await stub.check(route.limit.limit, route.limit.periodMs);
          if (!decision.allowed) limited = problem(429, "Too many requests", { "retry-after": String(decision.retryAfterS) });
        }
        if (limited) {
          response = limited;
        } else if (route.cache && request.method === "GET") {
          const key = `https://cache.peer/${route.cache.private ? encodeURIComponent(subject ?? "") : "shared"}${url.pathname}${url.search}`;
          const hit = await caches.default.match(key);
          if (hit) {
            response = new Response(hit.body, hit);
            cacheStatus = "HIT";
          } else {
            const fresh = await fetch(`${env.ORIGIN}${url.pathname}${url.search}`, {
              headers: { "x-request-id": requestId, ...(subject ? { "x-user-subject": subject } : {}) },
            });
            response = new Response(fresh.body, fresh);
            if (fresh.ok) {
              response.headers.set("cache-control", `${route.cache.private ? "private" : "public"}, max-age=${route.cache.ttlS}`);
              const stored = response.clone();
              stored.headers.set("cache-control", `max-age=${route.cache.ttlS}`);
              ctx.waitUntil(caches.default.put(key, stored));
            }
            cacheStatus = "MISS";
          }
        } else {
          const headers = new Headers(request.headers);
          headers.delete("authorization");
          headers.set("x-request-id", requestId);
          if (subject) headers.set("x-user-subject", subject);
          const fresh = await fetch(`${env.ORIGIN}${url.pathname}${url.search}`, { method: request.method, headers });
          response = new Response(fresh.body, fresh);
        }
      }
    }
    response.headers.set("x-request-id", requestId);
    response.headers.set("x-cache-status", cacheStatus);
    console.log(JSON.stringify({ id: requestId, path: url.pathname, status: response.status, subject, cache: cacheStatus, ms: Date.now() - started }));
    return response;
  },
};
