package trim_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream/trim"
)

// reply is an error reply as go-redis hands it over.
type reply string

func (e reply) Error() string { return string(e) }
func (reply) RedisError()     {}

// failScripts makes the trim script fail with the error fail returns for
// its stream (nil: run it), counting the attempts.
type failScripts struct {
	attempts atomic.Int64
	fail     func(stream string) error
}

func (h *failScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.attempts.Add(1)
			if err := h.fail(fmt.Sprint(cmd.Args()[3])); err != nil { // EVALSHA sha 1 stream ...
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// reloading is a client with a cluster client's ReloadState, counted.
type reloading struct {
	*redis.Client
	reloads atomic.Int64
}

func (c *reloading) ReloadState(context.Context) { c.reloads.Add(1) }

// runUntil runs tr until cond holds (or a minute passes), then stops it and
// checks that Run returned nil.
func runUntil(t *testing.T, tr *trim.Trimmer, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run returned %v before %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no %s after a minute (stats %+v)", what, tr.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestTrimmerBacksOffTransientErrors: while the server answers LOADING,
// the Trimmer retries with a growing backoff, not every 1ms interval, and
// never gives up; it trims once the server is back.
func TestTrimmerBacksOffTransientErrors(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	c, mr := newClient(t)
	add(t, c, "s", seq(1, 20)...)
	var failing atomic.Bool
	failing.Store(true)
	hook := &failScripts{fail: func(string) error {
		if failing.Load() {
			return reply("LOADING Redis is loading the dataset in memory")
		}
		return nil
	}}
	c.AddHook(hook)
	tr, err := trim.New(c, trim.Policy{MaxLen: 5}, trim.WithStreams("s"), trim.WithInterval(time.Millisecond), trim.WithJitter(0))
	if err != nil {
		t.Fatal(err)
	}
	var window int64
	runUntil(t, tr, "trimming after the server is back", func() bool {
		if failing.Load() && tr.Stats().Ticks > 0 {
			time.Sleep(time.Second)
			window = hook.attempts.Load()
			failing.Store(false)
		}
		return tr.Stats().Trimmed == 15
	})
	// Backoff 25–50ms, then 50–100ms, 100–200ms, 200–400ms, 400–800ms:
	// at most 6 attempts in a second, against a thousand without it.
	if window < 2 || window > 8 {
		t.Fatalf("%d attempts in a second of LOADING", window)
	}
	c.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}

// TestTrimmerRefreshesOnTopologyErrors: a closed client (a cluster's node
// client after its node left) makes the Trimmer reload the client's view
// of the cluster, then retry; it heals once commands go through again.
func TestTrimmerRefreshesOnTopologyErrors(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	c, mr := newClient(t)
	add(t, c, "s", seq(1, 20)...)
	var left atomic.Int64
	left.Store(3)
	c.AddHook(&failScripts{fail: func(string) error {
		if left.Add(-1) >= 0 {
			return redis.ErrClosed
		}
		return nil
	}})
	rc := &reloading{Client: c}
	var reported atomic.Int64
	tr, err := trim.New(rc, trim.Policy{MaxLen: 5}, trim.WithStreams("s"), trim.WithInterval(time.Millisecond),
		trim.WithReport(func(_ trim.Result, err error) {
			if errors.Is(err, redis.ErrClosed) {
				reported.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, tr, "trimming", func() bool { return tr.Stats().Trimmed == 15 })
	if n := rc.reloads.Load(); n != 3 || reported.Load() != 3 {
		t.Fatalf("%d reloads, %d errors reported; want 3 each", n, reported.Load())
	}
	c.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}

// failScan makes the first n SCAN calls fail with redis.ErrClosed.
type failScan struct{ left atomic.Int64 }

func (h *failScan) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failScan) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failScan) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "scan" && h.left.Add(-1) >= 0 {
			cmd.SetErr(redis.ErrClosed)
			return redis.ErrClosed
		}
		return next(ctx, cmd)
	}
}

// TestTrimmerReportsFailedScans: a SCAN for the pattern that fails (a
// cluster node that died) is reported with a zero Result, and the client's
// view is reloaded; the Trimmer goes on and trims.
func TestTrimmerReportsFailedScans(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	c, mr := newClient(t)
	add(t, c, "s:1", seq(1, 20)...)
	hook := &failScan{}
	hook.left.Store(2)
	c.AddHook(hook)
	rc := &reloading{Client: c}
	var reported atomic.Int64
	tr, err := trim.New(rc, trim.Policy{MaxLen: 5}, trim.WithPattern("s:*"), trim.WithInterval(time.Millisecond),
		trim.WithReport(func(r trim.Result, err error) {
			if errors.Is(err, redis.ErrClosed) && r.Stream == "" {
				reported.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, tr, "trimming", func() bool { return tr.Stats().Trimmed == 15 })
	if n := rc.reloads.Load(); n != 2 || reported.Load() != 2 {
		t.Fatalf("%d reloads, %d failed scans reported; want 2 each", n, reported.Load())
	}
	c.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}
