package live_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/live"
)

// reloadCounter is a client whose pub/sub goes to a server of its own and
// that counts the calls to ReloadState, as a *redis.ClusterClient has it:
// the channel's node and the stream's may differ on a cluster.
type reloadCounter struct {
	*redis.Client
	pubsub  *redis.Client
	reloads atomic.Int64
}

func (c *reloadCounter) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.pubsub.Subscribe(ctx, channels...)
}

func (c *reloadCounter) ReloadState(context.Context) { c.reloads.Add(1) }

// TestLiveRefreshesAfterPubSubFails: when the node of the channel goes away
// (a master killed), the subscription has the client reload its view of
// the cluster, as every other loop does, rather than redialling the dead
// node until go-redis's own reload; the stream's node answering does not
// hide it.
func TestLiveRefreshesAfterPubSubFails(t *testing.T) {
	streamNode := miniredis.RunT(t)
	channelNode := miniredis.RunT(t)
	c := &reloadCounter{
		Client: redis.NewClient(&redis.Options{Addr: streamNode.Addr()}),
		pubsub: redis.NewClient(&redis.Options{Addr: channelNode.Addr(), MaxRetries: -1}),
	}
	t.Cleanup(func() { _ = c.Client.Close(); _ = c.pubsub.Close() })
	ctx := context.Background()
	failed := make(chan struct{}, 1)
	logger := slog.New(handlerFunc(func(r slog.Record) {
		if r.Message == "live: pub/sub failed, reconnecting" {
			select {
			case failed <- struct{}{}:
			default:
			}
		}
	}))
	sub, err := live.Subscribe(ctx, c, "s", "ch", live.Beginning, live.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	channelNode.Close()
	<-failed // the pub/sub's failure was handled (the stream's node still answers)
	if c.reloads.Load() == 0 {
		t.Fatal("the pub/sub connection failed and the client's view was not reloaded")
	}
}

// handlerFunc is a slog.Handler that passes every record to a func.
type handlerFunc func(slog.Record)

func (h handlerFunc) Enabled(context.Context, slog.Level) bool { return true }

func (h handlerFunc) Handle(_ context.Context, r slog.Record) error {
	h(r)
	return nil
}

func (h handlerFunc) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h handlerFunc) WithGroup(string) slog.Handler { return h }
