package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/internal/keys"
)

type ctxKey struct{}

func message(id string, fields map[string]string) *consumer.Message {
	m := consumer.NewMessage(midstream.Entry{Stream: "jobs", ID: id, Fields: fields})
	m.Group, m.Consumer = "workers", "worker-1"
	return m
}

func TestHandlerFunc(t *testing.T) {
	want := errors.New("failed")
	m := message("1-0", map[string]string{"n": "1"})
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	var got *consumer.Message
	var gotCtx context.Context
	var h consumer.Handler = consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		gotCtx, got = ctx, m
		return want
	})
	if err := h.Handle(ctx, m); err != want {
		t.Fatalf("Handle returned %v, want %v", err, want)
	}
	if got != m || gotCtx.Value(ctxKey{}) != "v" {
		t.Fatalf("the function got message %p and ctx %v, want %p and the caller's ctx", got, gotCtx, m)
	}
}

func TestChain(t *testing.T) {
	var calls []string
	record := func(name string) consumer.Middleware {
		return func(next consumer.Handler) consumer.Handler {
			return consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
				calls = append(calls, name+" before")
				err := next.Handle(ctx, m)
				calls = append(calls, fmt.Sprintf("%s after: %v", name, err))
				return err
			})
		}
	}
	inner := errors.New("inner")
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		calls = append(calls, "handler "+m.ID)
		return inner
	})

	err := consumer.Chain(h, record("a"), record("b"), record("c")).Handle(context.Background(), message("1-0", nil))
	if err != inner {
		t.Fatalf("chain returned %v, want the handler's error", err)
	}
	want := []string{
		"a before", "b before", "c before",
		"handler 1-0",
		"c after: inner", "b after: inner", "a after: inner",
	}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}

	// Without middleware, Chain is the handler itself.
	calls = nil
	if err := consumer.Chain(h).Handle(context.Background(), message("2-0", nil)); err != inner {
		t.Fatalf("Chain(h) returned %v", err)
	}
	if !slices.Equal(calls, []string{"handler 2-0"}) {
		t.Fatalf("Chain(h) calls: %q", calls)
	}
}

func TestChainShortCircuit(t *testing.T) {
	refused := errors.New("refused")
	deny := func(consumer.Handler) consumer.Handler {
		return consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return refused })
	}
	called := false
	h := consumer.HandlerFunc(func(context.Context, *consumer.Message) error { called = true; return nil })
	if err := consumer.Chain(h, deny).Handle(context.Background(), message("1-0", nil)); err != refused || called {
		t.Fatalf("err %v, handler called %v: want %v and not called", err, called, refused)
	}
}

type order struct {
	ID        string    `redis:"id"`
	Amount    float64   `redis:"amount"`
	Paid      bool      `redis:"paid"`
	At        time.Time `redis:"at,unixms"`
	Note      *string   `redis:"note"`
	Tags      []byte    `redis:"tags"`
	Skip      string    `redis:"-"`
	orderMeta           // embedded: flattened
}

type orderMeta struct {
	Tenant string `redis:"tenant"`
}

