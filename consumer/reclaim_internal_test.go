package consumer

import (
	"testing"
	"time"
)

func TestRetryIdle(t *testing.T) {
	c := &Consumer{cfg: config{minIdle: 100 * time.Millisecond, maxBackoff: time.Second}}
	for n, want := range map[int64]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 64: time.Second, 1 << 40: time.Second,
	} {
		if got := c.retryIdle(n); got != want {
			t.Errorf("retryIdle(%d) = %s, want %s", n, got, want)
		}
	}
	// A cap below the minimum idle time never makes an entry due sooner.
	c.cfg.maxBackoff = 10 * time.Millisecond
	if got := c.retryIdle(3); got != 100*time.Millisecond {
		t.Errorf("retryIdle with a cap below min idle = %s, want the min idle", got)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Second); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("jitter(1s) = %s, want within 10%%", d)
		}
	}
	if d := jitter(2); d != 2 {
		t.Fatalf("jitter of a tiny duration = %s", d)
	}
}
