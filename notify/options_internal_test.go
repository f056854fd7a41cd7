package notify

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestZeroMeansDefault: an option given its zero value leaves the Notifier
// as no option does, also after a non-zero value (the last one wins).
func TestZeroMeansDefault(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	n, err := New(rdb,
		WithKeyPrefix("n:"), WithKeyPrefix(""),
		WithMaxLen(10), WithMaxLen(0),
		WithCountBudget(10), WithCountBudget(0),
		WithMarkerWindow(10), WithMarkerWindow(0),
		WithIdempotencyTTL(time.Second), WithIdempotencyTTL(0))
	if err != nil {
		t.Fatal(err)
	}
	c := n.cfg
	if c.prefix != DefaultKeyPrefix || c.maxLen != 0 || c.budget != DefaultCountBudget ||
		c.window != DefaultMarkerWindow || c.idemTTL != DefaultIdempotencyTTL || !c.markers {
		t.Fatalf("config %+v, want the defaults", c)
	}
}
