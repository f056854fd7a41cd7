package notify

import "github.com/redis/go-redis/v9"

// Every write script takes KEYS = stream, state hash, read set: keys of one
// cluster slot (see Notifier.StateKey). The state hash holds "upto" (the
// read watermark: every entry at or below it is read) and "synced" (the
// fold cursor: read markers at or below it are in the read set or point at
// or below the watermark). The read set is a sorted set of the IDs above
// the watermark marked read, zero-padded (padID) so that lexicographic
// order is ID order.
//
// No script reads more than a bounded number of entries: step folds and
// advances at most ARGV-given n entries each.
const prelude = `
local stream, stateKey, readKey = KEYS[1], KEYS[2], KEYS[3]
local function parse(id)
  return string.match(id, '^(%d+)-(%d+)$')
end
local function lt(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function pad(id)
  local ms, seq = parse(id)
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function field(e, name)
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end
local function validID(s)
  local ms, seq = string.match(s or '', '^(%d+)-(%d+)$')
  return ms ~= nil and #ms <= 20 and #seq <= 20
end
local function state()
  local s = redis.call('HMGET', stateKey, 'upto', 'synced')
  local wm, synced = s[1] or '0-0', s[2] or '0-0'
  if lt(synced, wm) then synced = wm end
  return wm, synced
end
-- needsInit: the stream exists but its state does not (yet): the client
-- first brings over the state an earlier layout kept (see Notifier.init).
local function needsInit()
  return redis.call('EXISTS', stateKey) == 0 and redis.call('EXISTS', stream) == 1
end
local function isRead(e, targets, anySet)
  if field(e, 'markedReadId') ~= nil or field(e, 'read') == 'true' or targets[e[1]] then return true end
  return anySet and redis.call('ZSCORE', readKey, pad(e[1])) ~= false
end
-- step folds up to n read markers after the fold cursor into the read set,
-- then moves the watermark over up to n read entries that follow it.
-- Returns 1 when both are done (nothing left to fold, the watermark stopped
-- at an unread entry or the end), else 0.
local function step(n)
  local wm, synced = state()
  local atWatermark = synced == wm
  local page = redis.call('XRANGE', stream, '(' .. synced, '+', 'COUNT', n)
  local targets = {}
  for _, e in ipairs(page) do
    local t = field(e, 'markedReadId')
    if validID(t) and lt(wm, t) then targets[t] = true end
  end
  local done = #page < n
  if #page > 0 then synced = page[#page][1] end
  -- the entries after the watermark: the page just folded when the cursor
  -- was at the watermark (a stream being caught up), else a read of its own
  local ahead = page
  if not atWatermark then
    ahead = redis.call('XRANGE', stream, '(' .. wm, '+', 'COUNT', n)
  end
  local anySet = redis.call('EXISTS', readKey) == 1
  local moved, stopped = false, false
  for _, e in ipairs(ahead) do
    if not isRead(e, targets, anySet) then stopped = true; break end
    wm = e[1]
    moved = true
  end
  done = done and (stopped or #ahead < n)
  for t in pairs(targets) do
    if lt(wm, t) then redis.call('ZADD', readKey, 0, pad(t)) end
  end
  if moved then
    if anySet then redis.call('ZREMRANGEBYLEX', readKey, '-', '[' .. pad(wm)) end
    if lt(synced, wm) then synced = wm end
  end
  redis.call('HSET', stateKey, 'upto', wm, 'synced', synced)
  if done then return 1 end
  return 0
end
-- lastID returns the ID of the stream's last entry, or nil.
local function lastID()
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last == 0 then return nil end
  return last[1][1]
end
-- addMarker writes a read marker the article's way ({markedReadId, readAt},
-- trimmed like Send when maxLen is not '0'); when the fold cursor was at
-- the stream's end the marker counts as folded (the caller has put its
-- target in the read set or below the watermark).
local function addMarker(target, now, maxLen)
  local _, synced = state()
  local before = lastID()
  local id
  if maxLen ~= '0' then
    id = redis.call('XADD', stream, 'MAXLEN', '~', maxLen, '*', 'markedReadId', target, 'readAt', now)
  else
    id = redis.call('XADD', stream, '*', 'markedReadId', target, 'readAt', now)
  end
  if before == synced then redis.call('HSET', stateKey, 'synced', id) end
  return id
end
`

