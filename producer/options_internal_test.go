package producer

import (
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestZeroMeansDefault: an option given its zero value leaves the producer
// as no option does, also after a non-zero value (the last one wins).
func TestZeroMeansDefault(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	p, err := New[map[string]string](rdb, "s",
		WithMaxEntrySize(64), WithMaxEntrySize(0),
		WithTrim(Trim{MaxAge: time.Hour}), WithTrim(Trim{}))
	if err != nil {
		t.Fatal(err)
	}
	if p.maxSize != DefaultMaxEntrySize {
		t.Errorf("max entry size %d, want DefaultMaxEntrySize", p.maxSize)
	}
	if p.trim != nil {
		t.Errorf("trim %+v, want none", *p.trim)
	}
}

// TestHugeRefusedWithoutAllocating: a huge size is refused by comparison.
func TestHugeRefusedWithoutAllocating(t *testing.T) {
	var cfg config
	allocs := testing.AllocsPerRun(10, func() {
		cfg.errs = cfg.errs[:0]
		WithMaxEntrySize(math.MaxInt)(&cfg)
	})
	if len(cfg.errs) != 1 || allocs > 10 {
		t.Fatalf("errors %v, %v allocations", cfg.errs, allocs)
	}
}
