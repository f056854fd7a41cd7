package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
)

// offlineClient returns a client New can be given; nothing here connects.
func offlineClient(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func nopHandler() consumer.Handler {
	return consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil })
}

func nopMiddleware(h consumer.Handler) consumer.Handler { return h }

type job struct {
	N int `redis:"n"`
}

// newArgs are the arguments of consumer.New.
type newArgs struct {
	client redis.UniversalClient
	stream string
	group  string
	h      consumer.Handler
	opts   []consumer.Option
}

// opts returns an edit of valid arguments setting only the options.
func opts(o ...consumer.Option) func(*newArgs) {
	return func(a *newArgs) { a.opts = o }
}

// handler returns an edit of valid arguments setting only the handler.
func handler(h consumer.Handler) func(*newArgs) {
	return func(a *newArgs) { a.h = h }
}

func TestNewRejects(t *testing.T) {
	rdb := offlineClient(t)
	typedFn := func(context.Context, []int, *consumer.Message) error { return nil }
	tests := []struct {
		name string
		edit func(*newArgs) // applied to valid arguments
		want error
	}{
		{"nil client", func(a *newArgs) { a.client = nil }, midstream.ErrInvalidOption},
		{"empty stream", func(a *newArgs) { a.stream = "" }, midstream.ErrInvalidStream},
		{"newline in stream", func(a *newArgs) { a.stream = "jobs\n" }, midstream.ErrInvalidStream},
		{"NUL in stream", func(a *newArgs) { a.stream = "jo\x00bs" }, midstream.ErrInvalidStream},
		{"DEL in stream", func(a *newArgs) { a.stream = "jo\x7fbs" }, midstream.ErrInvalidStream},
		{"empty group", func(a *newArgs) { a.group = "" }, midstream.ErrInvalidOption},
		{"newline in group", func(a *newArgs) { a.group = "workers\n" }, midstream.ErrInvalidOption},
		{"NUL in group", func(a *newArgs) { a.group = "wor\x00kers" }, midstream.ErrInvalidOption},
		{"DEL in group", func(a *newArgs) { a.group = "wor\x7fkers" }, midstream.ErrInvalidOption},
		{"nil handler", handler(nil), midstream.ErrInvalidOption},
		{"nil option", opts(consumer.WithConcurrency(2), nil), midstream.ErrInvalidOption},
		{"newline in name", opts(consumer.WithName("worker-1\n")), midstream.ErrInvalidOption},
		{"tab in name", opts(consumer.WithName("worker\t1")), midstream.ErrInvalidOption},
		{"bogus start", opts(consumer.WithStart("bogus")), midstream.ErrInvalidOption},
		{"bogus start is an invalid ID", opts(consumer.WithStart("bogus")), midstream.ErrInvalidID},
		{"start >", opts(consumer.WithStart(">")), midstream.ErrInvalidOption},
		{"concurrency -1", opts(consumer.WithConcurrency(-1)), midstream.ErrInvalidOption},
		{"concurrency above max", opts(consumer.WithConcurrency(consumer.MaxConcurrency + 1)), midstream.ErrInvalidOption},
		{"concurrency 1e6", opts(consumer.WithConcurrency(1e6)), midstream.ErrInvalidOption},
		{"concurrency MaxInt", opts(consumer.WithConcurrency(math.MaxInt)), midstream.ErrInvalidOption},
		{"batch size -1", opts(consumer.WithBatchSize(-1)), midstream.ErrInvalidOption},
		{"batch size above max", opts(consumer.WithBatchSize(consumer.MaxBatchSize + 1)), midstream.ErrInvalidOption},
		{"batch size 1e9", opts(consumer.WithBatchSize(1_000_000_000)), midstream.ErrInvalidOption},
		{"batch size MaxInt", opts(consumer.WithBatchSize(math.MaxInt)), midstream.ErrInvalidOption},
		{"max in flight -1", opts(consumer.WithMaxInFlight(-1)), midstream.ErrInvalidOption},
		{"max in flight above max", opts(consumer.WithMaxInFlight(consumer.MaxInFlight + 1)), midstream.ErrInvalidOption},
		{"max in flight 1e9", opts(consumer.WithMaxInFlight(1e9)), midstream.ErrInvalidOption},
		{"max in flight MaxInt", opts(consumer.WithMaxInFlight(math.MaxInt)), midstream.ErrInvalidOption},
		{"max in flight below concurrency", opts(consumer.WithConcurrency(8), consumer.WithMaxInFlight(7)), midstream.ErrInvalidOption},
		{"max in flight below default concurrency", opts(consumer.WithMaxInFlight(consumer.DefaultConcurrency - 1)), midstream.ErrInvalidOption},
		{"block -1", opts(consumer.WithBlock(-1)), midstream.ErrInvalidOption},
		{"block under 1ms", opts(consumer.WithBlock(time.Millisecond - 1)), midstream.ErrInvalidOption},
		{"block 2m", opts(consumer.WithBlock(2 * time.Minute)), midstream.ErrInvalidOption},
		{"block just over max", opts(consumer.WithBlock(consumer.MaxBlock + time.Millisecond)), midstream.ErrInvalidOption},
		{"block MaxInt64", opts(consumer.WithBlock(math.MaxInt64)), midstream.ErrInvalidOption},
		{"handler timeout -1", opts(consumer.WithHandlerTimeout(-1)), midstream.ErrInvalidOption},
		{"shutdown timeout -1", opts(consumer.WithShutdownTimeout(-1)), midstream.ErrInvalidOption},
		{"ack batch -1", opts(consumer.WithAcks(-1, time.Millisecond)), midstream.ErrInvalidOption},
		{"ack batch above max", opts(consumer.WithAcks(consumer.MaxAckBatch+1, 0)), midstream.ErrInvalidOption},
		{"ack batch MaxInt", opts(consumer.WithAcks(math.MaxInt, 0)), midstream.ErrInvalidOption},
		{"ack interval -1", opts(consumer.WithAcks(1, -1)), midstream.ErrInvalidOption},
		{"ack interval above max", opts(consumer.WithAcks(0, consumer.MaxAckInterval+1)), midstream.ErrInvalidOption},
		{"nil logger", opts(consumer.WithLogger(nil)), midstream.ErrInvalidOption},
		{"nil middleware", opts(consumer.WithMiddleware(nil)), midstream.ErrInvalidOption},
		{"nil middleware among others", opts(consumer.WithMiddleware(nopMiddleware, nil)), midstream.ErrInvalidOption},
		{"middleware returning nil", opts(consumer.WithMiddleware(func(consumer.Handler) consumer.Handler { return nil })), midstream.ErrInvalidOption},
		{"middleware returning a nil HandlerFunc", opts(consumer.WithMiddleware(func(consumer.Handler) consumer.Handler { return consumer.HandlerFunc(nil) })), midstream.ErrInvalidOption},
		{"min idle -1", opts(consumer.WithMinIdle(-1)), midstream.ErrInvalidOption},
		{"min idle under MinMinIdle", opts(consumer.WithMinIdle(consumer.MinMinIdle - time.Millisecond)), midstream.ErrInvalidOption},
		{"min idle above max", opts(consumer.WithMinIdle(consumer.MaxMinIdle + 1)), midstream.ErrInvalidOption},
		{"claim interval -1", opts(consumer.WithClaimInterval(-1)), midstream.ErrInvalidOption},
		{"claim interval under 1ms", opts(consumer.WithClaimInterval(time.Microsecond)), midstream.ErrInvalidOption},
		{"claim interval MaxInt64", opts(consumer.WithClaimInterval(math.MaxInt64)), midstream.ErrInvalidOption},
		{"retry backoff -1", opts(consumer.WithRetryBackoff(-1)), midstream.ErrInvalidOption},
		{"retry backoff above max", opts(consumer.WithRetryBackoff(consumer.MaxRetryBackoff + 1)), midstream.ErrInvalidOption},
		{"nil retry policy", opts(consumer.WithRetryPolicy(nil)), midstream.ErrInvalidOption},
		{"retry delay -1", opts(consumer.WithRetryDelay(-1, 0)), midstream.ErrInvalidOption},
		{"retry delay limit -1", opts(consumer.WithRetryDelay(0, -1)), midstream.ErrInvalidOption},
		{"retry delay above max", opts(consumer.WithRetryDelay(0, consumer.MaxRetryDelay+1)), midstream.ErrInvalidOption},
		{"retry delay first above limit", opts(consumer.WithRetryDelay(2*time.Second, time.Second)), midstream.ErrInvalidOption},
		{"max deliveries -1", opts(consumer.WithMaxDeliveries(-1)), midstream.ErrInvalidOption},
		{"max deliveries above max", opts(consumer.WithMaxDeliveries(consumer.MaxDeliveries + 1)), midstream.ErrInvalidOption},
		{"max entry size -1", opts(consumer.WithMaxEntrySize(-1)), midstream.ErrInvalidOption},
		{"max entry size above max", opts(consumer.WithMaxEntrySize(consumer.MaxEntrySize + 1)), midstream.ErrInvalidOption},
		{"max entry size MaxInt", opts(consumer.WithMaxEntrySize(math.MaxInt)), midstream.ErrInvalidOption},
		{"nil dead-letter queue", opts(consumer.WithDeadLetter(nil)), midstream.ErrInvalidOption},
		{"dead-letter queue of another stream", opts(consumer.WithDeadLetter(otherQueue(t, rdb))), midstream.ErrInvalidOption},
		{"consumer cleanup under 1s", opts(consumer.WithConsumerCleanup(time.Millisecond)), midstream.ErrInvalidOption},
		{"consumer cleanup -1", opts(consumer.WithConsumerCleanup(-1)), midstream.ErrInvalidOption},
		{"nil HandlerFunc", handler(consumer.HandlerFunc(nil)), midstream.ErrInvalidOption},
		{"typed without default codec", handler(consumer.Typed(typedFn)), midstream.ErrUnsupportedType},
		{"typed without default codec is an encode error", handler(consumer.Typed(typedFn)), midstream.ErrEncode},
		{"typed codec without codec", handler(consumer.TypedCodec(nil, typedFn)), midstream.ErrInvalidOption},
		{"typed codec without func", handler(consumer.TypedCodec[job](midstream.JSONCodec[job]{}, nil)), midstream.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArgs{client: rdb, stream: "jobs", group: "workers", h: nopHandler()}
			tt.edit(&a)
			c, err := consumer.New(a.client, a.stream, a.group, a.h, a.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want an error wrapping %v", err, tt.want)
			}
			if c != nil {
				t.Fatalf("New returned a consumer with error %v", err)
			}
		})
	}
}