// syncScript runs one step of ARGV[1] entries. Returns 1 when caught up,
// 0 when more steps are needed, -1 when the state needs initializing.
var syncScript = redis.NewScript(prelude + `
if needsInit() then return -1 end
if redis.call('EXISTS', stream) == 0 then return 1 end
return step(tonumber(ARGV[1]))
`)

// markReadScript marks ARGV[1] read: it adds it to the read set and, with
// ARGV[2] = '1', writes a read marker (readAt ARGV[3], trimming ARGV[4]),
// unless it is read already, a marker or not in the stream; then one step
// of ARGV[5] entries. Returns 1 if it marked, 0 if not, -1 when the state
// needs initializing.
var markReadScript = redis.NewScript(prelude + `
if needsInit() then return -1 end
if redis.call('EXISTS', stream) == 0 then return 0 end
local id, n = ARGV[1], tonumber(ARGV[5])
local wm = state()
if not lt(wm, id) or redis.call('ZSCORE', readKey, pad(id)) then step(n); return 0 end
local e = redis.call('XRANGE', stream, id, id)
if #e == 0 or field(e[1], 'markedReadId') then step(n); return 0 end
redis.call('ZADD', readKey, 0, pad(id))
if ARGV[2] == '1' then addMarker(id, ARGV[3], ARGV[4]) end
step(n)
return 1
`)

// markAllReadScript writes a read marker for every notification among the
// ARGV[1] newest entries that has none there (none when ARGV[1] is '0';
// readAt ARGV[2], trimming ARGV[3]), oldest first, then moves the watermark
// to the last entry and drops the read set. Returns the markers written, or
// -1 when the state needs initializing.
var markAllReadScript = redis.NewScript(prelude + `
if needsInit() then return -1 end
local window = tonumber(ARGV[1])
local todo = {}
if window > 0 then
  local marked = {}
  local recent = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', window)
  for _, e in ipairs(recent) do
    local t = field(e, 'markedReadId')
    if t then marked[t] = true end
  end
  for _, e in ipairs(recent) do
    if not field(e, 'markedReadId') and not marked[e[1]] then table.insert(todo, 1, e[1]) end
  end
end
for _, id in ipairs(todo) do addMarker(id, ARGV[2], ARGV[3]) end
local last = lastID()
if last then
  local wm = state()
  if lt(wm, last) then wm = last end
  redis.call('HSET', stateKey, 'upto', wm, 'synced', wm)
  redis.call('UNLINK', readKey)
end
return #todo
`)

// initScript creates the state hash with watermark ARGV[1] and fold cursor
// ARGV[2], or, when it exists, moves its watermark up to ARGV[1]. The
// client has put the earlier layout's read set into the read set before.
var initScript = redis.NewScript(prelude + `
if not validID(ARGV[1]) or not validID(ARGV[2]) then return redis.error_reply('ERR invalid state') end
if redis.call('EXISTS', stateKey) == 0 then
  local synced = ARGV[2]
  if lt(synced, ARGV[1]) then synced = ARGV[1] end
  redis.call('HSET', stateKey, 'upto', ARGV[1], 'synced', synced)
else
  local wm, synced = state()
  if lt(wm, ARGV[1]) then
    if lt(synced, ARGV[1]) then synced = ARGV[1] end
    redis.call('HSET', stateKey, 'upto', ARGV[1], 'synced', synced)
  end
end
return 1
`)

// sendScript adds a notification (field pairs ARGV[5:]) to the stream,
// trimmed to about ARGV[2] entries when that is not '0', and publishes
// {"id","content"} as JSON on the channel ARGV[1], content ARGV[4]. With a
// fourth key (an idempotency key) a repeat returns the first ID; the key
// expires after ARGV[3] ms. A stream created here gets its state at once;
// the fold cursor stays at the end when it was there.
var sendScript = redis.NewScript(prelude + `
local idem = KEYS[4]
if idem then
  local first = redis.call('GET', idem)
  if first then return first end
end
local before = lastID()
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local id
if ARGV[2] ~= '0' then
  id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
else
  id = redis.call('XADD', stream, '*', unpack(fields))
end
if idem then redis.call('SET', idem, id, 'PX', ARGV[3]) end
if before == nil then
  if redis.call('EXISTS', stateKey) == 0 then redis.call('HSET', stateKey, 'upto', '0-0', 'synced', id) end
else
  local _, synced = state()
  if synced == before and redis.call('EXISTS', stateKey) == 1 then redis.call('HSET', stateKey, 'synced', id) end
end
redis.call('PUBLISH', ARGV[1], cjson.encode({id = id, content = ARGV[4]}))
return id
`)
