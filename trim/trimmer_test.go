package trim_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
	"github.com/midstream-go/midstream/trim"
)

func TestNewOptions(t *testing.T) {
	c, _ := newClient(t)
	ok := trim.Policy{MaxLen: 10}
	cases := []struct {
		name   string
		policy trim.Policy
		opts   []trim.Option
		err    error
	}{
		{"streams", ok, []trim.Option{trim.WithStreams("a", "b")}, nil},
		{"pattern", ok, []trim.Option{trim.WithPattern("orders:*")}, nil},
		{"everything", ok, []trim.Option{
			trim.WithStreams("a"), trim.WithPattern("b*"), trim.WithInterval(time.Minute), trim.WithJitter(0),
			trim.WithMaxStreamsPerTick(5), trim.WithMaxPasses(2), trim.WithReport(func(trim.Result, error) {}),
		}, nil},
		{"no streams", ok, nil, midstream.ErrInvalidOption},
		{"bad policy", trim.Policy{}, []trim.Option{trim.WithStreams("a")}, midstream.ErrInvalidOption},
		{"empty stream name", ok, []trim.Option{trim.WithStreams("")}, midstream.ErrInvalidStream},
		{"partitioned streams", ok, []trim.Option{trim.WithPartitioned("orders", "events")}, nil},
		{"empty partitioned stream name", ok, []trim.Option{trim.WithPartitioned("")}, midstream.ErrInvalidStream},
		{"empty pattern is no pattern", ok, []trim.Option{trim.WithPattern("")}, midstream.ErrInvalidOption},
		{"newline in pattern", ok, []trim.Option{trim.WithPattern("orders:*\n")}, midstream.ErrInvalidOption},
		{"zeros are the defaults", ok, []trim.Option{trim.WithStreams("a"), trim.WithPattern(""), trim.WithInterval(0),
			trim.WithMaxStreamsPerTick(0), trim.WithMaxPasses(0)}, nil},
		{"every max", ok, []trim.Option{trim.WithStreams("a"), trim.WithInterval(trim.MaxInterval), trim.WithJitter(trim.MaxJitter),
			trim.WithMaxStreamsPerTick(trim.MaxStreamsPerTick), trim.WithMaxPasses(trim.MaxPasses)}, nil},
		{"negative interval", ok, []trim.Option{trim.WithStreams("a"), trim.WithInterval(-1)}, midstream.ErrInvalidOption},
		{"interval under 1ms", ok, []trim.Option{trim.WithStreams("a"), trim.WithInterval(time.Microsecond)}, midstream.ErrInvalidOption},
		{"interval above max", ok, []trim.Option{trim.WithStreams("a"), trim.WithInterval(trim.MaxInterval + 1)}, midstream.ErrInvalidOption},
		{"interval MaxInt64", ok, []trim.Option{trim.WithStreams("a"), trim.WithInterval(math.MaxInt64)}, midstream.ErrInvalidOption},
		{"negative jitter", ok, []trim.Option{trim.WithStreams("a"), trim.WithJitter(-time.Second)}, midstream.ErrInvalidOption},
		{"jitter above max", ok, []trim.Option{trim.WithStreams("a"), trim.WithJitter(trim.MaxJitter + 1)}, midstream.ErrInvalidOption},
		{"jitter MaxInt64", ok, []trim.Option{trim.WithStreams("a"), trim.WithJitter(math.MaxInt64)}, midstream.ErrInvalidOption},
		{"negative streams per tick", ok, []trim.Option{trim.WithStreams("a"), trim.WithMaxStreamsPerTick(-1)}, midstream.ErrInvalidOption},
		{"streams per tick above max", ok, []trim.Option{trim.WithStreams("a"), trim.WithMaxStreamsPerTick(trim.MaxStreamsPerTick + 1)}, midstream.ErrInvalidOption},
		{"streams per tick MaxInt", ok, []trim.Option{trim.WithStreams("a"), trim.WithMaxStreamsPerTick(math.MaxInt)}, midstream.ErrInvalidOption},
		{"negative passes", ok, []trim.Option{trim.WithStreams("a"), trim.WithMaxPasses(-1)}, midstream.ErrInvalidOption},
		{"passes above max", ok, []trim.Option{trim.WithStreams("a"), trim.WithMaxPasses(trim.MaxPasses + 1)}, midstream.ErrInvalidOption},
		{"passes 1e9", ok, []trim.Option{trim.WithStreams("a"), trim.WithMaxPasses(1e9)}, midstream.ErrInvalidOption},
		{"nil meter provider", ok, []trim.Option{trim.WithStreams("a"), trim.WithMeterProvider(nil)}, midstream.ErrInvalidOption},
		{"nil logger", ok, []trim.Option{trim.WithStreams("a"), trim.WithLogger(nil)}, midstream.ErrInvalidOption},
		{"nil report", ok, []trim.Option{trim.WithStreams("a"), trim.WithReport(nil)}, midstream.ErrInvalidOption},
		{"nil option", ok, []trim.Option{trim.WithStreams("a"), nil}, midstream.ErrInvalidOption},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := trim.New(c, tc.policy, tc.opts...)
			if tc.err == nil {
				if err != nil || tr == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) || !errors.Is(err, midstream.ErrInvalidOption) {
				t.Fatalf("New: %v, want %v (and ErrInvalidOption)", err, tc.err)
			}
		})
	}
	if _, err := trim.New(nil, ok, trim.WithStreams("a")); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
}

