package health

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestOptionDefaults(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	// Zero means the default, also after a non-zero value.
	c, err := newConfig(rdb, "s", []Option{WithDeadLetterKey("x"), WithDeadLetterKey("")})
	if err != nil {
		t.Fatal(err)
	}
	if c.dlqKey != "{s}:dlq" || c.minInterval != DefaultMinInterval {
		t.Fatalf("config %+v, want the defaults", c)
	}
	// WithMinInterval(0) is the exception: no reuse.
	c, err = newConfig(rdb, "s", []Option{WithMinInterval(time.Minute), WithMinInterval(0)})
	if err != nil {
		t.Fatal(err)
	}
	if c.minInterval != 0 {
		t.Fatalf("min interval %s, want 0", c.minInterval)
	}
}
