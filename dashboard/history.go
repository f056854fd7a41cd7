package dashboard

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/internal/ops"
)

// Point is one sample of a stream, for the charts.
type Point struct {
	// T is when it was taken, in Unix milliseconds.
	T       int64 `json:"t"`
	Length  int64 `json:"length"`
	Pending int64 `json:"pending"`
	// Lag is the largest known group lag, null when none is known.
	Lag         *int64 `json:"lag"`
	DeadLetters int64  `json:"dead_letters"`
	// AddedPerSec and DeliveredPerSec are the rates since the previous
	// sample.
	AddedPerSec     float64 `json:"added_per_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
}

// history keeps the latest sample and the points of the last window.
type history struct {
	sampleMu sync.Mutex // one sample at a time

	mu        sync.Mutex
	latest    []ops.StreamRate
	sums      []ops.StreamSummary
	truncated bool
	taken     time.Time
	points    map[string][]Point
}

// sample takes a new sample of the streams matching patterns and adds it
// to the history, unless one younger than minAge exists (a concurrent
// caller just took it).
func (h *history) sample(ctx context.Context, client redis.UniversalClient, c *config, minAge time.Duration) error {
	h.sampleMu.Lock()
	defer h.sampleMu.Unlock()
	h.mu.Lock()
	fresh := !h.taken.IsZero() && time.Since(h.taken) < minAge
	h.mu.Unlock()
	if fresh {
		return nil
	}
	streams, truncated, err := find(ctx, client, c.patterns, c.maxStreams)
	if err != nil {
		return err
	}
	hs, err := ops.Snapshots(ctx, client, streams, health.WithoutConsumers())
	if err != nil {
		return err
	}
	now := time.Now()
	sums := make([]ops.StreamSummary, len(hs))
	for i, s := range hs {
		sums[i] = ops.Summarize(s)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rates := ops.Rates(h.sums, h.taken, sums, now)
	if h.points == nil {
		h.points = map[string][]Point{}
	}
	cut := now.Add(-c.history).UnixMilli()
	seen := make(map[string]bool, len(rates))
	for _, r := range rates {
		seen[r.Stream] = true
		p := Point{T: now.UnixMilli(), Length: r.Length, Pending: r.Pending, Lag: r.Lag, DeadLetters: r.DeadLetters,
			AddedPerSec: r.AddedPerSec, DeliveredPerSec: r.DeliveredPerSec}
		pts := append(h.points[r.Stream], p)
		i := 0
		for i < len(pts) && pts[i].T < cut {
			i++
		}
		h.points[r.Stream] = slices.Clip(pts[i:])
	}
	for s := range h.points {
		if !seen[s] {
			delete(h.points, s)
		}
	}
	h.latest, h.sums, h.truncated, h.taken = rates, sums, truncated, now
	return nil
}

// find lists the streams matching any of patterns, sorted, at most max.
func find(ctx context.Context, client redis.UniversalClient, patterns []string, max int) ([]string, bool, error) {
	var all []string
	truncated := false
	for _, p := range patterns {
		s, t, err := ops.FindStreams(ctx, client, p, max, false)
		if err != nil {
			return nil, false, err
		}
		all = append(all, s...)
		truncated = truncated || t
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) > max {
		all, truncated = all[:max], true
	}
	return all, truncated, nil
}

// overview is the JSON of api/overview.
type overview struct {
	Time          time.Time       `json:"time"`
	Patterns      []string        `json:"patterns"`
	Writable      bool            `json:"writable"`
	TokenRequired bool            `json:"token_required"`
	Truncated     bool            `json:"truncated"`
	IntervalMs    int64           `json:"interval_ms"`
	Streams       []streamHistory `json:"streams"`
}

type streamHistory struct {
	ops.StreamRate
	History []Point `json:"history"`
}

// view returns the latest sample with each stream's points.
func (h *history) view() (taken time.Time, truncated bool, streams []streamHistory) {
	h.mu.Lock()
	defer h.mu.Unlock()
	streams = make([]streamHistory, len(h.latest))
	for i, r := range h.latest {
		streams[i] = streamHistory{StreamRate: r, History: slices.Clone(h.points[r.Stream])}
	}
	return h.taken, h.truncated, streams
}
