-- wrk script for bench/edge.mjs. Arguments after `--`:
--   1 tokens file (lines "token subject"), 2 mode: none | jwt | apikey,
--   3 unique: 1 adds ?n=<run>-<thread>-<counter> (a cache MISS per request),
--   4 API key, 5 run id (distinct per wrk run, so no URL repeats across runs),
--   6 reuse: 0 walks the whole token pool (every request the next token); N > 0
--     cycles the pool's first N tokens, N = the connection count: clients that
--     each keep one token. (wrk's Lua cannot tell connections apart, so the
--     thread's requests take the N tokens in turn: each token comes back every
--     N requests, as it would with one token per connection.)
--   7 browser: 1 adds what a browser and Cloudflare's edge put on a real request
--     (user agent, accept*, client hints, a cookie, cf-* and x-forwarded-*):
--     19 more headers, where the bare requests carry one or two.
-- Every response's status and X-Cache-Status are counted; done() prints one
-- line "WRK_JSON {...}" with the counts and latency quantiles (microseconds).
threads = {}

-- What a browser and Cloudflare's edge put on every request (argument 7);
-- the client's address and the ray id are added per request.
BROWSER_HEADERS = {
  ["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  ["accept"] = "application/json, text/plain, */*",
  ["accept-language"] = "en-GB,en;q=0.9,de;q=0.8",
  ["accept-encoding"] = "gzip, br",
  ["referer"] = "https://app.example.com/orders?page=2",
  ["origin"] = "https://app.example.com",
  ["sec-ch-ua"] = '"Chromium";v="131", "Not_A Brand";v="24"',
  ["sec-ch-ua-mobile"] = "?0",
  ["sec-ch-ua-platform"] = '"Linux"',
  ["sec-fetch-dest"] = "empty",
  ["sec-fetch-mode"] = "cors",
  ["sec-fetch-site"] = "same-site",
  ["cookie"] = "session=3f9a1c0e7b2d4a6f8e1c; theme=dark; consent=1",
  ["cf-ipcountry"] = "GB",
  ["cf-visitor"] = '{"scheme":"https"}',
  ["x-forwarded-proto"] = "https",
}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  tokens, subjects = {}, {}
  mode, unique, apikey, run = args[2], args[3] == "1", args[4], args[5]
  reuse = tonumber(args[6] or "0") or 0
  browser = args[7] == "1"
  counter, hit, miss, other, non200 = 0, 0, 0, 0, 0
  if mode == "jwt" then
    for line in io.lines(args[1]) do
      local t, s = line:match("^(%S+) (%S+)$")
      tokens[#tokens + 1] = t
      subjects[#subjects + 1] = s
    end
  end
end

function request()
  counter = counter + 1
  local path = wrk.path
  if unique then path = path .. "?n=" .. run .. "-" .. id .. "-" .. counter end
  local headers = {}
  if browser then
    for name, value in pairs(BROWSER_HEADERS) do headers[name] = value end
    local ip = "203.0.113." .. (counter % 250 + 1)
    headers["cf-connecting-ip"] = ip
    headers["x-real-ip"] = ip
    headers["cf-ray"] = string.format("8f%014x-LHR", counter)
  end
  if mode == "jwt" then
    -- Walk the pool: consecutive requests carry different tokens and subjects
    -- (or, reusing, cycle the first `reuse` tokens).
    local i = (counter + id * 7919) % #tokens + 1
    if reuse > 0 then i = (counter + id) % math.min(reuse, #tokens) + 1 end
    headers["authorization"] = "Bearer " .. tokens[i]
    headers["x-bench-key"] = subjects[i]
  elseif mode == "apikey" then
    headers["x-api-key"] = apikey
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
  local c = headers["x-cache-status"] or headers["X-Cache-Status"]
  if c == "HIT" then hit = hit + 1 elseif c == "MISS" then miss = miss + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local h, m, o, n = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hit"); m = m + t:get("miss"); o = o + t:get("other"); n = n + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"lat_us":{"min":%d,"p25":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"cache":{"hit":%d,"miss":%d,"other":%d},"non200":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency:percentile(25), latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean, h, m, o, n))
end
