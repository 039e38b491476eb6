-- One-way sends with a delay, cycling over a set of virtual-object keys (wrk 4.1).
--
--   wrk -t1 -c64 -d10s -s send_delay.lua http://127.0.0.1:PORT -- KEYS PREFIX THREADS [TAIL] [BODY]
--
-- Every request is POST /Counter/<PREFIX>-k<i>/<TAIL>, i cycling over KEYS keys (TAIL
-- defaults to "add/send?delay=1h", BODY to "1"). wrk gives request() no handle on the
-- connection, so the key counter lives per thread: each request takes the next key, which
-- spreads consecutive keys over the thread's connections (64 connections hold 64 different
-- keys at any time), and each thread starts at its own offset, KEYS / THREADS apart
-- (THREADS = wrk's -t), so that threads do not move in step. done() prints one line,
-- "WRK_JSON {...}", that benchmarks/sends_wrk.py reads (latencies in microseconds).

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  keys = tonumber(args[1]) or 1000
  prefix = args[2] or "wrk"
  -- wrk runs each thread as soon as it is set up, so the count comes as an argument
  local count = tonumber(args[3]) or 1
  tail = args[4] or "add/send?delay=1h"
  body = args[5] or "1"
  next_key = math.floor((thread_index or 0) * keys / count) % keys
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  local path = "/Counter/" .. prefix .. "-k" .. next_key .. "/" .. tail
  next_key = (next_key + 1) % keys
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
