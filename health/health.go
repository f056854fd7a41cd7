package health

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/internal/delay"
)

// StreamHealth is a snapshot of one stream, its consumer groups and its
// dead-letter stream.
type StreamHealth struct {
	// Stream is the stream's key.
	Stream string
	// Length is the number of entries in the stream (XLEN).
	Length int64
	// LastID is the ID of the last entry ever added (last-generated-id):
	// still reported after that entry was deleted or trimmed.
	LastID string
	// EntriesAdded is the number of entries ever added to the stream
	// (XINFO STREAM's entries-added, Redis 7.0 and later; 0 before). Its
	// growth over time is the stream's write rate.
	EntriesAdded int64
	// Groups are the stream's consumer groups, in the order Redis lists
	// them (only those WithGroups selects).
	Groups []GroupHealth
	// DeadLetter is the stream's dead-letter stream.
	DeadLetter DeadLetterHealth
	// Delayed is the stream's delay set (producer.PublishIn and
	// PublishAt).
	Delayed DelayedHealth
	// Time is when the snapshot was taken, by the local clock.
	Time time.Time
}

// Group returns the group named name, and whether the snapshot holds it.
func (s StreamHealth) Group(name string) (GroupHealth, bool) {
	for _, g := range s.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return GroupHealth{}, false
}

// GroupHealth is the state of one consumer group.
type GroupHealth struct {
	// Name is the group's name.
	Name string
	// Consumers are the group's consumers (XINFO CONSUMERS), nil
	// WithoutConsumers.
	Consumers []ConsumerHealth
	// ConsumerCount is the number of consumers in the group.
	ConsumerCount int64
	// Pending is the number of entries delivered to the group and not yet
	// acknowledged (its pending entries list).
	Pending int64
	// OldestPendingID is the ID of the oldest pending entry, "" if none.
	OldestPendingID string
	// OldestPendingAge is how long ago the oldest pending entry was added,
	// by its ID's time (the server's clock when the server chose the ID)
	// and the local clock: how old the oldest unfinished work is. Zero if
	// nothing is pending.
	OldestPendingAge time.Duration
	// OldestPendingIdle is how long the oldest pending entry has gone
	// without being delivered or claimed (XPENDING's idle time).
	OldestPendingIdle time.Duration
	// OldestPendingDeliveries is how many times the oldest pending entry
	// was delivered.
	OldestPendingDeliveries int64
	// LastDeliveredID is the ID of the last entry delivered to the group.
	LastDeliveredID string
	// EntriesRead is the number of the stream's entries the group has
	// read (XINFO GROUPS' entries-read, Redis 7.0 and later), when
	// EntriesReadKnown: its growth over time is the group's delivery
	// rate. Redis cannot always tell (see Lag).
	EntriesRead int64
	// EntriesReadKnown reports whether Redis reported EntriesRead.
	EntriesReadKnown bool
	// Lag is the number of entries in the stream not yet delivered to the
	// group, when LagKnown. Redis (7.0 and later) cannot tell it after
	// entries between the group's position and the end of the stream were
	// deleted (XDEL) or, in some cases, trimmed, until the group reads past
	// them; nor does Redis 6.2 report it.
	Lag int64
	// LagKnown reports whether Redis reported Lag.
	LagKnown bool
}

// ConsumerHealth is the state of one consumer of a group.
type ConsumerHealth struct {
	// Name is the consumer's name.
	Name string
	// Pending is the number of entries pending for the consumer.
	Pending int64
	// Idle is how long ago the consumer last interacted with the group.
	Idle time.Duration
	// Inactive is how long ago the consumer last read or claimed an entry
	// successfully (XINFO CONSUMERS' inactive, Redis 7.2 and later: 0
	// before); negative when it never did.
	Inactive time.Duration
}

