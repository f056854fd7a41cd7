package rediserr_test

import (
	"context"
	"testing"
	"time"

	"github.com/midstream-go/midstream/internal/rediserr"
)

// TestBackoffBounds: the n-th wait lies in [d/2, d] for d = 50ms·2ⁿ capped
// at Max (5s by default), and Reset starts over.
func TestBackoffBounds(t *testing.T) {
	for _, max := range []time.Duration{0, time.Second, 20 * time.Millisecond} {
		limit := max
		if limit == 0 {
			limit = rediserr.DefaultMaxBackoff
		}
		for range 20 { // the jitter is random: sample it
			b := rediserr.Backoff{Max: max}
			for n := range 40 {
				d := min(rediserr.MinBackoff<<min(n, 20), limit)
				if got := b.Next(); got < d/2 || got > d {
					t.Fatalf("max %s, wait %d: %s, want within [%s, %s]", max, n, got, d/2, d)
				}
			}
			b.Reset()
			if got := b.Next(); got > min(rediserr.MinBackoff, limit) {
				t.Fatalf("max %s: after Reset the wait is %s", max, got)
			}
		}
	}
}

func TestBackoffWait(t *testing.T) {
	b := rediserr.Backoff{Max: time.Millisecond}
	start := time.Now()
	if !b.Wait(context.Background()) {
		t.Fatal("Wait = false with a live ctx")
	}
	if time.Since(start) < 500*time.Microsecond {
		t.Fatal("Wait did not wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b = rediserr.Backoff{}
	start = time.Now()
	if b.Wait(ctx) {
		t.Fatal("Wait = true with a cancelled ctx")
	}
	if time.Since(start) > rediserr.MinBackoff/2 {
		t.Fatal("Wait slept on a cancelled ctx")
	}
}
