-- One wrk run of one request shape, configured by bench/wrk.ts through the environment. It tallies every
-- answer by status (the bench fails a row on any unexpected one) and prints one JSON line at the end.

wrk.method = os.getenv('BENCH_METHOD') or 'GET'
local body = os.getenv('BENCH_BODY')
if body ~= nil and body ~= '' then
  wrk.body = body
end
for line in (os.getenv('BENCH_HEADERS') or ''):gmatch('[^\n]+') do
  local name, value = line:match('^([^:]+):%s*(.*)$')
  wrk.headers[name] = value
end

-- Read back by done() through thread:get, so global in each thread's Lua state.
statuses = {}
function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Login failures from one address would lock it out: each request then comes from an address of its own
-- (as a distributed attack would), through the trusted proxy's X-Forwarded-For.
if os.getenv('BENCH_UNIQUE_CLIENT') == '1' then
  local n = tonumber(os.getenv('BENCH_CLIENT_OFFSET') or '0')
  function request()
    n = n + 1
    local a, b, c = math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256
    wrk.headers['X-Forwarded-For'] = string.format('10.%d.%d.%d', a, b, c)
    return wrk.format()
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get('statuses')) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d},'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ',')))
end
