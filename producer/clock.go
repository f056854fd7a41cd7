package producer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clockRefresh is how often the server's clock is sampled while
	// trimming by age: between samples it is carried forward on the local
	// monotonic clock, which drifts by microseconds a second at most.
	clockRefresh = time.Second
	// clockStale is how long a sample may be carried forward while new
	// ones fail, before trimming by age fails instead.
	clockStale = time.Minute
)

// timeScript reads the server's clock on the node that holds KEYS[1] (the
// stream), so that it works the same through a cluster client.
var timeScript = redis.NewScript(`return redis.call('TIME')`)

// serverClock tells the time of the Redis server that holds one stream: the
// server's TIME, sampled at most every clockRefresh, plus the time elapsed
// since on the local monotonic clock. The local wall clock plays no part,
// so a client whose clock is off by any amount computes the same cutoffs as
// the server.
type serverClock struct {
	client redis.UniversalClient
	stream string
	local  func() time.Time // time.Now; tests inject a skewed clock

	mu         sync.Mutex
	server     time.Time // the server's time at the last sample
	at         time.Time // local time (with its monotonic reading) then
	sampled    bool
	refreshing bool
}

func newServerClock(client redis.UniversalClient, stream string) *serverClock {
	return &serverClock{client: client, stream: stream, local: time.Now}
}

// now returns the server's time. It asks the server when the last sample
// is older than clockRefresh; one caller at a time does, the others carry
// the last sample forward meanwhile. When asking fails, a sample younger
// than clockStale is carried forward; without one, now fails.
func (c *serverClock) now(ctx context.Context) (time.Time, error) {
	c.mu.Lock()
	elapsed := c.local().Sub(c.at)
	if c.sampled && (elapsed < clockRefresh || c.refreshing) {
		t := c.server.Add(elapsed)
		c.mu.Unlock()
		return t, nil
	}
	c.refreshing = true
	c.mu.Unlock()

	server, at, err := c.sample(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err == nil {
		c.server, c.at, c.sampled = server, at, true
		return server, nil
	}
	if elapsed = c.local().Sub(c.at); c.sampled && elapsed < clockStale {
		return c.server.Add(elapsed), nil
	}
	return time.Time{}, fmt.Errorf("reading the server's clock for trimming by age: %w", err)
}

// sample asks the server for its time, and returns it with the local time
// it corresponds to: the middle of the round trip.
func (c *serverClock) sample(ctx context.Context) (server, at time.Time, err error) {
	t0 := c.local()
	r, err := timeScript.Run(ctx, c.client, []string{c.stream}).Int64Slice()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	t1 := c.local()
	if len(r) != 2 {
		return time.Time{}, time.Time{}, fmt.Errorf("TIME: malformed reply of %d values", len(r))
	}
	return time.Unix(r[0], r[1]*1000), t0.Add(t1.Sub(t0) / 2), nil
}