func TestTyped(t *testing.T) {
	m := message("1-0", map[string]string{
		"id": "o-1", "amount": "9.99", "paid": "true", "at": "1710761234567", "tags": "a,b",
		"tenant": "acme", "Skip": "ignored", "extra": "ignored", "traceparent": "00-x",
	})
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	var got order
	var gotMsg *consumer.Message
	h := consumer.Typed(func(ctx context.Context, o order, m *consumer.Message) error {
		if ctx.Value(ctxKey{}) != "v" {
			t.Error("typed handler did not get the caller's ctx")
		}
		got, gotMsg = o, m
		return nil
	})
	if err := h.Handle(ctx, m); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := order{ID: "o-1", Amount: 9.99, Paid: true, At: time.UnixMilli(1710761234567).UTC(), Tags: []byte("a,b"), orderMeta: orderMeta{Tenant: "acme"}}
	if got.ID != want.ID || got.Amount != want.Amount || got.Paid != want.Paid || !got.At.Equal(want.At) ||
		got.Note != nil || string(got.Tags) != string(want.Tags) || got.Skip != "" || got.Tenant != want.Tenant {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if gotMsg != m {
		t.Fatalf("typed handler got message %p, want %p", gotMsg, m)
	}
}

func TestTypedPassesErrorsThrough(t *testing.T) {
	want := errors.New("business failure")
	h := consumer.Typed(func(context.Context, map[string]string, *consumer.Message) error { return want })
	if err := h.Handle(context.Background(), message("1-0", map[string]string{"k": "v"})); err != want {
		t.Fatalf("Handle: %v, want %v", err, want)
	}
}

func TestTypedPointerAndMap(t *testing.T) {
	var p *job
	hp := consumer.Typed(func(_ context.Context, j *job, _ *consumer.Message) error { p = j; return nil })
	if err := hp.Handle(context.Background(), message("1-0", map[string]string{"n": "7"})); err != nil || p == nil || p.N != 7 {
		t.Fatalf("pointer: err %v value %+v, want N 7", err, p)
	}
	var got map[string]string
	hm := consumer.Typed(func(_ context.Context, f map[string]string, _ *consumer.Message) error { got = f; return nil })
	m := message("1-0", map[string]string{"n": "7", "header:tenant": "acme"})
	if err := hm.Handle(context.Background(), m); err != nil || len(got) != 1 || got["n"] != "7" {
		t.Fatalf("map: err %v value %v, want only n=7", err, got)
	}
}

func TestTypedDecodeError(t *testing.T) {
	type strict struct {
		N      int    `redis:"n"`
		Tenant string `redis:"tenant,required"`
	}
	tests := []struct {
		name   string
		fields map[string]string
		field  string
		cause  error // besides ErrDecode; nil to skip
	}{
		{"not a number", map[string]string{"n": "two", "tenant": "acme"}, "n", nil},
		{"missing required", map[string]string{"n": "2"}, "tenant", midstream.ErrMissingField},
		{"no fields", map[string]string{}, "tenant", midstream.ErrMissingField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := consumer.Typed(func(context.Context, strict, *consumer.Message) error {
				called = true
				return nil
			})
			err := h.Handle(context.Background(), message("1-0", tt.fields))
			if called {
				t.Fatal("fn was called for an entry that does not decode")
			}
			var de *midstream.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, midstream.ErrDecode) {
				t.Fatalf("Handle: %v (%T), want a *midstream.DecodeError wrapping ErrDecode", err, err)
			}
			if de.Field != tt.field {
				t.Errorf("DecodeError.Field = %q, want %q", de.Field, tt.field)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("Handle: %v, want it to wrap %v", err, tt.cause)
			}
		})
	}
}

func TestTypedCodec(t *testing.T) {
	var got []int
	h := consumer.TypedCodec(midstream.JSONCodec[[]int]{Field: "payload"}, func(_ context.Context, v []int, _ *consumer.Message) error {
		got = v
		return nil
	})
	if err := h.Handle(context.Background(), message("1-0", map[string]string{"payload": "[1,2,3]"})); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("decoded %v", got)
	}
	called := false
	h = consumer.TypedCodec(midstream.JSONCodec[[]int]{}, func(context.Context, []int, *consumer.Message) error { called = true; return nil })
	err := h.Handle(context.Background(), message("2-0", map[string]string{"data": "[1,"}))
	if !errors.Is(err, midstream.ErrDecode) || called {
		t.Fatalf("bad JSON: err %v, fn called %v: want ErrDecode and not called", err, called)
	}
}

