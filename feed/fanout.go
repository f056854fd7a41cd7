package feed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// ErrNoActivity is returned (wrapped) by FanOut when the activity stream
// holds no entry with the ID given (never added, or trimmed since).
var ErrNoActivity = errors.New("feed: no such activity")

// maxReported bounds the failures a FanOutError keeps one by one.
const maxReported = 100

// FanOutError reports the followers whose timelines did not receive an
// activity. The copies that succeeded stay; FanOut with the same ID retries
// the others (and skips the timelines that have it already).
type FanOutError struct {
	ID     string           // the activity's ID in the activity stream
	Count  int              // followers whose copy failed
	Failed map[string]error // the first maxReported of them (100), by follower
}

func (e *FanOutError) Error() string {
	users := slices.Sorted(maps.Keys(e.Failed))
	first := ""
	if len(users) > 0 {
		first = fmt.Sprintf("; %s: %v", users[0], e.Failed[users[0]])
	}
	return fmt.Sprintf("feed: fan-out of %s failed for %d follower(s)%s", e.ID, e.Count, first)
}

// Unwrap returns the errors of the reported followers, for errors.Is and
// errors.As.
func (e *FanOutError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, u := range slices.Sorted(maps.Keys(e.Failed)) {
		out = append(out, e.Failed[u])
	}
	return out
}

func (e *FanOutError) add(user string, err error) {
	e.Count++
	if len(e.Failed) < maxReported {
		if e.Failed == nil {
			e.Failed = map[string]error{}
		}
		e.Failed[user] = err
	}
}

// copyScript copies activity ARGV[1] (fields ARGV[4:]) into the timeline
// KEYS[1], capped at about ARGV[2] entries, and publishes the new entry's ID
// on ARGV[3]. Its keys share a slot (KEYS[2], the late set, is LateKey).
//
// The copy takes the activity's own ID, so a repeat finds it and does
// nothing (an entry at that ID with an activityId field is another
// activity's late copy, whose new ID happened to match). When the timeline already holds a newer entry (activities of
// other actors fanned out meanwhile, or a backfill) the copy gets a new ID
// and the field activityId, and the late set records the activity (at most
// ARGV[2] of them, the newest), so a repeat still does nothing. An activity
// older than every entry of a full timeline is not copied. Returns 1 if it
// copied, 0 if not; a timeline of another type fails with WRONGTYPE.
var copyScript = redis.NewScript(`
local tl, late, id, maxLen = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local function lt(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
if redis.call('ZSCORE', late, id) then return 0 end
local at = redis.call('XRANGE', tl, id, id)
if #at > 0 then
  -- the activity's own copy, unless a late copy of another one took the ID
  local own = true
  for i = 1, #at[1][2], 2 do
    if at[1][2][i] == 'activityId' then own = false end
  end
  if own then return 0 end
end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local new = redis.pcall('XADD', tl, 'MAXLEN', '~', maxLen, id, unpack(fields))
if type(new) == 'table' then
  if not string.find(new.err or '', 'equal or smaller', 1, true) then return new end
  local first = redis.call('XRANGE', tl, '-', '+', 'COUNT', 1)
  if #first > 0 and redis.call('XLEN', tl) >= maxLen and lt(id, first[1][1]) then return 0 end
  new = redis.call('XADD', tl, 'MAXLEN', '~', maxLen, '*', 'activityId', id, unpack(fields))
  redis.call('ZADD', late, tonumber(string.match(new, '^(%d+)')), id)
  local n = redis.call('ZCARD', late)
  if n > maxLen then redis.call('ZREMRANGEBYRANK', late, 0, n - maxLen - 1) end
end
redis.call('PUBLISH', ARGV[3], new)
return 1
`)

