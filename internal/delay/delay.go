// Package delay holds the delay set of a stream: entries published to
// become visible later (producer.PublishAt and PublishIn), kept beside the
// stream in its cluster slot, and the mover that appends them to the stream
// when they are due.
//
// Three keys, all in the stream's slot (see Keys): a sorted set of schedule
// IDs scored by due time in Unix milliseconds of the server's clock, a hash
// from schedule ID to the entry's fields (see Encode), and
// a counter that numbers schedule IDs. Every change is one Lua script, so
// the mover moves each entry exactly once, whatever number of movers run and
// wherever one of them dies.
package delay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/keys"
)

// Keys names the keys of one stream's delay set.
type Keys struct {
	Set  string // sorted set: schedule ID scored by due time (ms)
	Data string // hash: schedule ID -> field names and values (Encode)
	Seq  string // counter numbering schedule IDs
}

// KeysOf returns the delay-set keys of stream, all in stream's cluster
// slot (keys.SlotPrefix): for "orders", "{orders}:midstream:delay",
// "{orders}:midstream:delay:data" and "{orders}:midstream:delay:seq".
func KeysOf(stream string) Keys {
	p := keys.SlotPrefix(stream)
	return Keys{Set: p + ":midstream:delay", Data: p + ":midstream:delay:data", Seq: p + ":midstream:delay:seq"}
}

// IDLen is the length of a schedule ID: a zero-padded decimal counter, so
// that IDs due in the same millisecond sort in the order they were added.
const IDLen = 20

// CheckID reports whether id has the form of a schedule ID.
func CheckID(id string) error {
	if len(id) != IDLen {
		return fmt.Errorf("schedule ID %q: want %d digits", id, IDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return fmt.Errorf("schedule ID %q: want %d digits", id, IDLen)
		}
	}
	return nil
}

// MaxFields bounds the strings (field names and values) of one delayed
// entry: the mover passes them to XADD through Lua's unpack, whose stack
// holds about 8000 values.
const MaxFields = 4000

// addScript stores one entry due ARGV[1] milliseconds after the server's
// now, and returns its schedule ID.
var addScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('INCR', KEYS[3])
local s = string.format('%.0f', n)
local id = string.rep('0', 20 - #s) .. s
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
redis.call('HSET', KEYS[2], id, ARGV[2])
return id
`)

// cancelScript drops one entry; it returns 1 if the entry was waiting.
var cancelScript = redis.NewScript(`
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
`)

// moveScript appends at most ARGV[1] due entries to the stream (KEYS[3])
// in due order, each XADD followed by the removal of that entry, and
// returns {moved, ms until the next entry is due or -1 if none waits}. An
// error stops it between two entries, never inside one: what it moved is
// gone from the set, the rest stays. A payload that does not decode to an
// even number of strings (written by something else) is appended as is in
// the field "midstream:delayed" rather than dropped.
var moveScript = redis.NewScript(`
local function decode(p)
  local f, pos, n = {}, 1, #p
  while pos <= n do
    local c = string.find(p, ':', pos, true)
    if not c then return nil end
    local len = tonumber(string.sub(p, pos, c - 1))
    if not len or len < 0 or len ~= math.floor(len) or c + len > n then return nil end
    f[#f + 1] = string.sub(p, c + 1, c + len)
    pos = c + len + 1
  end
  return f
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, id in ipairs(due) do
  local p = redis.call('HGET', KEYS[2], id)
  if p then
    local f = decode(p)
    if f and #f > 0 and #f % 2 == 0 and #f <= 8000 then
      redis.call('XADD', KEYS[3], '*', unpack(f))
    else
      redis.call('XADD', KEYS[3], '*', 'midstream:delayed', p)
    end
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #nxt > 0 then wait = math.max(tonumber(nxt[2]) - now, 0) end
return {moved, wait}
`)

// Add stores fields (name, value pairs) in stream's delay set, due after d
// by the server's clock (at once when d <= 0), and returns the schedule ID.
func Add(ctx context.Context, c redis.Scripter, stream string, fields []string, d time.Duration) (string, error) {
	k := KeysOf(stream)
	ms := max(d.Milliseconds(), 0)
	return addScript.Run(ctx, c, []string{k.Set, k.Data, k.Seq}, ms, Encode(fields)).Text()
}

// Cancel drops the entry id from stream's delay set and reports whether it
// was still waiting (false: moved already, cancelled, or never added).
func Cancel(ctx context.Context, c redis.Scripter, stream, id string) (bool, error) {
	k := KeysOf(stream)
	n, err := cancelScript.Run(ctx, c, []string{k.Set, k.Data}, id).Int64()
	return n == 1, err
}

// Move appends at most limit due entries of stream's delay set to the
// stream. It returns how many it moved, and how long until the next entry
// is due (-1 when none waits; 0 when some are due already), by the
// server's clock.
func Move(ctx context.Context, c redis.Scripter, stream string, limit int) (moved int, next time.Duration, err error) {
	k := KeysOf(stream)
	r, err := moveScript.Run(ctx, c, []string{k.Set, k.Data, stream}, limit).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(r) != 2 {
		return 0, 0, errors.New("delay: move: malformed reply " + strconv.Itoa(len(r)))
	}
	next = -1
	if r[1] >= 0 {
		next = time.Duration(r[1]) * time.Millisecond
	}
	return int(r[0]), next, nil
}

// Encode returns ss as the payload moveScript decodes: each string as its
// length in decimal, a colon, and its bytes.
func Encode(ss []string) []byte {
	n := 0
	for _, s := range ss {
		n += 11 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range ss {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return b
}

// Defaults and bounds of a mover's settings.
const (
	DefaultBatch = 256
	MaxBatch     = 10_000
	DefaultPoll  = 50 * time.Millisecond
	MinPoll      = time.Millisecond
	MaxPoll      = time.Minute
)
