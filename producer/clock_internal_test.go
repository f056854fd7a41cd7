package producer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestMaxAgeUsesServerClock publishes with trim by MaxAge from a client
// whose clock is skewed forward and backward by far more than MaxAge: the
// entries just added stay, and the cutoff follows the server's clock.
func TestMaxAgeUsesServerClock(t *testing.T) {
	const maxAge = 2 * time.Second
	for _, skew := range []time.Duration{time.Hour, -time.Hour, 10 * maxAge, -10 * maxAge} {
		t.Run(skew.String(), func(t *testing.T) {
			srv := redistest.Start(t)
			ctx := context.Background()
			stream := srv.Key("skew")
			p, err := New[map[string]string](srv.Client, stream, WithTrim(Trim{MaxAge: maxAge}))
			if err != nil {
				t.Fatal(err)
			}
			p.clock.local = func() time.Time { return time.Now().Add(skew) }

			// An old entry (by the server's clock) that the next add must
			// trim, and a fresh one that it must keep.
			server, err := srv.Client.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			old := midstream.IDFromTime(server.Add(-10 * maxAge)).String()
			if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: old, Values: []string{"n", "old"}}).Err(); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				var opts []PublishOption
				if i%2 == 1 { // the idempotent script trims by the same cutoff
					opts = append(opts, IdempotencyKey(fmt.Sprint(i)))
				}
				id, err := p.Publish(ctx, map[string]string{"n": "x"}, opts...)
				if err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
				got, err := srv.Client.XRange(ctx, stream, id, id).Result()
				if err != nil || len(got) != 1 {
					t.Fatalf("publish %d: entry %s not in the stream (%v, %v)", i, id, got, err)
				}
			}
			if n := srv.Client.XLen(ctx, stream).Val(); n != 5 {
				t.Fatalf("XLEN = %d, want 5 (the old entry trimmed, the new ones kept)", n)
			}
			first, err := srv.Client.XRangeN(ctx, stream, "-", "+", 1).Result()
			if err != nil || len(first) != 1 || first[0].ID == old {
				t.Fatalf("the old entry is still first: %v %v", first, err)
			}
			// The cutoff is the server's now minus MaxAge, whatever the
			// local clock says.
			now, err := p.clock.now(ctx)
			if err != nil {
				t.Fatal(err)
			}
			server = srv.Client.Time(ctx).Val()
			if d := now.Sub(server); d > 100*time.Millisecond || d < -100*time.Millisecond {
				t.Fatalf("server clock estimate %v, server %v: off by %v", now, server, d)
			}
		})
	}
}

// TestServerClockSampling checks when the clock asks the server, and what
// it does while the server cannot be asked.
func TestServerClockSampling(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	ctx := context.Background()
	local := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // far from the server's clock
	c := newServerClock(rdb, "s")
	c.local = func() time.Time { return local }
	server := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	mr.SetTime(server)

	now := func() time.Time {
		t.Helper()
		got, err := c.now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := now(); !got.Equal(server) {
		t.Fatalf("first reading %v, want the server's %v", got, server)
	}
	// Within clockRefresh the reading is carried forward, the server not
	// asked.
	mr.SetTime(server.Add(time.Hour))
	local = local.Add(500 * time.Millisecond)
	if got, want := now(), server.Add(500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("carried forward: %v, want %v", got, want)
	}
	// After it, the server is asked again.
	local = local.Add(time.Second)
	if got, want := now(), server.Add(time.Hour); !got.Equal(want) {
		t.Fatalf("after a refresh: %v, want %v", got, want)
	}
	// While the server cannot be asked, a reading younger than clockStale
	// is carried forward; an older one is an error.
	mr.Close()
	local = local.Add(30 * time.Second)
	if got, want := now(), server.Add(time.Hour+30*time.Second); !got.Equal(want) {
		t.Fatalf("server away: %v, want %v", got, want)
	}
	local = local.Add(clockStale)
	if _, err := c.now(ctx); err == nil {
		t.Fatal("a reading older than clockStale was used")
	}
}