func TestPanicError(t *testing.T) {
	cause := errors.New("nil map write")
	tests := []struct {
		value  any
		text   string
		unwrap error
	}{
		{"boom", "consumer: handler panicked: boom", nil},
		{42, "consumer: handler panicked: 42", nil},
		{cause, "consumer: handler panicked: nil map write", cause},
		{fmt.Errorf("wrapped: %w", cause), "consumer: handler panicked: wrapped: nil map write", cause},
	}
	for _, tt := range tests {
		pe := &consumer.PanicError{Value: tt.value, Stack: []byte("stack")}
		if pe.Error() != tt.text {
			t.Errorf("Error() = %q, want %q", pe.Error(), tt.text)
		}
		if tt.unwrap == nil {
			if pe.Unwrap() != nil {
				t.Errorf("panic value %v: Unwrap() = %v, want nil", tt.value, pe.Unwrap())
			}
			continue
		}
		if pe.Unwrap() != tt.value {
			t.Errorf("Unwrap() = %v, want the panic value %v", pe.Unwrap(), tt.value)
		}
		if !errors.Is(pe, tt.unwrap) {
			t.Errorf("errors.Is(%v, %v) = false", pe, tt.unwrap)
		}
	}
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runInBackground starts c.Run and returns a stop function that cancels it
// and returns Run's error.
func runInBackground(t *testing.T, c *consumer.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

func publish(t *testing.T, rdb *redis.Client, stream string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []string{"n", strconv.Itoa(i)}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestRunRecoversPanic runs a consumer against miniredis: a panicking
// handler counts as a failure, its entry stays pending (handed to
// RetryOwner for its retry), the others are
// acknowledged at shutdown at the latest, and Run stops cleanly without
// leaking goroutines.
func TestRunRecoversPanic(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	ids := publish(t, rdb, "jobs", 3)

	var mu sync.Mutex
	seen := map[string]*consumer.Message{}
	var logs syncBuffer
	c, err := consumer.New(rdb, "jobs", "workers", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		mu.Lock()
		seen[m.ID] = m
		mu.Unlock()
		if m.Field("n") == "1" {
			panic("boom")
		}
		return nil
	}),
		consumer.WithStart(consumer.StartBeginning),
		consumer.WithBlock(50*time.Millisecond),
		consumer.WithName("worker-1"),
		consumer.WithAcks(consumer.DefaultAckBatch, time.Hour), // acks wait for the shutdown
		consumer.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, c)
	waitFor(t, 10*time.Second, "three handler calls", func() bool { s := c.Stats(); return s.Handled+s.Failed == 3 })
	if s := c.Stats(); s.Acked != 0 {
		t.Errorf("%d acked before the batch or interval was reached", s.Acked)
	}
	// A second Run while the first runs is refused.
	if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}

	if s := c.Stats(); s != (consumer.Stats{Handled: 2, Failed: 1, Acked: 2, Retried: 1}) {
		t.Errorf("stats %+v, want 2 handled and acked, 1 failed", s)
	}
	for i, id := range ids {
		m := seen[id]
		if m == nil {
			t.Errorf("entry %s not handled", id)
			continue
		}
		if m.Stream != "jobs" || m.Group != "workers" || m.Consumer != "worker-1" || m.Deliveries != 1 || m.Field("n") != strconv.Itoa(i) {
			t.Errorf("message %+v", m)
		}
	}
	pend, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: "jobs", Group: "workers", Start: "-", End: "+", Count: 10}).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The failed entry waits for its retry under RetryOwner.
	if len(pend) != 1 || pend[0].ID != ids[1] || pend[0].Consumer != consumer.RetryOwner {
		t.Errorf("pending %+v, want only %s, owned by %s", pend, ids[1], consumer.RetryOwner)
	}
	for _, want := range []string{"level=WARN", "id=" + ids[1], "consumer: handler panicked: boom", "stack="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}

	// Every goroutine Run started has exited. The client's and miniredis's
	// own goroutines end with them.
	_ = rdb.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}