// DelayedHealth is the state of a stream's delay set: entries published to
// become visible later, waiting for a mover (a consumer's Run or a
// producer.Scheduler). Snapshot reports it with the stream, so not while
// the stream does not exist yet (ErrNoStream).
type DelayedHealth struct {
	// Key is the delay set's key (a sorted set beside the stream).
	Key string
	// Size is the number of entries waiting, due or not.
	Size int64
	// Overdue is the number of entries already due, by the local clock.
	// More than a few for long means no mover runs, or movers fall behind.
	Overdue int64
	// OldestOverdueAge is how long ago the earliest due entry fell due, by
	// the local clock; zero when none is due.
	OldestOverdueAge time.Duration
}

// DeadLetterHealth is the state of a stream's dead-letter stream.
type DeadLetterHealth struct {
	// Key is the dead-letter stream's key (deadletter.Key of the stream by
	// default, WithDeadLetterKey otherwise).
	Key string
	// Length is its number of entries; 0 when it does not exist.
	Length int64
}

// Option configures Snapshot and RegisterGauges. Options are checked
// there: a zero value means the default (WithMinInterval excepted: zero
// asks Redis at every collection); a negative value, one above its bound
// or a name that is empty or holds control characters fails with an error
// wrapping midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	dlqKey      string
	dlqSet      bool // by WithDeadLetterKey
	groups      []string
	noConsumers bool
	minInterval time.Duration
	errs        []error
}

// WithDeadLetterKey sets the dead-letter stream whose length is reported.
// Default (also for "") deadletter.Key(stream), the consumer's default.
// SnapshotPartitioned and RegisterPartitioned refuse it: each partition
// has its own dead-letter stream.
func WithDeadLetterKey(key string) Option {
	return func(c *config) {
		if key == "" {
			c.dlqKey, c.dlqSet = "", false
			return
		}
		if err := midstream.CheckStream(key); err != nil {
			c.errs = append(c.errs, fmt.Errorf("%w: dead-letter key: %w", midstream.ErrInvalidOption, err))
			return
		}
		c.dlqKey, c.dlqSet = key, true
	}
}

// WithGroups reports only the named groups (those that exist), checked
// like stream names (midstream.CheckName). Default: every group of the
// stream.
func WithGroups(names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			if err := midstream.CheckName("group", n); err != nil {
				c.errs = append(c.errs, err)
				return
			}
		}
		c.groups = append(c.groups, names...)
	}
}

// WithoutConsumers leaves GroupHealth.Consumers nil, saving an XINFO
// CONSUMERS per group (ConsumerCount is still reported).
func WithoutConsumers() Option {
	return func(c *config) { c.noConsumers = true }
}

// WithMinInterval sets, for RegisterGauges, how long a snapshot is reused
// before Redis is asked again, whatever the collection interval, at most
// MaxMinInterval. Zero asks at every collection (an exception to the rule
// that zero means the default). Default DefaultMinInterval. Snapshot
// ignores it.
func WithMinInterval(d time.Duration) Option {
	return func(c *config) {
		switch {
		case d < 0:
			c.errs = append(c.errs, fmt.Errorf("%w: min interval %s is negative", midstream.ErrInvalidOption, d))
		case d > MaxMinInterval:
			c.errs = append(c.errs, fmt.Errorf("%w: min interval %s is above the maximum %s", midstream.ErrInvalidOption, d, MaxMinInterval))
		default:
			c.minInterval = d
		}
	}
}

// DefaultMinInterval is how long RegisterGauges reuses a snapshot.
const DefaultMinInterval = time.Second

// MaxMinInterval bounds WithMinInterval: gauges older than that are stale.
const MaxMinInterval = time.Hour

