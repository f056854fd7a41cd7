package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
)

// commandCalls returns how many times Redis ran cmd (INFO commandstats), on
// all masters of a cluster.
func commandCalls(t *testing.T, rdb redis.UniversalClient, cmd string) int {
	t.Helper()
	ctx := context.Background()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			n := commandCalls(t, m, cmd)
			mu.Lock()
			total += n
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return total
	}
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		return n
	}
	return 0
}

// TestAuditWithoutRoomIsNotAHotLoop: a predecessor under the same name left
// more pending entries than the in-flight bound and handlers are slow. The
// audit has no room for them; it must wait for its next interval, not run
// again at once (an early version of the audit made 17,000 XPENDING calls
// in 3 s here).
func TestAuditWithoutRoomIsNotAHotLoop(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("backlog"), "g"
	createGroup(t, srv.Client, stream, group)
	publishN(t, srv.Client, stream, 0, 20)
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "fixed", Streams: []string{stream, ">"}, Count: 20, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}), consumer.WithName("fixed"), consumer.WithConcurrency(1), consumer.WithMaxInFlight(1), consumer.WithBatchSize(1), consumer.WithoutConsumerCleanup())
	stop := runConsumer(t, c)
	time.Sleep(500 * time.Millisecond)
	before := commandCalls(t, srv.Client, "xpending")
	time.Sleep(3 * time.Second)
	calls := commandCalls(t, srv.Client, "xpending") - before
	close(release)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// One audit a second, and a reclaim pass every claim interval (5 s).
	if calls > 20 {
		t.Errorf("%d XPENDING calls in 3 s while the ledger was full: a hot loop", calls)
	}
}

// delayRead holds back, once it is armed, the first XREADGROUP reply that
// delivers entries.
type delayRead struct {
	delay time.Duration
	armed chan struct{}
	once  sync.Once
}

func (h *delayRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *delayRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *delayRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if r, ok := cmd.(*redis.XStreamSliceCmd); ok && cmd.Name() == "xreadgroup" && len(r.Val()) > 0 && len(r.Val()[0].Messages) > 0 {
			select {
			case <-h.armed:
				h.once.Do(func() { time.Sleep(h.delay) })
			default:
			}
		}
		return err
	}
}

// TestSlowReadReplyHandledOnce: a read's reply reaches the consumer 2.5 s
// after Redis delivered the entry, longer than AuditIdle and, in the second
// case, than the minimum idle time. Neither the audit nor a reclaim pass may
// take the entry meanwhile: earlier versions claimed it, handled and
// acknowledged it, and the late reply then ran it a second time in the same
// live consumer.
func TestSlowReadReplyHandledOnce(t *testing.T) {
	for name, opts := range map[string][]consumer.Option{
		"audit":   nil,
		"reclaim": {consumer.WithMinIdle(500 * time.Millisecond), consumer.WithClaimInterval(50 * time.Millisecond)},
	} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			stream, group := srv.Key("slow"), "g"
			createGroup(t, srv.Client, stream, group)
			hook := &delayRead{delay: 2500 * time.Millisecond, armed: make(chan struct{})}
			rdb := srv.NewUniversalClient()
			rdb.AddHook(hook)
			l := newLedger()
			c := newConsumer(t, rdb, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
				l.record(m.ID)
				return nil
			}), append([]consumer.Option{consumer.WithoutConsumerCleanup()}, opts...)...)
			stop := runConsumer(t, c)
			time.Sleep(300 * time.Millisecond)
			close(hook.armed)
			id := publishN(t, srv.Client, stream, 0, 1)[0]
			waitFor(t, 30*time.Second, "the entry acknowledged", func() bool { return c.Stats().Acked == 1 })
			time.Sleep(2 * time.Second) // room for a second, wrong handling
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if n := l.count(id); n != 1 {
				t.Errorf("entry handled %d times by one live consumer, want once (stats %+v)", n, c.Stats())
			}
		})
	}
}

// TestGroupRecoveryRefusedIsSurfaced: a user that may not run XGROUP CREATE
// reads a group that does not exist. Recreating it is refused every time:
// Run must return an error wrapping midstream.ErrMisconfigured (before, the
// NOPERM was only logged, the read's NOGROUP reset the count, and Run never
// returned).
func TestGroupRecoveryRefusedIsSurfaced(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	if err := srv.Client.Do(ctx, "ACL", "SETUSER", "nocreate", "on", ">pw", "~*", "&*", "+@all", "-xgroup|create").Err(); err != nil {
		t.Fatal(err)
	}
	stream := srv.Key("nogroup")
	publishN(t, srv.Client, stream, 0, 1)
	rdb := srv.NewClient(func(o *redis.Options) { o.Username, o.Password = "nocreate", "pw" })
	c := newConsumer(t, rdb, stream, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }))
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := c.Run(rctx)
	if !errors.Is(err, midstream.ErrMisconfigured) || !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("Run: %v, want a NOPERM error wrapping ErrMisconfigured", err)
	}
}