// TestRunAcksByCount: a full ack batch is sent without waiting for the
// interval.
func TestRunAcksByCount(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	publish(t, rdb, "jobs", 4)
	c, err := consumer.New(rdb, "jobs", "workers", nopHandler(),
		consumer.WithStart(consumer.StartBeginning),
		consumer.WithBlock(50*time.Millisecond),
		consumer.WithAcks(2, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, c)
	waitFor(t, 10*time.Second, "a batch of acks", func() bool { return c.Stats().Acked >= 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s != (consumer.Stats{Handled: 4, Acked: 4}) {
		t.Fatalf("stats %+v, want 4 handled and acked", s)
	}
	if n := rdb.XPending(context.Background(), "jobs", "workers").Val(); n == nil || n.Count != 0 {
		t.Fatalf("XPENDING %+v, want none pending", n)
	}
}

// TestShutdownWithManySmallBatches: more batches in flight than workers
// (entries arriving one at a time while every handler is busy) must not
// block the read loop, so a shutdown still starts and cancels the handlers
// at its timeout.
func TestShutdownWithManySmallBatches(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	var started atomic.Int64
	c, err := consumer.New(rdb, "jobs", "workers", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		started.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}),
		consumer.WithConcurrency(2),
		consumer.WithBlock(20*time.Millisecond),
		consumer.WithShutdownTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, c)
	waitFor(t, 10*time.Second, "group created", func() bool { return mr.Exists("jobs") })
	for i := range 6 {
		publish(t, rdb, "jobs", 1)
		if i < 5 {
			time.Sleep(50 * time.Millisecond) // one entry per read
		}
	}
	waitFor(t, 10*time.Second, "both workers busy", func() bool { return started.Load() == 2 })
	if err := stop(); err != nil { // fails the test if Run never returns
		t.Fatal(err)
	}
	if s := c.Stats(); s.Failed < 2 || s.Handled != 0 {
		t.Fatalf("stats %+v: want the busy handlers cancelled and failed", s)
	}
}

// TestExponentialRetry: the policy doubles from first to its limit, with
// a jitter of up to a fifth on top, never below the delay.
func TestExponentialRetry(t *testing.T) {
	p := consumer.ExponentialRetry(time.Second, 5*time.Second)
	for _, tc := range []struct {
		n    int64
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 5 * time.Second}, {100, 5 * time.Second}} {
		for range 20 {
			if got := p(tc.n, nil); got < tc.want || got > tc.want+tc.want/5 {
				t.Fatalf("delay after %d deliveries = %v, want within [%v, %v]", tc.n, got, tc.want, tc.want+tc.want/5)
			}
		}
	}
	if got := consumer.ExponentialRetry(0, 0)(3, nil); got != 0 {
		t.Errorf("zero policy = %v, want 0", got)
	}
}

// TestRetryAfterError: RetryAfter keeps the handler's error reachable and
// says when to come back; a nil error becomes ErrRetry.
func TestRetryAfterError(t *testing.T) {
	cause := errors.New("rate limited")
	err := consumer.RetryAfter(cause, time.Minute)
	var ra *consumer.RetryAfterError
	if !errors.Is(err, cause) || !errors.As(err, &ra) || ra.Delay != time.Minute {
		t.Fatalf("RetryAfter = %v", err)
	}
	if err.Error() != "rate limited (retry after 1m0s)" {
		t.Errorf("Error() = %q", err.Error())
	}
	if err := consumer.RetryAfter(nil, time.Second); !errors.Is(err, consumer.ErrRetry) {
		t.Errorf("RetryAfter(nil) = %v, want ErrRetry", err)
	}
	te := &consumer.TimeoutError{After: 2 * time.Second, Err: context.DeadlineExceeded}
	if !errors.Is(te, context.DeadlineExceeded) || te.Error() != "consumer: handler timed out after 2s: context deadline exceeded" {
		t.Errorf("TimeoutError = %q", te.Error())
	}
}

// TestRetryKeySlot: the retry schedule is in its stream's cluster slot,
// whatever the stream's name.
func TestRetryKeySlot(t *testing.T) {
	for _, stream := range []string{"{orders}", "orders", "shop:{orders}:v2", "a}b", "x{}", "{}y"} {
		k := consumer.RetryKey(stream, "g")
		if keys.Slot(k) != keys.Slot(stream) || !strings.Contains(k, ":midstream:retry:g") {
			t.Errorf("RetryKey(%q) = %q, not in its slot", stream, k)
		}
	}
	if k := consumer.RetryKey("{orders}", "billing"); k != "{orders}:midstream:retry:billing" {
		t.Errorf("RetryKey = %q", k)
	}
}
