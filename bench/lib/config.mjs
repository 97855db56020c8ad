// Tidegate's bench configuration: one route per measured path. The peer
// Worker (bench/peer/worker.ts) has the same table.
import { AUDIENCE, ISSUER } from "./tokens.mjs";

/**
 * `tokenPool` is the number of distinct tokens wrk walks in order on the
 * distinct-token paths. The token cache holds half as many: entries leave
 * oldest first (all live longer than the cache's ttl), so a token walked in
 * order is always gone before it comes back and those paths verify every
 * request, as with every token new; the repeated-token paths (one token per
 * connection) always find theirs.
 */
export function tidegateConfig(origin, jwks, { tokenPool = 2048 } = {}) {
  return `
[gateway]
admin_prefix = "/__tidegate/"
default_timeout = "5s"

[gateway.token_cache]
max_entries = ${Math.max(1, Math.floor(tokenPool / 2))}

[api_keys]
header = "x-api-key"

[[issuers]]
name = "bench-idp"
issuer = "${ISSUER}"
audiences = ["${AUDIENCE}"]
jwks_url = "${jwks}/jwks.json"
algorithms = ["RS256"]

[issuers.jwks_cache]
ttl = "1h"
max_stale = "1h"
refetch_cooldown = "1h"
negative_ttl = "1h"

[[routes]]
name = "proxy"
path = "/proxy/*"
upstream = "${origin}"
auth = { require = "none" }

[[routes]]
name = "apikey"
path = "/apikey/*"
upstream = "${origin}"
auth = { require = "api_key" }

[[routes]]
name = "jwt"
path = "/jwt/*"
upstream = "${origin}"
auth = { require = "jwt" }

[[routes]]
name = "limited"
path = "/limited/*"
upstream = "${origin}"
auth = { require = "jwt" }

[routes.rate_limit]
limits = [{ name = "per-subject", limit = 1000000000, period = "1h", key = "subject" }]

# Every query is part of the cache key: a unique query is a MISS.
[[routes]]
name = "secure"
methods = ["GET", "HEAD"]
path = "/secure/*"
upstream = "${origin}"
auth = { require = "jwt" }

[routes.rate_limit]
limits = [{ name = "per-subject", limit = 1000000000, period = "1h", key = "subject" }]

[routes.cache]
ttl = "1h"
scope = "private"

[[routes]]
name = "cached"
methods = ["GET", "HEAD"]
path = "/cached/*"
upstream = "${origin}"
auth = { require = "none" }

[routes.cache]
ttl = "1h"

# One hot key (the client IP) against a small limit: limiter exactness.
[[routes]]
name = "hot"
path = "/hot/*"
upstream = "${origin}"
auth = { require = "none" }

[routes.rate_limit]
limits = [{ name = "per-ip", limit = 100, period = "1h", key = "client_ip" }]

# One hot key against a limit it never reaches: decisions per second and
# limiter object calls per request (leases, lease = "auto" by default).
[[routes]]
name = "hotkey"
path = "/hotkey/*"
upstream = "${origin}"
auth = { require = "none" }

[routes.rate_limit]
limits = [{ name = "per-ip", limit = 1000000, period = "1h", key = "client_ip" }]
`;
}

/**
 * `[health]` for the proxy route (issue 18): every origin answer of /proxy/*
 * is counted and batched to a HealthMonitor object; no signal_url, so no
 * signal is ever sent. Append to tidegateConfig's text for a build that has it.
 */
export const healthSection = `
[health]

[[health.stages]]
api = "bench"
stage = "prod"
routes = ["proxy"]
`;
