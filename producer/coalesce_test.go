package producer_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/producer"
)

// gate is a go-redis hook that holds single commands until released and
// counts pipelines.
type gate struct {
	held      chan struct{} // receives when a command is held
	release   chan struct{}
	pipelines atomic.Int64
	piped     atomic.Int64
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xadd" {
			g.held <- struct{}{}
			<-g.release
		}
		return next(ctx, cmd)
	}
}

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "xadd" { // go-redis pipelines its own connection setup
			g.pipelines.Add(1)
			g.piped.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

func TestCoalescedPublish(t *testing.T) {
	c, _ := newClient(t)
	g := &gate{held: make(chan struct{}, 2), release: make(chan struct{})}
	c.AddHook(g)
	p, err := producer.New[map[string]string](c, "s")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The first two calls go out alone, at once (two flights); they are
	// held in flight.
	first := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := p.Publish(ctx, map[string]string{"n": "0"})
			first <- err
		}()
		<-g.held
	}

	// Calls arriving meanwhile queue up; one gives up on its ctx.
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() {
		_, err := p.Publish(cctx, map[string]string{"n": "cancelled"})
		cancelled <- err
	}()
	var wg sync.WaitGroup
	ids := make([]string, 9)
	errs := make([]error, 9)
	for i := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = p.Publish(ctx, map[string]string{"n": "queued"})
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them queue
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish whose ctx ended while queued: %v", err)
	}
	close(g.release)
	for range 2 {
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || ids[i] == "" {
			t.Fatalf("queued Publish %d: %q %v", i, ids[i], err)
		}
	}
	// The queued calls went out together, without the cancelled one.
	if g.pipelines.Load() != 1 || g.piped.Load() != 9 {
		t.Fatalf("%d pipelines carrying %d commands, want 1 carrying the 9 queued calls", g.pipelines.Load(), g.piped.Load())
	}
	for _, m := range c.XRange(ctx, "s", "-", "+").Val() {
		if m.Values["n"] == "cancelled" {
			t.Fatal("a call whose ctx ended while queued was sent")
		}
	}
	// A lone call afterwards goes out alone again.
	g.held = make(chan struct{}, 1)
	if _, err := p.Publish(ctx, map[string]string{"n": "alone"}); err != nil {
		t.Fatal(err)
	}
	if g.pipelines.Load() != 1 {
		t.Fatal("a lone Publish waited for a pipeline")
	}
}

func TestWithoutCoalescing(t *testing.T) {
	c, _ := newClient(t)
	g := &gate{held: make(chan struct{}, 100), release: make(chan struct{})}
	close(g.release)
	c.AddHook(g)
	p, err := producer.New[map[string]string](c, "s", producer.WithoutCoalescing())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Publish(context.Background(), map[string]string{"k": "v"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if g.pipelines.Load() != 0 {
		t.Fatalf("%d pipelines without coalescing", g.pipelines.Load())
	}
}
