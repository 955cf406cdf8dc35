-- Each wrk thread cycles through its share of prepared requests and counts statuses.
-- Usage: wrk ... -s cycle.lua -- REQUEST_FILE
-- REQUEST_FILE has one request per line, tab-separated:
--   METHOD  PATH  HEADER-NAME  HEADER-VALUE  BODY
-- Line i goes to thread i mod T, so with as many threads as connections and lines,
-- each connection owns its lines (one user per connection for logins).
-- done() prints one line "BENCH_JSON {...}" for bench/run.py.

local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local function parse(line)
  local method, path, hname, hvalue, body =
    line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  local headers = {}
  if hname ~= "" then headers[hname] = hvalue end
  if body == "" then body = nil end
  return wrk.format(method, path, headers, body)
end

function init(args)
  local lines = {}
  for line in io.lines(args[1]) do table.insert(lines, line) end
  local count = tonumber(args[2])
  prepared = {}
  for i, line in ipairs(lines) do
    if (i - 1) % count == tid then table.insert(prepared, parse(line)) end
  end
  if #prepared == 0 then
    -- Fewer lines than threads (one fixed user): share line tid mod #lines.
    table.insert(prepared, parse(lines[tid % #lines + 1]))
  end
  sent = 0
  statuses = {}
end

function request()
  sent = sent + 1
  return prepared[(sent - 1) % #prepared + 1]
end

function response(status, headers, body)
  local key = "s" .. status
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("statuses")) do
      parts[key] = (parts[key] or 0) + n
    end
  end
  local st = {}
  for key, n in pairs(parts) do table.insert(st, string.format('"%s": %d', key:sub(2), n)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "mean_us": %.1f, "errors": {"connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "status": %d}, "statuses": {%s}}\n',
    summary.duration, summary.requests, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout,
    e.status, table.concat(st, ", ")))
end
