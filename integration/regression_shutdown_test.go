package integration

import (
	"context"
	"testing"
	"time"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestShutdownCancelDoesNotDeadLetter: a handler interrupted by a shutdown
// (its ctx cancelled after the grace period) on its last allowed delivery is
// not dead-lettered: the entry stays pending.
func TestShutdownCancelDoesNotDeadLetter(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("sc"), "g"
	publishN(t, srv.Client, stream, 0, 1)
	started := make(chan struct{}, 1)
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		started <- struct{}{}
		<-ctx.Done() // long work, cooperative cancellation
		return ctx.Err()
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithMaxDeliveries(1), consumer.WithShutdownTimeout(100*time.Millisecond))
	stop := runConsumer(t, c)
	<-started
	_ = stop()
	q, _ := deadletter.New(srv.Client, stream)
	n, _ := q.Count(ctx)
	t.Logf("stats %+v; dlq %d; pending %d", c.Stats(), n, pendingCount(t, srv.Client, stream, group))
	if n != 0 {
		t.Errorf("entry interrupted by shutdown was dead-lettered")
	}
	if p := pendingCount(t, srv.Client, stream, group); p != 1 {
		t.Errorf("%d pending, want the interrupted entry", p)
	}
}
