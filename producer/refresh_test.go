package producer_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/producer"
)

// reloading is a client with a cluster client's ReloadState, counted.
type reloading struct {
	*redis.Client
	reloads atomic.Int64
}

func (c *reloading) ReloadState(context.Context) { c.reloads.Add(1) }

// TestPublishRefreshesOnTopologyErrors: a publish that fails because the
// node cannot be reached has a cluster client reload its view before the
// error is returned; one Redis refuses (WRONGTYPE) does not.
func TestPublishRefreshesOnTopologyErrors(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	down := &reloading{Client: redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})}
	defer down.Close()
	for _, opts := range [][]producer.Option{nil, {producer.WithoutCoalescing()}} {
		p, err := producer.New[event](down, "s", opts...)
		if err != nil {
			t.Fatal(err)
		}
		before := down.reloads.Load()
		_, err = p.Publish(ctx, event{UserID: "1", Action: "a"})
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Fatalf("Publish to nowhere: %v", err)
		}
		if n := down.reloads.Load() - before; n != 1 {
			t.Fatalf("Publish (%d options): %d reloads, want 1", len(opts), n)
		}
		before = down.reloads.Load()
		if _, err := p.PublishBatch(ctx, []event{{UserID: "1"}, {UserID: "2"}}); err == nil {
			t.Fatal("PublishBatch to nowhere succeeded")
		}
		if n := down.reloads.Load() - before; n < 1 {
			t.Fatal("PublishBatch: no reload")
		}
	}

	c, _ := newClient(t)
	c.Set(ctx, "str", "x", 0)
	up := &reloading{Client: c}
	p, err := producer.New[event](up, "str")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, event{UserID: "1"}); !redis.HasErrorPrefix(err, "WRONGTYPE") {
		t.Fatalf("Publish to a string key: %v", err)
	}
	if n := up.reloads.Load(); n != 0 {
		t.Fatalf("%d reloads after a WRONGTYPE", n)
	}
}