// TestTrimmerRun: ticks visit every stream, a bounded number per tick,
// repeat passes while they stop at the work limit, and Run returns on
// cancellation with nothing left running.
func TestTrimmerRun(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	c, mr := newClient(t)
	ctx := context.Background()
	var names []string
	for i := range 7 {
		s := fmt.Sprintf("named:%d", i)
		add(t, c, s, seq(1, 50)...)
		names = append(names, s)
	}
	for i := range 5 {
		add(t, c, fmt.Sprintf("found:%d", i), seq(1, 50)...)
	}
	c.Set(ctx, "found:string", "x", 0)
	var mu sync.Mutex
	passes := map[string]int{}
	reader := sdkmetric.NewManualReader()
	tr, err := trim.New(c, trim.Policy{MaxLen: 10, Limit: 15},
		trim.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		trim.WithStreams(names...), trim.WithStreams(names[0]), trim.WithPattern("found:*"),
		trim.WithInterval(time.Millisecond), trim.WithMaxStreamsPerTick(3), trim.WithMaxPasses(2),
		trim.WithReport(func(r trim.Result, err error) {
			if err != nil {
				t.Errorf("%s: %v", r.Stream, err)
			}
			mu.Lock()
			passes[r.Stream]++
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(rctx) }()
	deadline := time.Now().Add(time.Minute)
	for tr.Stats().Trimmed < 12*40 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", tr.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if err := tr.Run(ctx); !errors.Is(err, trim.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := tr.Stats()
	if s.Trimmed != 12*40 || s.Errors != 0 || s.Ticks < 3 {
		t.Fatalf("stats %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if passes["found:string"] != 0 {
		t.Fatal("visited a string key")
	}
	for s, n := range passes {
		if n < 3 { // 40 to trim at 15 per pass, 2 passes per tick
			t.Errorf("%s: %d passes", s, n)
		}
	}
	if len(passes) != 12 {
		t.Fatalf("visited %d streams, want 12: %v", len(passes), passes)
	}
	// The trimmed counter agrees with the stats.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var counted int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "midstream.trim.trimmed" {
				for _, dp := range sum.DataPoints {
					counted += dp.Value
				}
			}
		}
	}
	if counted != s.Trimmed {
		t.Fatalf("midstream.trim.trimmed counted %d, stats say %d", counted, s.Trimmed)
	}
	// It runs again after returning.
	rctx, cancel = context.WithCancel(ctx)
	go func() { done <- tr.Run(rctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Every goroutine Run started has exited; the client's and miniredis's
	// own end with them.
	c.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}

// TestTrimmerConfigErrorEndsRun: a pass Redis refuses in a way retrying
// cannot fix (WRONGTYPE on a named key) is reported, counted and retried
// with a backoff; once it failed rediserr.ConfigAttempts times in a row, Run
// returns an error wrapping midstream.ErrMisconfigured and the Redis error.
// Other streams are trimmed meanwhile.
func TestTrimmerConfigErrorEndsRun(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	c, mr := newClient(t)
	add(t, c, "str", "1-0")
	add(t, c, "ok", seq(1, 20)...)
	// Redis 7.0's reply to the script on a string key. (miniredis wraps
	// it in "ERR Error compiling script", which Redis does not.)
	c.AddHook(&failScripts{fail: func(stream string) error {
		if stream == "str" {
			return reply("WRONGTYPE Operation against a key holding the wrong kind of value script: 3fb707d4e68bf3674786a71dd5c75b61e6d9ef5f, on @user_script:57.")
		}
		return nil
	}})
	var mu sync.Mutex
	var errs []error
	tr, err := trim.New(c, trim.Policy{MaxLen: 1}, trim.WithStreams("str", "ok"), trim.WithInterval(time.Millisecond),
		trim.WithReport(func(_ trim.Result, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = tr.Run(ctx)
	if !errors.Is(err, midstream.ErrMisconfigured) || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		t.Fatalf("Run: %v, want an error wrapping ErrMisconfigured and WRONGTYPE", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when its ctx ended")
	}
	mu.Lock()
	n := len(errs)
	mu.Unlock()
	if s := tr.Stats(); n != rediserr.ConfigAttempts || s.Errors != int64(n) {
		t.Fatalf("%d errors reported, stats %+v; want %d", n, s, rediserr.ConfigAttempts)
	}
	if got := left(t, c, "ok"); len(got) != 1 {
		t.Fatalf("the other stream was not trimmed: %v", got)
	}
	c.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}
