package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// Tail positions.
const (
	// TailNow starts after the last entry present when the tail starts.
	TailNow = "now"
	// TailBeginning starts at the oldest entry.
	TailBeginning = "beginning"
)

// tailBlock is how long one XREAD blocks, and tailCount how many entries it
// reads at most.
const (
	tailBlock = time.Second
	tailCount = 100
)

// ParseFilters reads field filters written "name=value".
func ParseFilters(fs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, f := range fs {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: filter %q is not name=value", midstream.ErrInvalidOption, f)
		}
		m[k] = v
	}
	return m, nil
}

// Match reports whether e holds every field of filter with its value.
func Match(e Entry, filter map[string]string) bool {
	for k, v := range filter {
		if got, ok := e.Fields[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// StartID resolves a tail position (TailNow, TailBeginning or an entry ID,
// exclusive) to the ID to read after.
func StartID(ctx context.Context, client redis.UniversalClient, stream, from string) (string, error) {
	switch from {
	case "", TailNow:
		ms, err := client.XRevRangeN(ctx, stream, "+", "-", 1).Result()
		if err != nil {
			return "", fmt.Errorf("XREVRANGE %s: %w", stream, err)
		}
		if len(ms) == 0 {
			return "0-0", nil
		}
		return ms[0].ID, nil
	case TailBeginning:
		return "0-0", nil
	}
	id, err := midstream.ParseID(from)
	if err != nil {
		return "", fmt.Errorf("%w: from: %w", midstream.ErrInvalidOption, err)
	}
	return id.String(), nil
}

// TailOptions says where a tail starts and what it shows.
type TailOptions struct {
	// After is the ID to read after (see StartID).
	After string
	// Filter keeps the entries holding each of its fields with its value.
	Filter map[string]string
	// OnRetry, if set, is told of each failed read before it is retried.
	OnRetry func(error)
}

// Tail calls fn with every entry of stream after o.After that matches
// o.Filter, in ID order, as they are added, until ctx ends (then it
// returns nil) or fn returns an error (which it returns). It reads with
// blocking XREAD from its own cursor, so no entry is skipped or repeated
// between reads; failed reads are retried with a backoff, and a
// configuration error (NOPERM, WRONGTYPE) that persists is returned.
func Tail(ctx context.Context, client redis.UniversalClient, stream string, o TailOptions, fn func(Entry) error) error {
	after := o.After
	var (
		b      rediserr.Backoff
		streak rediserr.Streak
	)
	for {
		res, err := client.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, after}, Count: tailCount, Block: tailBlock}).Result()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		if streak.Observe(err) {
			return rediserr.Fatal("tail "+stream, err)
		}
		if err != nil {
			if o.OnRetry != nil {
				o.OnRetry(err)
			}
			if rediserr.Classify(err) == rediserr.Topology {
				rediserr.Refresh(ctx, client)
			}
			if !b.Wait(ctx) {
				return nil
			}
			continue
		}
		b.Reset()
		for _, s := range res {
			for _, m := range s.Messages {
				after = m.ID
				e := NewEntry(stream, m)
				if !Match(e, o.Filter) {
					continue
				}
				if err := fn(e); err != nil {
					return err
				}
			}
		}
	}
}
