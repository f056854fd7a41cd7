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
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/internal/telemetry"
	"github.com/midstream-go/midstream/live"
)

// Field names.
const (
	// FieldActor is the field holding who did an activity.
	FieldActor = "actor"
	// FieldID is the key of the activity's ID in the JSON published on the
	// activity channel; Append refuses it as a field name.
	FieldID = "id"
	// FieldActivityID is set on a timeline copy whose entry ID is not the
	// activity's own (the copy came after a newer entry; see FanOut): it
	// holds the activity's ID in the activity stream.
	FieldActivityID = "activityId"
)

// Feed appends activities and reads users' feeds of the actors they follow.
// It is safe for concurrent use and never closes the client it was given.
type Feed struct {
	client redis.UniversalClient
	cfg    config
	tel    *telemetry.Ops
}

// Page is one page of a feed, newest first. Next is the cursor of the next
// (older) page, or "" when the feed has nothing older.
type Page struct {
	Items []midstream.Entry
	Next  string
}

// New returns a Feed over client. The caller keeps ownership of client.
// Bad options fail with an error wrapping midstream.ErrInvalidOption.
func New(client redis.UniversalClient, opts ...Option) (*Feed, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	cfg := config{stream: DefaultStream, channel: DefaultChannel, budget: DefaultScanBudget, batch: DefaultFanOutBatch,
		idemTTL: DefaultIdempotencyTTL}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	return &Feed{client: client, cfg: cfg, tel: telemetry.NewOps(cfg.tp, cfg.mp)}, nil
}

// FollowingKey is the set of users user follows: user:{user}:following.
func FollowingKey(user string) string { return "user:" + user + ":following" }

// FollowersKey is the set of user's followers: user:{user}:followers.
func FollowersKey(user string) string { return "user:" + user + ":followers" }

// TimelineKey is user's timeline under fan-out on write: feed:{user}.
func TimelineKey(user string) string { return "feed:" + user }

// TimelineChannel is the live channel of user's timeline.
func TimelineChannel(user string) string { return TimelineKey(user) + ":new" }

// LateKey is the sorted set, in the slot of user's timeline and outside the
// feed:* names, that records the activities copied into the timeline under
// a new ID (see FieldActivityID), so that a repeated copy is refused.
func LateKey(user string) string { return keys.Apart(TimelineKey(user), "late") }

func checkUser(u string) error {
	if u == "" {
		return fmt.Errorf("%w: empty user", midstream.ErrInvalidOption)
	}
	return midstream.CheckStream(u)
}

// appendScript adds the activity (ARGV[3:] are field pairs) to KEYS[1] and
// publishes it as JSON, its ID under "id", on the channel ARGV[1]. With a
// second key (an idempotency key, in the stream's slot) a repeat returns
// the first ID and adds nothing; the key expires after ARGV[2] ms. Its keys
// share a slot and the channel is an argument, so it runs on any cluster
// node.
var appendScript = redis.NewScript(`
local idem = KEYS[2]
if idem then
  local first = redis.call('GET', idem)
  if first then return {first, 0} end
end
local fields, activity = {}, {}
for i = 3, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  activity[ARGV[i]] = ARGV[i + 1]
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
if idem then redis.call('SET', idem, id, 'PX', ARGV[2]) end
activity['id'] = id
redis.call('PUBLISH', ARGV[1], cjson.encode(activity))
return {id, 1}
`)

// AppendOption adds to one Append.
type AppendOption func(*appendCfg)

type appendCfg struct {
	key string
	set bool
}

// WithIdempotencyKey makes Append idempotent under key (1 to
// MaxIdempotencyKeyLen bytes): an Append with a key already used within
// the idempotency window (WithIdempotencyTTL) adds and publishes nothing
// and returns the first Append's ID; under fan-out on write it still runs
// the fan-out, which copies only what is missing, so a retried Append
// finishes the work of one that failed half way.
func WithIdempotencyKey(key string) AppendOption {
	return func(c *appendCfg) { c.key, c.set = key, true }
}

// IdempotencyKey returns the key under which Append keeps an idempotency
// key of the activity stream stream: in the stream's slot, outside its name.
func IdempotencyKey(stream, key string) string {
	return keys.Apart(stream, "feed-idem:"+strconv.Itoa(len(key))+":"+key)
}

