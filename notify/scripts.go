package notify

import "github.com/redis/go-redis/v9"

// Every script takes KEYS = stream, watermark, read set, sync cursor.
//
// sync folds read markers written since the last call (entries with a
// markedReadId field, as other clients write them) into the read set, then
// advances the watermark over the read entries that follow it: markers,
// entries with read "true" and members of the read set. Both steps only read
// entries they have not read before, or the read prefix after the watermark.
const prelude = `
local stream, wmKey, setKey, syncKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function lt(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function field(e, name)
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end
local function isRead(e)
  return field(e, 'markedReadId') ~= nil or field(e, 'read') == 'true' or
    redis.call('SISMEMBER', setKey, e[1]) == 1
end
local function sync()
  local wm = redis.call('GET', wmKey) or '0-0'
  local synced = redis.call('GET', syncKey) or '0-0'
  if lt(synced, wm) then synced = wm end
  while true do
    local page = redis.call('XRANGE', stream, '(' .. synced, '+', 'COUNT', 256)
    for _, e in ipairs(page) do
      local target = field(e, 'markedReadId')
      if target and string.match(target, '^%d+%-%d+$') and lt(wm, target) then
        redis.call('SADD', setKey, target)
      end
      synced = e[1]
    end
    if #page < 256 then break end
  end
  redis.call('SET', syncKey, synced)
  local moved = false
  while true do
    local page = redis.call('XRANGE', stream, '(' .. wm, '+', 'COUNT', 128)
    local stop = false
    for _, e in ipairs(page) do
      if not isRead(e) then stop = true; break end
      wm = e[1]
      moved = true
    end
    if stop or #page < 128 then break end
  end
  if moved then
    redis.call('SET', wmKey, wm)
    for _, m in ipairs(redis.call('SMEMBERS', setKey)) do
      if not string.match(m, '^%d+%-%d+$') or not lt(wm, m) then redis.call('SREM', setKey, m) end
    end
  end
  return wm
end
`

// stateScript syncs and returns {watermark, read set members}.
var stateScript = redis.NewScript(prelude + `
local wm = sync()
return {wm, redis.call('SMEMBERS', setKey)}
`)

// markReadScript marks ARGV[1] read. Returns the watermark.
var markReadScript = redis.NewScript(prelude + `
local wm = sync()
if lt(wm, ARGV[1]) then
  redis.call('SADD', setKey, ARGV[1])
  wm = sync()
end
return wm
`)

// markAllReadScript moves the watermark to the last entry and empties the
// read set. Returns the watermark.
var markAllReadScript = redis.NewScript(prelude + `
local wm = redis.call('GET', wmKey) or '0-0'
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
if #last == 1 and lt(wm, last[1][1]) then wm = last[1][1] end
redis.call('SET', wmKey, wm)
local synced = redis.call('GET', syncKey) or '0-0'
if lt(synced, wm) then redis.call('SET', syncKey, wm) end
redis.call('DEL', setKey)
return wm
`)

// unreadCountScript syncs and counts unread notifications after the
// watermark, reading at most ARGV[1] entries. Returns {count, 1 if the
// budget ran out else 0}.
var unreadCountScript = redis.NewScript(prelude + `
local wm = sync()
local budget = tonumber(ARGV[1])
local count, scanned, from = 0, 0, wm
while scanned < budget do
  local n = math.min(256, budget - scanned)
  local page = redis.call('XRANGE', stream, '(' .. from, '+', 'COUNT', n)
  for _, e in ipairs(page) do
    if not isRead(e) then count = count + 1 end
    from = e[1]
  end
  scanned = scanned + #page
  if #page < n then return {count, 0} end
end
local more = redis.call('XRANGE', stream, '(' .. from, '+', 'COUNT', 1)
if #more > 0 then return {count, 1} end
return {count, 0}
`)

// sendScript adds a notification and publishes {"id","content"} as JSON on
// KEYS[2]. ARGV: content, createdAt, maxLen ("0": no trimming).
var sendScript = redis.NewScript(`
local id
if ARGV[3] ~= '0' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'content', ARGV[1], 'read', 'false', 'createdAt', ARGV[2])
else
  id = redis.call('XADD', KEYS[1], '*', 'content', ARGV[1], 'read', 'false', 'createdAt', ARGV[2])
end
redis.call('PUBLISH', KEYS[2], cjson.encode({id = id, content = ARGV[1]}))
return id
`)
