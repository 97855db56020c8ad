// The paths bench/ab.mjs and bench/profile-path.mjs run, against the routes
// of bench/lib/config.mjs. `mode`: the credential wrk.lua sends; `unique`: a
// new query per request (every one a MISS); `prime`: a HIT path, its entries
// stored first; `reuse`: tokens cycled, one per connection (clients that
// keep their token); `browser`: the request carries what a browser and
// Cloudflare's edge add (19 headers more, see wrk.lua); `status`: the answer
// expected when not 200.
export const PATHS = [
  { key: "not-found", path: "/nowhere/item", mode: "none", status: 404 },
  { key: "proxy", path: "/proxy/item", mode: "none" },
  { key: "apikey", path: "/apikey/item", mode: "apikey" },
  { key: "jwt", path: "/jwt/item", mode: "jwt" },
  { key: "limited", path: "/limited/item", mode: "jwt" },
  { key: "miss", path: "/secure/item", mode: "jwt", unique: true },
  { key: "hit", path: "/secure/item", mode: "jwt", prime: true },
  { key: "public-hit", path: "/cached/item", mode: "none", prime: true },
  // Clients that keep their token (see wrk.lua): 8 tokens, one per connection.
  { key: "jwt-reuse", path: "/jwt/item", mode: "jwt", reuse: 8 },
  { key: "hit-reuse", path: "/secure/item", mode: "jwt", prime: true, reuse: 8 },
  { key: "limited-reuse", path: "/limited/item", mode: "jwt", reuse: 8 },
  { key: "miss-reuse", path: "/secure/item", mode: "jwt", unique: true, reuse: 8 },
  // Requests with a real client's headers.
  { key: "proxy-browser", path: "/proxy/item", mode: "none", browser: true },
  { key: "jwt-reuse-browser", path: "/jwt/item", mode: "jwt", reuse: 8, browser: true },
];