// Append adds an activity by actor with fields (which must not hold
// "actor", "id" or "activityId") to the activity stream and publishes it
// on the live channel as the article does: a JSON object of its fields,
// its actor and its ID under "id". Under fan-out on write it then copies
// it into the followers' timelines (see FanOut); when some copies fail it
// returns the ID with a *FanOutError, and FanOut(ctx, id) finishes the
// work. It returns the entry ID.
func (f *Feed) Append(ctx context.Context, actor string, fields map[string]string, opts ...AppendOption) (string, error) {
	if err := checkUser(actor); err != nil {
		return "", err
	}
	var ac appendCfg
	for _, o := range opts {
		if o == nil {
			return "", fmt.Errorf("%w: nil append option", midstream.ErrInvalidOption)
		}
		o(&ac)
	}
	ks := []string{f.cfg.stream}
	if ac.set {
		if ac.key == "" || len(ac.key) > MaxIdempotencyKeyLen {
			return "", fmt.Errorf("%w: idempotency key of %d bytes not within [1, %d]", midstream.ErrInvalidOption, len(ac.key), MaxIdempotencyKeyLen)
		}
		ks = append(ks, IdempotencyKey(f.cfg.stream, ac.key))
	}
	args := []any{f.cfg.channel, f.cfg.idemTTL.Milliseconds(), FieldActor, actor}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k == FieldActor || k == FieldID || k == FieldActivityID {
			return "", fmt.Errorf("%w: field %q is set by Append", midstream.ErrInvalidOption, k)
		}
		if err := midstream.CheckFieldName(k); err != nil {
			return "", err
		}
		args = append(args, k, fields[k])
	}
	ctx, span := f.tel.Start(ctx, "append", f.cfg.stream, true)
	res, err := appendScript.Run(ctx, f.client, ks, args...).Slice()
	var id string
	if err == nil {
		id, _ = res[0].(string)
		if added, _ := res[1].(int64); added == 1 {
			f.tel.Published(ctx, f.cfg.stream, 1)
		}
	}
	if err != nil || id == "" {
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", res)
		}
		err = fmt.Errorf("feed: append by %s: %w", actor, err)
		f.tel.End(span, err)
		return "", err
	}
	if f.cfg.fanOutMaxLen > 0 {
		flat := make([]any, 0, len(args)-2)
		flat = append(flat, args[2:]...)
		err = f.fanOut(ctx, id, actor, flat)
	}
	f.tel.End(span, err)
	return id, err
}

func (f *Feed) source(user string) (stream, channel string) {
	if f.cfg.fanOutMaxLen > 0 {
		return TimelineKey(user), TimelineChannel(user)
	}
	return f.cfg.stream, f.cfg.channel
}

// Read returns up to limit activities of the actors user follows, newest
// first, older than cursor ("" for the newest). limit is from 1 to
// MaxReadLimit. It reads the activity
// stream (or, under fan-out on write, user's timeline) backwards with
// XREVRANGE, keeping the followed actors' entries, until the page is full,
// the stream ends (Next is "") or the scan budget is spent: then the page
// may be short and Next continues the scan. Entries appended meanwhile never
// disturb a listing: each entry appears on exactly one page.
func (f *Feed) Read(ctx context.Context, user, cursor string, limit int) (Page, error) {
	if err := checkUser(user); err != nil {
		return Page{}, err
	}
	if limit < 1 || limit > MaxReadLimit {
		return Page{}, fmt.Errorf("%w: limit %d not within [1, %d]", midstream.ErrInvalidOption, limit, MaxReadLimit)
	}
	end := "+"
	if cursor != "" {
		c, err := midstream.ParseID(cursor)
		if err != nil {
			return Page{}, err
		}
		end = "(" + c.String()
	}
	follows, err := f.followSet(ctx, user)
	if err != nil {
		return Page{}, err
	}
	stream, _ := f.source(user)
	var page Page
	if len(follows) == 0 {
		return page, nil
	}
	var scanned int64
	for scanned < f.cfg.budget {
		chunk := min(max(int64(limit), 100), f.cfg.budget-scanned)
		msgs, err := f.client.XRevRangeN(ctx, stream, end, "-", chunk).Result()
		if err != nil {
			return Page{}, fmt.Errorf("feed: read %s: %w", stream, err)
		}
		for _, m := range msgs {
			scanned++
			end = "(" + m.ID
			e := toEntry(stream, m)
			if !follows[e.Fields[FieldActor]] {
				continue
			}
			page.Items = append(page.Items, e)
			if len(page.Items) == limit {
				page.Next = m.ID
				return page, nil
			}
		}
		if int64(len(msgs)) < chunk {
			return page, nil
		}
	}
	page.Next = end[1:]
	return page, nil
}

func (f *Feed) followSet(ctx context.Context, user string) (map[string]bool, error) {
	m, err := f.client.SMembers(ctx, FollowingKey(user)).Result()
	if err != nil {
		return nil, fmt.Errorf("feed: following of %s: %w", user, err)
	}
	set := make(map[string]bool, len(m))
	for _, u := range m {
		set[u] = true
	}
	return set, nil
}

// Live follows user's feed from from (an entry ID, live.Now or
// live.Beginning) with the guarantees of live.Subscribe. It delivers the
// activities of the actors user follows at the time each page is read (the
// follow set is read again for every page).
func (f *Feed) Live(ctx context.Context, user, from string) (*live.Subscription, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	filter := func(ctx context.Context, page []midstream.Entry) ([]midstream.Entry, error) {
		follows, err := f.followSet(ctx, user)
		if err != nil {
			return nil, err
		}
		out := page[:0]
		for _, e := range page {
			if follows[e.Fields[FieldActor]] {
				out = append(out, e)
			}
		}
		return out, nil
	}
	stream, channel := f.source(user)
	opts := append([]live.Option{live.WithFilter(filter)}, f.cfg.liveOps...)
	return live.Subscribe(ctx, f.client, stream, channel, from, opts...)
}

func toEntry(stream string, m redis.XMessage) midstream.Entry {
	return midstream.EntryOf(stream, m.ID, m.Values)
}