func TestNewReportsEveryBadOption(t *testing.T) {
	_, err := consumer.New(offlineClient(t), "jobs", "workers", nopHandler(),
		consumer.WithConcurrency(-1), consumer.WithBlock(math.MaxInt64), consumer.WithLogger(nil))
	if !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("New: %v, want ErrInvalidOption", err)
	}
	for _, want := range []string{"concurrency", "block", "logger"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestNewAccepts(t *testing.T) {
	rdb := offlineClient(t)
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		h    consumer.Handler
		opts []consumer.Option
	}{
		{name: "defaults"},
		{name: "start new", opts: []consumer.Option{consumer.WithStart(consumer.StartNew)}},
		{name: "start beginning", opts: []consumer.Option{consumer.WithStart(consumer.StartBeginning)}},
		{name: "start at an ID", opts: []consumer.Option{consumer.WithStart("1700000000000-5")}},
		{name: "start at a millisecond", opts: []consumer.Option{consumer.WithStart("1700000000000")}},
		{name: "block bounds", opts: []consumer.Option{consumer.WithBlock(time.Millisecond), consumer.WithBlock(consumer.MaxBlock)}},
		{name: "max in flight equal to concurrency", opts: []consumer.Option{consumer.WithConcurrency(4), consumer.WithMaxInFlight(4)}},
		{name: "concurrency above default max in flight", opts: []consumer.Option{consumer.WithBatchSize(1), consumer.WithConcurrency(50)}},
		{name: "no middleware", opts: []consumer.Option{consumer.WithMiddleware()}},
		{name: "every zero", opts: []consumer.Option{
			consumer.WithName(""),
			consumer.WithStart(""),
			consumer.WithConcurrency(0),
			consumer.WithBatchSize(0),
			consumer.WithMaxInFlight(0),
			consumer.WithBlock(0),
			consumer.WithHandlerTimeout(0),
			consumer.WithShutdownTimeout(0),
			consumer.WithAcks(0, 0),
			consumer.WithMinIdle(0),
			consumer.WithClaimInterval(0),
			consumer.WithRetryBackoff(0),
			consumer.WithRetryDelay(0, 0),
			consumer.WithMaxDeliveries(0),
			consumer.WithMaxEntrySize(0),
			consumer.WithConsumerCleanup(0),
		}},
		{name: "every max", opts: []consumer.Option{
			consumer.WithConcurrency(consumer.MaxConcurrency),
			consumer.WithBatchSize(consumer.MaxBatchSize),
			consumer.WithMaxInFlight(consumer.MaxInFlight),
			consumer.WithBlock(consumer.MaxBlock),
			consumer.WithHandlerTimeout(math.MaxInt64),
			consumer.WithShutdownTimeout(math.MaxInt64),
			consumer.WithAcks(consumer.MaxAckBatch, consumer.MaxAckInterval),
			consumer.WithMinIdle(consumer.MaxMinIdle),
			consumer.WithClaimInterval(consumer.MaxClaimInterval),
			consumer.WithRetryBackoff(consumer.MaxRetryBackoff),
			consumer.WithRetryDelay(consumer.MaxRetryDelay, consumer.MaxRetryDelay),
			consumer.WithMaxDeliveries(consumer.MaxDeliveries),
			consumer.WithMaxEntrySize(consumer.MaxEntrySize),
		}},
		{name: "max batch and concurrency, default in flight", opts: []consumer.Option{
			consumer.WithConcurrency(consumer.MaxConcurrency), consumer.WithBatchSize(consumer.MaxBatchSize)}},
		{name: "typed struct", h: consumer.Typed(func(context.Context, job, *consumer.Message) error { return nil })},
		{name: "typed struct pointer", h: consumer.Typed(func(context.Context, *job, *consumer.Message) error { return nil })},
		{name: "typed map", h: consumer.Typed(func(context.Context, map[string]string, *consumer.Message) error { return nil })},
		{name: "typed codec", h: consumer.TypedCodec(midstream.JSONCodec[[]int]{}, func(context.Context, []int, *consumer.Message) error { return nil })},
		{name: "everything", opts: []consumer.Option{
			consumer.WithName("worker-1"),
			consumer.WithStart(consumer.StartBeginning),
			consumer.WithConcurrency(3),
			consumer.WithBatchSize(20),
			consumer.WithMaxInFlight(30),
			consumer.WithBlock(500 * time.Millisecond),
			consumer.WithHandlerTimeout(time.Second),
			consumer.WithShutdownTimeout(2 * time.Second),
			consumer.WithAcks(1, time.Nanosecond),
			consumer.WithLogger(logger),
			consumer.WithMiddleware(nopMiddleware, nopMiddleware),
			consumer.WithMiddleware(nopMiddleware),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if h == nil {
				h = nopHandler()
			}
			c, err := consumer.New(rdb, "jobs", "workers", h, tt.opts...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c == nil {
				t.Fatal("New returned a nil consumer and no error")
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	want := regexp.MustCompile("^" + regexp.QuoteMeta(fmt.Sprintf("%s-%d-", host, os.Getpid())) + "[0-9a-f]{8}$")
	rdb := offlineClient(t)
	a, err := consumer.New(rdb, "jobs", "workers", nopHandler())
	if err != nil {
		t.Fatal(err)
	}
	b, err := consumer.New(rdb, "jobs", "workers", nopHandler())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*consumer.Consumer{a, b} {
		if !want.MatchString(c.Name()) {
			t.Errorf("default name %q does not match %s", c.Name(), want)
		}
	}
	if a.Name() == b.Name() {
		t.Errorf("two consumers share the default name %q", a.Name())
	}
}

func TestWithName(t *testing.T) {
	c, err := consumer.New(offlineClient(t), "jobs", "workers", nopHandler(), consumer.WithName("worker-7"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "worker-7" {
		t.Fatalf("Name() = %q, want worker-7", c.Name())
	}
	// The last WithName wins, as for every option.
	c, err = consumer.New(offlineClient(t), "jobs", "workers", nopHandler(), consumer.WithName("a"), consumer.WithName("b"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "b" {
		t.Fatalf("Name() = %q, want b", c.Name())
	}
	// An empty name means the default, also after another WithName.
	c, err = consumer.New(offlineClient(t), "jobs", "workers", nopHandler(), consumer.WithName("a"), consumer.WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() == "a" || c.Name() == "" {
		t.Fatalf("Name() = %q, want the default name", c.Name())
	}
}

// TestNewRefusesHugeQuickly: huge values are refused by comparison, before
// anything is sized from them.
func TestNewRefusesHugeQuickly(t *testing.T) {
	rdb := offlineClient(t)
	huge := []consumer.Option{
		consumer.WithConcurrency(math.MaxInt),
		consumer.WithBatchSize(1_000_000_000),
		consumer.WithMaxInFlight(1_000_000_000),
		consumer.WithAcks(math.MaxInt, math.MaxInt64),
		consumer.WithMaxEntrySize(math.MaxInt),
		consumer.WithMaxDeliveries(math.MaxInt),
	}
	for _, o := range huge {
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := consumer.New(rdb, "jobs", "workers", nopHandler(), o); !errors.Is(err, midstream.ErrInvalidOption) {
				t.Fatalf("New: %v, want ErrInvalidOption", err)
			}
		})
		if allocs > 50 {
			t.Errorf("refusing a huge option took %v allocations", allocs)
		}
	}
}

func TestNewStats(t *testing.T) {
	c, err := consumer.New(offlineClient(t), "jobs", "workers", nopHandler())
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s != (consumer.Stats{}) {
		t.Fatalf("Stats() of a new consumer = %+v, want zeros", s)
	}
}

func otherQueue(t *testing.T, rdb *redis.Client) *deadletter.Queue {
	t.Helper()
	q, err := deadletter.New(rdb, "other")
	if err != nil {
		t.Fatal(err)
	}
	return q
}
