package trim

import "github.com/redis/go-redis/v9"

// trimScript runs one pass on KEYS[1]: it computes the policy's cutoff, the
// groups' safe cutoff and the effective one, and trims, all in one script so
// that no XADD, XREADGROUP, XACK, XCLAIM or XGROUP can happen in between.
//
// ARGV: max length (0: none), max age in ms (0: none), "1" for approximate,
// the work limit (>= 1), "1" for unsafe, "1" for a preview (everything is
// computed as for a pass, but nothing is trimmed: trimmed is then what an
// exact pass would trim, and length what it would leave).
//
// Entries with an ID below the cutoff go (XTRIM MINID semantics). A group
// needs every entry from the lower of its oldest pending ID (XPENDING
// summary) and the ID just after its last-delivered-id; a group at 0-0 thus
// needs everything.
//
// IDs are "<ms>-<seq>" with two unsigned 64-bit parts. Lua numbers are
// doubles, exact only up to 2^53, so IDs are compared and incremented as
// decimal strings, byte by byte (not with the locale-dependent string <).
//
// Reply: {trimmed, cutoff, bound, held, more, lost, length,
// {group, needed entry ID, reason, ...}}.
var trimScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local maxlen = tonumber(ARGV[1])
local maxage = tonumber(ARGV[2])
local approx = ARGV[3] == '1'
local limit = tonumber(ARGV[4])
local unsafe = ARGV[5] == '1'
local preview = ARGV[6] == '1'
local MAXPART = '18446744073709551615'

local function split(id)
  local d = string.find(id, '-', 1, true)
  if d == nil then return id, '0' end
  return string.sub(id, 1, d - 1), string.sub(id, d + 1)
end
local function cmpdec(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return -1 end
      return 1
    end
  end
  return 0
end
local function less(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  local c = cmpdec(am, bm)
  if c == 0 then c = cmpdec(as, bs) end
  return c < 0
end
local function incdec(s)
  local t = {string.byte(s, 1, #s)}
  local i = #t
  while i > 0 and t[i] == 57 do
    t[i] = 48
    i = i - 1
  end
  if i == 0 then return '1' .. string.char(unpack(t)) end
  t[i] = t[i] + 1
  return string.char(unpack(t))
end
local function nextid(id)
  local ms, seq = split(id)
  if seq == MAXPART then
    if ms == MAXPART then return id end
    return incdec(ms) .. '-0'
  end
  return ms .. '-' .. incdec(seq)
end

local len = redis.call('XLEN', key)
if len == 0 then return {0, '0-0', '0-0', 0, 0, 0, 0, {}} end

-- The policy's cutoff: the higher of the age and length cutoffs.
local policy, more = '0-0', 0
if maxage > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now > maxage then policy = string.format('%.0f', now - maxage) .. '-0' end
end
local cand = nil
if maxlen > 0 and len > maxlen then
  local excess = len - maxlen
  local k = math.min(excess, limit)
  local w = redis.call('XRANGE', key, '-', '+', 'COUNT', k + 1)
  local c
  if #w > k then c = w[k + 1][1] else c = nextid(w[#w][1]) end
  if excess > limit then more = 1 end
  if less(policy, c) then
    -- The length bound is the stricter: the entries below it were just read.
    policy = c
    w[k + 1] = nil
    cand = w
  end
end

-- The entries below the policy's cutoff, at most limit of them: what this
-- pass may evict.
if cand == nil then
  cand = {}
  if policy ~= '0-0' then
    cand = redis.call('XRANGE', key, '-', '(' .. policy, 'COUNT', limit + 1)
  end
end
local bound, n = policy, #cand
if n > limit then
  bound = cand[limit + 1][1]
  n = limit
  more = 1
end

-- What the groups still need.
local safe = nil
local needs = {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local need, reason = nextid(f['last-delivered-id']), 'undelivered'
  local p = redis.call('XPENDING', key, f['name'])
  if p[2] and less(p[2], need) then need, reason = p[2], 'pending' end
  if safe == nil or less(need, safe) then safe = need end
  needs[#needs + 1] = {f['name'], need, reason}
end

local cutoff = bound
if not unsafe and safe ~= nil and less(safe, cutoff) then
  cutoff = safe
  more = 0
end

-- The first of cand[lo..hi] at or above id, or hi+1 (candidates are sorted).
local function search(lo, hi, id)
  hi = hi + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if less(cand[mid][1], id) then lo = mid + 1 else hi = mid end
  end
  return lo
end

local evict = search(1, n, cutoff) - 1

local trimmed = 0
if evict > 0 then
  if preview then
    trimmed = evict
  elseif approx then
    trimmed = redis.call('XTRIM', key, 'MINID', '~', cutoff, 'LIMIT', limit)
  else
    trimmed = redis.call('XTRIM', key, 'MINID', '=', cutoff)
  end
end

-- A pass that trimmed nothing (approximate, no whole node within the
-- limit) would be followed by another trimming nothing.
if trimmed == 0 then more = 0 end

-- Trimming removes a prefix of the stream: the first trimmed candidates.
local lost = 0
if safe ~= nil then lost = trimmed + 1 - search(1, trimmed, safe) end

-- Each group that kept a candidate, with the first candidate it needs.
local held = {}
if not unsafe then
  for _, e in ipairs(needs) do
    -- Those below the cutoff are below every group's need.
    local lo = search(evict + 1, n, e[2])
    if lo <= n then
      held[#held + 1] = e[1]
      held[#held + 1] = cand[lo][1]
      held[#held + 1] = e[3]
    end
  end
end

local after = redis.call('XLEN', key)
if preview then after = len - trimmed end
return {trimmed, cutoff, bound, n - evict, more, lost, after, held}
`)
