package trim

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func offline(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// TestZeroMeansDefault: an option given its zero value leaves the Trimmer
// as no option does, also after a non-zero value (the last one wins).
func TestZeroMeansDefault(t *testing.T) {
	p := Policy{MaxLen: 10}
	tr, err := New(offline(t), p, WithStreams("a"),
		WithPattern("x*"), WithPattern(""),
		WithInterval(time.Minute), WithInterval(0),
		WithMaxStreamsPerTick(3), WithMaxStreamsPerTick(0),
		WithMaxPasses(3), WithMaxPasses(0))
	if err != nil {
		t.Fatal(err)
	}
	c := tr.cfg
	if c.pattern != "" || c.interval != DefaultInterval || c.maxStreams != DefaultMaxStreamsPerTick || c.maxPasses != DefaultMaxPasses {
		t.Fatalf("config %+v, want the defaults", c)
	}
	if want := time.Duration(float64(DefaultInterval) * DefaultJitterFraction); c.jitter != want {
		t.Fatalf("jitter %s, want %s", c.jitter, want)
	}
	if p.limit() != DefaultLimit {
		t.Fatalf("limit %d, want DefaultLimit", p.limit())
	}
}

// TestZeroJitterTurnsItOff: the one option whose zero is not the default.
func TestZeroJitterTurnsItOff(t *testing.T) {
	tr, err := New(offline(t), Policy{MaxLen: 10}, WithStreams("a"), WithJitter(0))
	if err != nil {
		t.Fatal(err)
	}
	if tr.cfg.jitter != 0 || tr.jitter() != 0 {
		t.Fatalf("jitter %s, want none", tr.cfg.jitter)
	}
}

// TestBoundsCannotOverflow: the longest wait between ticks fits a Duration
// and jitter's random span.
func TestBoundsCannotOverflow(t *testing.T) {
	tr, err := New(offline(t), Policy{MaxLen: 10}, WithStreams("a"), WithInterval(MaxInterval), WithJitter(MaxJitter))
	if err != nil {
		t.Fatal(err)
	}
	if d := tr.cfg.interval + tr.jitter(); d < MaxInterval || d > MaxInterval+MaxJitter {
		t.Fatalf("wait %s out of range", d)
	}
}