func newConfig(client redis.UniversalClient, stream string, opts []Option) (config, error) {
	if client == nil {
		return config{}, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(stream); err != nil {
		return config{}, err
	}
	cfg := config{minInterval: DefaultMinInterval}
	for _, o := range opts {
		if o == nil {
			return config{}, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return config{}, err
	}
	if cfg.dlqKey == "" {
		cfg.dlqKey = deadletter.Key(stream)
	}
	return cfg, nil
}

// Snapshot returns the health of stream: its length and last ID, each
// group's consumers, pending entries, oldest pending entry, position and lag,
// the dead-letter stream's length, and the size of the delay set with its
// overdue entries. It needs no OpenTelemetry.
//
// The work is O(groups + consumers), never O(stream): XINFO STREAM, XINFO
// GROUPS, XLEN of the dead-letter stream and ZCARD, ZCOUNT and ZRANGE 0 0
// of the delay set in one pipeline, then, per group,
// XPENDING for its oldest entry and XINFO CONSUMERS in a second one. The
// values are read at slightly different moments, so under load they may not
// add up exactly.
//
// A stream that does not exist fails with an error wrapping
// midstream.ErrNoStream; bad arguments with midstream.ErrInvalidOption or
// midstream.ErrInvalidStream. The caller keeps ownership of client.
func Snapshot(ctx context.Context, client redis.UniversalClient, stream string, opts ...Option) (StreamHealth, error) {
	cfg, err := newConfig(client, stream, opts)
	if err != nil {
		return StreamHealth{}, err
	}
	return snapshot(ctx, client, stream, &cfg)
}

func snapshot(ctx context.Context, client redis.UniversalClient, stream string, cfg *config) (StreamHealth, error) {
	h := StreamHealth{Stream: stream, DeadLetter: DeadLetterHealth{Key: cfg.dlqKey}, Time: time.Now()}
	pipe := client.Pipeline()
	info := pipe.XInfoStream(ctx, stream)
	groups := redis.NewSliceCmd(ctx, "XINFO", "GROUPS", stream)
	groups.SetFirstKeyPos(2)
	_ = pipe.Process(ctx, groups)
	dlq := pipe.XLen(ctx, cfg.dlqKey)
	h.Delayed.Key = delay.KeysOf(stream).Set
	nowMs := strconv.FormatInt(h.Time.UnixMilli(), 10)
	delayed := pipe.ZCard(ctx, h.Delayed.Key)
	overdue := pipe.ZCount(ctx, h.Delayed.Key, "-inf", nowMs)
	first := pipe.ZRangeWithScores(ctx, h.Delayed.Key, 0, 0)
	_, _ = pipe.Exec(ctx)
	// A missing stream returns ErrNoStream with its dead-letter stream and
	// delay set when they could be read (SnapshotPartitioned reports a
	// partition not created yet that way).
	infoErr := info.Err()
	missing := infoErr != nil && isNoSuchKey(infoErr)
	if infoErr != nil && !missing {
		return h, fmt.Errorf("health: XINFO STREAM %q: %w", stream, infoErr)
	}
	if err := dlq.Err(); err != nil && !missing {
		return h, fmt.Errorf("health: XLEN %q: %w", cfg.dlqKey, err)
	}
	h.DeadLetter.Length = dlq.Val()
	if err := errors.Join(delayed.Err(), overdue.Err(), first.Err()); err != nil && !missing {
		return h, fmt.Errorf("health: delay set %q: %w", h.Delayed.Key, err)
	}
	h.Delayed.Size, h.Delayed.Overdue = delayed.Val(), overdue.Val()
	if z := first.Val(); len(z) > 0 && h.Delayed.Overdue > 0 {
		h.Delayed.OldestOverdueAge = max(h.Time.Sub(time.UnixMilli(int64(z[0].Score))), 0)
	}
	if missing {
		return h, fmt.Errorf("health: %q: %w", stream, midstream.ErrNoStream)
	}
	h.Length = info.Val().Length
	h.LastID = info.Val().LastGeneratedID
	h.EntriesAdded = info.Val().EntriesAdded
	raw, err := groups.Result()
	if err != nil {
		return h, fmt.Errorf("health: XINFO GROUPS %q: %w", stream, err)
	}
	for _, r := range raw {
		g, err := parseGroup(r)
		if err != nil {
			return h, fmt.Errorf("health: XINFO GROUPS %q: %w", stream, err)
		}
		if len(cfg.groups) == 0 || contains(cfg.groups, g.Name) {
			h.Groups = append(h.Groups, g)
		}
	}
	if len(h.Groups) == 0 {
		return h, nil
	}

	pipe = client.Pipeline()
	oldest := make([]*redis.XPendingExtCmd, len(h.Groups))
	consumers := make([]*redis.XInfoConsumersCmd, len(h.Groups))
	for i, g := range h.Groups {
		if g.Pending > 0 {
			oldest[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: g.Name, Start: "-", End: "+", Count: 1})
		}
		if !cfg.noConsumers {
			consumers[i] = pipe.XInfoConsumers(ctx, stream, g.Name)
		}
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx)
	}
	now := time.Now()
	for i := range h.Groups {
		g := &h.Groups[i]
		if cmd := oldest[i]; cmd != nil {
			pend, err := cmd.Result()
			if err != nil && !isNoGroup(err) {
				return h, fmt.Errorf("health: XPENDING %q %q: %w", stream, g.Name, err)
			}
			if len(pend) > 0 {
				g.OldestPendingID = pend[0].ID
				g.OldestPendingIdle = pend[0].Idle
				g.OldestPendingDeliveries = pend[0].RetryCount
				if id, err := midstream.ParseID(pend[0].ID); err == nil {
					g.OldestPendingAge = max(now.Sub(id.Time()), 0)
				}
			}
		}
		if cmd := consumers[i]; cmd != nil {
			cs, err := cmd.Result()
			if err != nil && !isNoGroup(err) {
				return h, fmt.Errorf("health: XINFO CONSUMERS %q %q: %w", stream, g.Name, err)
			}
			g.Consumers = make([]ConsumerHealth, 0, len(cs))
			for _, c := range cs {
				g.Consumers = append(g.Consumers, ConsumerHealth{Name: c.Name, Pending: c.Pending, Idle: c.Idle, Inactive: c.Inactive})
			}
		}
	}
	return h, nil
}

