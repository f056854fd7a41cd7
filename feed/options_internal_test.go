package feed

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestZeroMeansDefault: an option given its zero value leaves the Feed as
// no option does, also after a non-zero value (the last one wins).
func TestZeroMeansDefault(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	f, err := New(rdb,
		WithStream("s"), WithStream(""),
		WithChannel("c"), WithChannel(""),
		WithFanOutOnWrite(10), WithFanOutOnWrite(0),
		WithScanBudget(10), WithScanBudget(0),
		WithFanOutBatch(10), WithFanOutBatch(0),
		WithBackfill(10), WithBackfill(0),
		WithIdempotencyTTL(time.Second), WithIdempotencyTTL(0))
	if err != nil {
		t.Fatal(err)
	}
	c := f.cfg
	if c.stream != DefaultStream || c.channel != DefaultChannel || c.fanOutMaxLen != 0 || c.budget != DefaultScanBudget ||
		c.batch != DefaultFanOutBatch || c.backfill != DefaultBackfill || c.idemTTL != DefaultIdempotencyTTL {
		t.Fatalf("config %+v, want the defaults", c)
	}
	if s, ch := f.source("bob"); s != DefaultStream || ch != DefaultChannel {
		t.Fatalf("source %q %q, want fan-out on read", s, ch)
	}
}