// FanOut copies the activity id of the activity stream into the timelines
// of its actor's current followers: the work Append does under fan-out on
// write, again. Timelines that have it already are skipped, so FanOut after
// an Append that failed half way (or a second FanOut) copies each activity
// at most once per timeline. It needs WithFanOutOnWrite.
//
// Followers are read with SSCAN and written in pipelines of
// WithFanOutBatch followers, one small script per timeline: no call holds
// Redis for more than one timeline's copy, and each script touches the
// keys of one user, so FanOut works on a Redis Cluster. A follower whose
// copy fails (a timeline key of another type, say) does not stop the
// others: FanOut returns a *FanOutError naming them.
func (f *Feed) FanOut(ctx context.Context, id string) error {
	if f.cfg.fanOutMaxLen <= 0 {
		return fmt.Errorf("%w: FanOut needs WithFanOutOnWrite", midstream.ErrInvalidOption)
	}
	pid, err := midstream.ParseID(id)
	if err != nil {
		return err
	}
	msgs, err := f.client.XRangeN(ctx, f.cfg.stream, pid.String(), pid.String(), 1).Result()
	if err != nil {
		return fmt.Errorf("feed: fan-out of %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return fmt.Errorf("%w: %s in %s", ErrNoActivity, id, f.cfg.stream)
	}
	e := toEntry(f.cfg.stream, msgs[0])
	actor := e.Fields[FieldActor]
	if checkUser(actor) != nil {
		return fmt.Errorf("%w: %s has no valid %s field", ErrNoActivity, id, FieldActor)
	}
	return f.fanOut(ctx, e.ID, actor, pairs(e.Fields))
}

// pairs returns fields as name, value pairs, the actor first, then by name.
func pairs(fields map[string]string) []any {
	out := make([]any, 0, 2*len(fields))
	out = append(out, FieldActor, fields[FieldActor])
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != FieldActor {
			out = append(out, k, fields[k])
		}
	}
	return out
}

func (f *Feed) fanOut(ctx context.Context, id, actor string, fields []any) error {
	fe := &FanOutError{ID: id}
	var cursor uint64
	for {
		users, next, err := f.client.SScan(ctx, FollowersKey(actor), cursor, "", f.cfg.batch).Result()
		if err != nil {
			return fmt.Errorf("feed: fan-out of %s: followers of %s: %w", id, actor, err)
		}
		calls := make([]copyCall, len(users))
		for i, u := range users {
			calls[i] = copyCall{user: u, id: id, fields: fields}
		}
		if err := f.copy(ctx, calls, fe); err != nil {
			return err
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	if fe.Count > 0 {
		return fe
	}
	return nil
}

// copyCall is one copy of an activity into a user's timeline.
type copyCall struct {
	user, id string
	fields   []any
}

// copy runs copyScript for every call in one pipeline (EVALSHA, then EVAL
// for the calls that met a server without the script), recording failures
// in fe. It fails as a whole only when ctx is done.
func (f *Feed) copy(ctx context.Context, calls []copyCall, fe *FanOutError) error {
	maxLen := strconv.FormatInt(f.cfg.fanOutMaxLen, 10)
	pending := make([]int, len(calls))
	for i := range pending {
		pending[i] = i
	}
	var copied int64
	for attempt := 0; len(pending) > 0; attempt++ {
		cmds := make([]*redis.Cmd, len(pending))
		_, _ = f.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range pending {
				c := calls[k]
				tl := TimelineKey(c.user)
				args := append([]any{c.id, maxLen, TimelineChannel(c.user)}, c.fields...)
				if attempt == 0 {
					cmds[i] = copyScript.EvalSha(ctx, p, []string{tl, LateKey(c.user)}, args...)
				} else {
					cmds[i] = copyScript.Eval(ctx, p, []string{tl, LateKey(c.user)}, args...)
				}
			}
			return nil
		})
		if err := ctx.Err(); err != nil {
			return err
		}
		var again []int
		for i, k := range pending {
			n, err := cmds[i].Int64()
			switch {
			case err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT"):
				again = append(again, k)
			case err != nil:
				fe.add(calls[k].user, fmt.Errorf("feed: copy %s into %s: %w", calls[k].id, TimelineKey(calls[k].user), err))
			default:
				copied += n
			}
		}
		pending = again
	}
	f.tel.Copied(ctx, f.cfg.stream, copied)
	return nil
}
