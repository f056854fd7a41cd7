package deadletter

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/midstream-go/midstream"
)

// List limits.
const (
	DefaultListLimit = 100   // entries per List call when ListOptions.Limit is 0
	MaxListLimit     = 10000 // the largest ListOptions.Limit
	// DefaultScanBudgetFactor times the limit is how many entries a
	// filtered List examines when ListOptions.ScanBudget is 0.
	DefaultScanBudgetFactor = 10
	// MaxScanBudget is the largest ListOptions.ScanBudget: it bounds the
	// time one List call takes (it reads in chunks, so not its memory).
	MaxScanBudget = 1_000_000
)

// ListOptions selects and pages dead-letter entries. The zero value lists
// the first DefaultListLimit entries.
type ListOptions struct {
	// After is the cursor: only entries with IDs after it are listed. ""
	// starts at the oldest entry; pass the next value a List call returned
	// to continue.
	After string
	// Limit is the most entries returned: DefaultListLimit when 0, at most
	// MaxListLimit.
	Limit int
	// Since and Until keep entries dead-lettered at or after Since and
	// before Until (by the dead-letter entry's ID time, so they select an
	// ID range without scanning). Zero means unbounded.
	Since, Until time.Time
	// ErrorContains keeps entries whose reason (FieldError) contains it.
	ErrorContains string
	// Group keeps entries that were pending in this consumer group.
	Group string
	// ScanBudget bounds how many entries one call examines when filtering
	// by ErrorContains or Group: DefaultScanBudgetFactor × Limit when 0, at
	// most MaxScanBudget.
	// A call that spends it returns fewer than Limit entries and a next
	// cursor to continue from.
	ScanBudget int
}

// filter is the part of ListOptions (and RedriveOptions) that selects
// entries.
type filter struct {
	start, end    string // XRANGE bounds, inclusive; start "" means empty range
	errorContains string
	group         string
}

func (f filter) scans() bool { return f.errorContains != "" || f.group != "" }

func (f filter) match(e Entry) bool {
	return (f.group == "" || e.Group == f.group) && strings.Contains(e.Error, f.errorContains)
}

// newFilter maps a cursor and a time window to an XRANGE range. ok is false
// when the range is empty.
func newFilter(after string, since, until time.Time, errorContains, group string) (f filter, ok bool, err error) {
	f = filter{start: "-", end: "+", errorContains: errorContains, group: group}
	var lo midstream.ID
	hasLo := false
	if after != "" {
		a, err := midstream.ParseID(after)
		if err != nil {
			return f, false, fmt.Errorf("%w: after: %w", midstream.ErrInvalidOption, err)
		}
		if a.Ms == math.MaxUint64 && a.Seq == math.MaxUint64 {
			return f, false, nil
		}
		lo, hasLo = a.Next(), true
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return f, false, nil
	}
	if !since.IsZero() {
		if s := ceilMs(since); !hasLo || s.Compare(lo) > 0 {
			lo, hasLo = s, true
		}
	}
	if hasLo {
		f.start = lo.String()
	}
	if !until.IsZero() {
		u := ceilMs(until) // the first ID at or after until
		if u.IsZero() {
			return f, false, nil
		}
		hi := u.Prev()
		if hasLo && lo.Compare(hi) > 0 {
			return f, false, nil
		}
		f.end = hi.String()
	}
	return f, true, nil
}

// ceilMs returns the first ID whose time is at or after t.
func ceilMs(t time.Time) midstream.ID {
	id := midstream.IDFromTime(t)
	if id.Time().Before(t) {
		id.Ms++
	}
	return id
}

