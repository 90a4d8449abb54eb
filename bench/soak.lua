-- bench/soak.sh's load for one segment: GET <prefix>/ and POST <prefix>/echo (1 KiB) in turn,
-- each wrk thread stopping once it has SOAK_COUNT / SOAK_THREADS responses.
local prefix = os.getenv("SOAK_PREFIX")
local count = tonumber(os.getenv("SOAK_COUNT"))
local threads = tonumber(os.getenv("SOAK_THREADS"))
local body_path = os.getenv("SOAK_BODY")

local body, limit
local sent, received = 0, 0

function init(args)
  local f = assert(io.open(body_path, "rb"))
  body = f:read("*a")
  f:close()
  limit = math.ceil(count / threads)
end

function request()
  sent = sent + 1
  if sent % 2 == 0 then
    return wrk.format("POST", prefix .. "/echo", { ["Content-Type"] = "application/octet-stream" }, body)
  end
  return wrk.format("GET", prefix .. "/")
end

function response(status, headers, resp_body)
  received = received + 1
  if received >= limit then
    wrk.thread:stop()
  end
end
