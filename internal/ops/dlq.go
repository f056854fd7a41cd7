package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
)

// MaxSelect bounds how many dead letters one redrive or delete selects.
const MaxSelect = 100_000

// DeadLetter is one dead-letter entry with its provenance.
type DeadLetter struct {
	// ID is the dead-letter entry's ID.
	ID string `json:"id"`
	// DeadLetteredAt is when it was dead-lettered, by its ID.
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	Source         string    `json:"source"`
	Group          string    `json:"group"`
	Consumer       string    `json:"consumer"`
	OriginalID     string    `json:"original_id"`
	Deliveries     int64     `json:"deliveries"`
	Reason         string    `json:"reason"`
	// Fields are the original entry's fields.
	Fields map[string]string `json:"fields"`
}

// NewDeadLetter converts a deadletter.Entry.
func NewDeadLetter(e deadletter.Entry) DeadLetter {
	d := DeadLetter{ID: e.ID, Source: e.Source, Group: e.Group, Consumer: e.Consumer, OriginalID: e.OriginalID,
		Deliveries: e.Deliveries, Reason: e.Error, Fields: e.Fields}
	if id, err := midstream.ParseID(e.ID); err == nil {
		d.DeadLetteredAt = id.Time().UTC()
	}
	return d
}

// DLQFilter selects dead letters.
type DLQFilter struct {
	// Group keeps entries that were pending in this group.
	Group string
	// Reason keeps entries whose reason contains it.
	Reason string
	// OlderThan keeps entries dead-lettered at least this long ago;
	// NewerThan those dead-lettered less than this long ago. Zero: no
	// bound.
	OlderThan, NewerThan time.Duration
}

// options maps the filter to a deadletter.ListOptions at now.
func (f DLQFilter) options(now time.Time) (deadletter.ListOptions, error) {
	if f.OlderThan < 0 || f.NewerThan < 0 {
		return deadletter.ListOptions{}, fmt.Errorf("%w: ages must be >= 0", midstream.ErrInvalidOption)
	}
	o := deadletter.ListOptions{Group: f.Group, ErrorContains: f.Reason}
	if f.OlderThan > 0 {
		o.Until = now.Add(-f.OlderThan)
	}
	if f.NewerThan > 0 {
		o.Since = now.Add(-f.NewerThan)
	}
	return o, nil
}

// ListDeadLetters returns up to limit dead letters matching f after the
// cursor after, oldest first, and the cursor of the next page ("" after
// the last). It reads on through pages a filter leaves short, so a page is
// full unless the end was reached.
func ListDeadLetters(ctx context.Context, q *deadletter.Queue, f DLQFilter, after string, limit int) ([]DeadLetter, string, error) {
	if limit < 1 || limit > deadletter.MaxListLimit {
		return nil, "", fmt.Errorf("%w: limit %d is not in [1, %d]", midstream.ErrInvalidOption, limit, deadletter.MaxListLimit)
	}
	o, err := f.options(time.Now())
	if err != nil {
		return nil, "", err
	}
	out := []DeadLetter{}
	o.After = after
	for {
		o.Limit = limit - len(out)
		es, next, err := q.List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		for _, e := range es {
			out = append(out, NewDeadLetter(e))
		}
		if next == "" || len(out) == limit {
			return out, next, nil
		}
		o.After = next
	}
}

// SelectDeadLetters returns the IDs of the dead letters matching f, oldest
// first, at most max (1..MaxSelect); truncated reports that more matched.
// Redrive and delete work on what it selected, so a dry run shows exactly
// what they do.
func SelectDeadLetters(ctx context.Context, q *deadletter.Queue, f DLQFilter, max int) (ids []string, truncated bool, err error) {
	if max < 1 || max > MaxSelect {
		return nil, false, fmt.Errorf("%w: max %d is not in [1, %d]", midstream.ErrInvalidOption, max, MaxSelect)
	}
	after := ""
	for {
		page, next, err := ListDeadLetters(ctx, q, f, after, min(max+1-len(ids), deadletter.MaxListLimit))
		if err != nil {
			return nil, false, err
		}
		for _, d := range page {
			ids = append(ids, d.ID)
		}
		if len(ids) > max {
			return ids[:max], true, nil
		}
		if next == "" {
			return ids, false, nil
		}
		after = next
	}
}

// RedriveResult reports a redrive.
type RedriveResult struct {
	Redriven int `json:"redriven"`
	// Skipped counts entries gone when their turn came.
	Skipped int `json:"skipped"`
	// Empty counts entries left in place: they hold no original fields.
	Empty int `json:"empty"`
	// NewIDs maps each redriven dead-letter ID to its new ID.
	NewIDs map[string]string `json:"new_ids"`
}

// Redrive sends the dead letters ids back, at most rate per second (0: no
// limit). It is the one place the command and the dashboard redrive
// through.
func Redrive(ctx context.Context, q *deadletter.Queue, ids []string, rate float64) (RedriveResult, error) {
	if len(ids) == 0 {
		return RedriveResult{NewIDs: map[string]string{}}, nil
	}
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{IDs: ids, Rate: rate})
	out := RedriveResult{Redriven: res.Redriven, Skipped: res.Skipped, Empty: res.Empty, NewIDs: res.NewIDs}
	if out.NewIDs == nil {
		out.NewIDs = map[string]string{}
	}
	return out, err
}