func (o ListOptions) validate() (limit, budget int, err error) {
	limit, budget = o.Limit, o.ScanBudget
	switch {
	case limit < 0:
		return 0, 0, fmt.Errorf("%w: list: limit %d < 0", midstream.ErrInvalidOption, limit)
	case limit > MaxListLimit:
		return 0, 0, fmt.Errorf("%w: list: limit %d > %d", midstream.ErrInvalidOption, limit, MaxListLimit)
	case budget < 0:
		return 0, 0, fmt.Errorf("%w: list: scan budget %d < 0", midstream.ErrInvalidOption, budget)
	case budget > MaxScanBudget:
		return 0, 0, fmt.Errorf("%w: list: scan budget %d > %d", midstream.ErrInvalidOption, budget, MaxScanBudget)
	}
	if limit == 0 {
		limit = DefaultListLimit
	}
	if budget == 0 {
		budget = DefaultScanBudgetFactor * limit
	}
	return limit, budget, nil
}

// List returns dead-letter entries oldest first, at most opts.Limit of them,
// and a cursor: next is "" when no entry after them is left; otherwise pass
// it as opts.After to continue. Each entry is listed once across pages, even
// while entries are added, redriven or deleted.
//
// The time window maps to an ID range. ErrorContains and Group are checked
// entry by entry, reading XRANGE in chunks until Limit entries match or
// opts.ScanBudget entries were examined; then next is the last examined ID,
// so a page may hold fewer than Limit entries (even none) while next is not
// "".
func (q *Queue) List(ctx context.Context, opts ListOptions) (entries []Entry, next string, err error) {
	limit, budget, err := opts.validate()
	if err != nil {
		return nil, "", err
	}
	f, ok, err := newFilter(opts.After, opts.Since, opts.Until, opts.ErrorContains, opts.Group)
	if err != nil || !ok {
		return nil, "", err
	}
	entries, next, err = q.scan(ctx, f, limit, budget)
	if err != nil {
		return nil, "", fmt.Errorf("deadletter: list: %w", err)
	}
	return entries, next, nil
}

// scanChunk bounds the entries one XRANGE reads while filtering.
const scanChunk = 1000

// scan reads f's range in chunks and returns up to limit matching entries,
// examining at most budget entries when f filters (every entry matches
// otherwise). next is "" when the range holds nothing after the returned
// entries, else the ID to continue after.
func (q *Queue) scan(ctx context.Context, f filter, limit, budget int) (entries []Entry, next string, err error) {
	if !f.scans() {
		budget = limit
	}
	start := f.start
	examined := 0
	for {
		n := budget - examined
		if f.scans() {
			n = min(n, max(limit, DefaultListLimit), scanChunk)
		}
		// One more than needed tells whether anything follows.
		msgs, err := q.client.XRangeN(ctx, q.key, start, f.end, int64(n)+1).Result()
		if err != nil {
			return nil, "", err
		}
		more := len(msgs) > n
		if more {
			msgs = msgs[:n]
		}
		for i, m := range msgs {
			examined++
			e := ParseEntry(q.key, m)
			if !f.match(e) {
				continue
			}
			entries = append(entries, e)
			if len(entries) == limit {
				if !more && i == len(msgs)-1 {
					return entries, "", nil
				}
				return entries, m.ID, nil
			}
		}
		if !more {
			return entries, "", nil
		}
		last := msgs[len(msgs)-1].ID
		if examined >= budget {
			return entries, last, nil
		}
		id, err := midstream.ParseID(last)
		if err != nil {
			return nil, "", err
		}
		start = id.Next().String()
	}
}

// Get returns the dead-letter entry with the given ID, and whether it exists.
func (q *Queue) Get(ctx context.Context, id string) (Entry, bool, error) {
	nid, err := normID(id)
	if err != nil {
		return Entry{}, false, err
	}
	msgs, err := q.client.XRangeN(ctx, q.key, nid, nid, 1).Result()
	if err != nil {
		return Entry{}, false, fmt.Errorf("deadletter: get %s: %w", nid, err)
	}
	if len(msgs) == 0 {
		return Entry{}, false, nil
	}
	return ParseEntry(q.key, msgs[0]), true, nil
}

// Count returns how many entries the dead-letter stream holds (XLEN).
func (q *Queue) Count(ctx context.Context) (int64, error) {
	n, err := q.client.XLen(ctx, q.key).Result()
	if err != nil {
		return 0, fmt.Errorf("deadletter: count: %w", err)
	}
	return n, nil
}