// parseGroup reads one group of an XINFO GROUPS reply: a map (RESP3) or a
// flat list of name, value pairs (RESP2). A lag that is null, or absent
// (Redis 6.2), is unknown.
func parseGroup(r any) (GroupHealth, error) {
	var g GroupHealth
	set := func(k string, v any) error {
		var err error
		switch k {
		case "name":
			g.Name, err = str(v)
		case "consumers":
			g.ConsumerCount, err = num(v)
		case "pending":
			g.Pending, err = num(v)
		case "last-delivered-id":
			g.LastDeliveredID, err = str(v)
		case "lag":
			if v != nil {
				g.Lag, err = num(v)
				g.LagKnown = err == nil
			}
		case "entries-read":
			if v != nil {
				g.EntriesRead, err = num(v)
				g.EntriesReadKnown = err == nil
			}
		}
		return err
	}
	switch r := r.(type) {
	case map[any]any:
		for k, v := range r {
			name, _ := k.(string)
			if err := set(name, v); err != nil {
				return g, err
			}
		}
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			name, _ := r[i].(string)
			if err := set(name, r[i+1]); err != nil {
				return g, err
			}
		}
	default:
		return g, fmt.Errorf("unexpected reply %T", r)
	}
	if g.Name == "" {
		return g, errors.New("group without a name")
	}
	return g, nil
}

func str(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", fmt.Errorf("unexpected value %T", v)
}

func num(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("unexpected value %T", v)
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// isNoSuchKey reports XINFO STREAM's reply for a missing key, a plain "ERR"
// error whose text is the only mark.
func isNoSuchKey(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(strings.ToLower(rerr.Error()), "no such key")
}

func isNoGroup(err error) bool { return redis.HasErrorPrefix(err, "NOGROUP") }
