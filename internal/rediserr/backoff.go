package rediserr

import (
	"context"
	"math/rand/v2"
	"time"
)

// Bounds of a Backoff's waits.
const (
	// MinBackoff is the wait before the first retry, before jitter.
	MinBackoff = 50 * time.Millisecond
	// DefaultMaxBackoff caps the waits of a Backoff whose Max is zero.
	DefaultMaxBackoff = 5 * time.Second
)

// Backoff spaces out retries: the n-th wait (from 0) is d = MinBackoff·2ⁿ,
// capped at Max, with "equal" jitter: d/2 plus a random duration in
// [0, d/2]. So the waits grow from 25–50ms to Max/2–Max, never zero, and
// loops failing together spread out. The zero value is ready to use; it
// is not safe for concurrent use (one per loop).
type Backoff struct {
	// Max caps the wait before jitter; zero means DefaultMaxBackoff.
	Max time.Duration

	n int // waits since the last Reset
}

// Next returns the next wait and counts it, without sleeping: for a loop
// that waits in a select of its own.
func (b *Backoff) Next() time.Duration {
	limit := b.Max
	if limit <= 0 {
		limit = DefaultMaxBackoff
	}
	d := min(MinBackoff<<min(b.n, 16), limit)
	b.n++
	return d/2 + rand.N(d/2+1)
}

// Wait sleeps for the next wait. It returns false, at once, if ctx ends
// first.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits for d; it returns false, at once, if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Reset starts over from MinBackoff: call it after a success.
func (b *Backoff) Reset() { b.n = 0 }
