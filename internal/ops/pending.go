package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// Pending page sizes.
const (
	DefaultPendingLimit = 50
	MaxPendingLimit     = 10_000
)

// PendingQuery selects a page of a group's pending entries.
type PendingQuery struct {
	// After is the cursor: entries with IDs after it. "" starts at the
	// oldest.
	After string
	// Consumer keeps the entries of one consumer.
	Consumer string
	// MinIdle keeps entries idle at least this long.
	MinIdle time.Duration
	// Limit is the page size: DefaultPendingLimit when 0, at most
	// MaxPendingLimit.
	Limit int
	// WithFields reads each entry's fields too.
	WithFields bool
}

// PendingEntry is one entry of a group's pending entries list.
type PendingEntry struct {
	ID         string `json:"id"`
	Consumer   string `json:"consumer"`
	IdleMs     int64  `json:"idle_ms"`
	Deliveries int64  `json:"deliveries"`
	// Fields are the entry's fields when asked for; null when the entry
	// was deleted or trimmed while pending, or when not asked for.
	Fields map[string]string `json:"fields,omitempty"`
	// Deleted reports, when fields were asked for, that the entry is gone
	// from the stream.
	Deleted bool `json:"deleted,omitempty"`
}

// PendingPage is one page of pending entries.
type PendingPage struct {
	Stream  string         `json:"stream"`
	Group   string         `json:"group"`
	Entries []PendingEntry `json:"entries"`
	// Next is the cursor of the next page, "" after the last one.
	Next string `json:"next"`
}

// Pending returns one page of group's pending entries, oldest first
// (XPENDING with IDLE, a range and COUNT).
func Pending(ctx context.Context, client redis.UniversalClient, stream, group string, q PendingQuery) (PendingPage, error) {
	page := PendingPage{Stream: stream, Group: group, Entries: []PendingEntry{}}
	limit := q.Limit
	switch {
	case limit < 0 || limit > MaxPendingLimit:
		return page, fmt.Errorf("%w: limit %d is not in [0, %d]", midstream.ErrInvalidOption, limit, MaxPendingLimit)
	case q.MinIdle < 0:
		return page, fmt.Errorf("%w: min idle %s < 0", midstream.ErrInvalidOption, q.MinIdle)
	case limit == 0:
		limit = DefaultPendingLimit
	}
	start := "-"
	if q.After != "" {
		id, err := midstream.ParseID(q.After)
		if err != nil {
			return page, fmt.Errorf("%w: after: %w", midstream.ErrInvalidOption, err)
		}
		start = "(" + id.String()
	}
	ps, err := client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Idle: q.MinIdle,
		Start: start, End: "+", Count: int64(limit), Consumer: q.Consumer}).Result()
	if err != nil {
		return page, fmt.Errorf("XPENDING %s %s: %w", stream, group, err)
	}
	for _, p := range ps {
		page.Entries = append(page.Entries, PendingEntry{ID: p.ID, Consumer: p.Consumer,
			IdleMs: p.Idle.Milliseconds(), Deliveries: p.RetryCount})
	}
	if len(ps) == limit {
		page.Next = ps[len(ps)-1].ID
	}
	if q.WithFields && len(ps) > 0 {
		pipe := client.Pipeline()
		cmds := make([]*redis.XMessageSliceCmd, len(ps))
		for i, p := range ps {
			cmds[i] = pipe.XRange(ctx, stream, p.ID, p.ID)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return page, fmt.Errorf("XRANGE %s: %w", stream, err)
		}
		for i, c := range cmds {
			if ms := c.Val(); len(ms) > 0 {
				page.Entries[i].Fields = NewEntry(stream, ms[0]).Fields
			} else {
				page.Entries[i].Deleted = true
			}
		}
	}
	return page, nil
}
