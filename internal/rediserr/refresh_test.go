package rediserr_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/rediserr"
)

// clusterLike is a client with ReloadState, as a wrapper of a
// *redis.ClusterClient would have.
type clusterLike struct {
	redis.UniversalClient
	reloads atomic.Int64
}

func (c *clusterLike) ReloadState(context.Context) { c.reloads.Add(1) }

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	c := &clusterLike{}
	rediserr.Refresh(ctx, c)
	if c.reloads.Load() != 1 {
		t.Fatalf("%d reloads, want 1", c.reloads.Load())
	}

	// A plain client: nothing to do, nothing sent.
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	rediserr.Refresh(ctx, plain)

	// A cluster client: the reload runs in the background, so Refresh
	// returns at once even when no node answers, however often it is
	// called.
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	defer cluster.Close()
	start := time.Now()
	for range 1000 {
		rediserr.Refresh(ctx, cluster)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("1000 Refresh calls took %s", d)
	}
}

func TestRefreshAfter(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"closed client", redis.ErrClosed, true},
		{"deadline", fmt.Errorf("publish: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, false},
		{"pool timeout", redis.ErrPoolTimeout, false},
	} {
		c := &clusterLike{}
		if got := rediserr.RefreshAfter(ctx, c, tc.err); got != tc.want || c.reloads.Load() != map[bool]int64{false: 0, true: 1}[tc.want] {
			t.Errorf("%s: RefreshAfter = %v with %d reloads, want %v", tc.name, got, c.reloads.Load(), tc.want)
		}
	}
}
