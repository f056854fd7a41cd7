package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
		{"nil handler", handler(nil), midstream.ErrInvalidOption},
		{"nil option", opts(consumer.WithConcurrency(2), nil), midstream.ErrInvalidOption},
		{"empty name", opts(consumer.WithName("")), midstream.ErrInvalidOption},
		{"bogus start", opts(consumer.WithStart("bogus")), midstream.ErrInvalidOption},
		{"bogus start is an invalid ID", opts(consumer.WithStart("bogus")), midstream.ErrInvalidID},
		{"start >", opts(consumer.WithStart(">")), midstream.ErrInvalidOption},
		{"empty start", opts(consumer.WithStart("")), midstream.ErrInvalidOption},
		{"concurrency 0", opts(consumer.WithConcurrency(0)), midstream.ErrInvalidOption},
		{"concurrency -1", opts(consumer.WithConcurrency(-1)), midstream.ErrInvalidOption},
		{"batch size 0", opts(consumer.WithBatchSize(0)), midstream.ErrInvalidOption},
		{"max in flight 0", opts(consumer.WithMaxInFlight(0)), midstream.ErrInvalidOption},
		{"max in flight below concurrency", opts(consumer.WithConcurrency(8), consumer.WithMaxInFlight(7)), midstream.ErrInvalidOption},
		{"max in flight below default concurrency", opts(consumer.WithMaxInFlight(consumer.DefaultConcurrency - 1)), midstream.ErrInvalidOption},
		{"block 0", opts(consumer.WithBlock(0)), midstream.ErrInvalidOption},
		{"block under 1ms", opts(consumer.WithBlock(time.Millisecond - 1)), midstream.ErrInvalidOption},
		{"block 2m", opts(consumer.WithBlock(2 * time.Minute)), midstream.ErrInvalidOption},
		{"block just over max", opts(consumer.WithBlock(consumer.MaxBlock + time.Millisecond)), midstream.ErrInvalidOption},
		{"handler timeout 0", opts(consumer.WithHandlerTimeout(0)), midstream.ErrInvalidOption},
		{"shutdown timeout -1", opts(consumer.WithShutdownTimeout(-1)), midstream.ErrInvalidOption},
		{"shutdown timeout 0", opts(consumer.WithShutdownTimeout(0)), midstream.ErrInvalidOption},
		{"ack batch 0", opts(consumer.WithAcks(0, time.Millisecond)), midstream.ErrInvalidOption},
		{"ack interval 0", opts(consumer.WithAcks(1, 0)), midstream.ErrInvalidOption},
		{"nil logger", opts(consumer.WithLogger(nil)), midstream.ErrInvalidOption},
		{"nil middleware", opts(consumer.WithMiddleware(nil)), midstream.ErrInvalidOption},
		{"nil middleware among others", opts(consumer.WithMiddleware(nopMiddleware, nil)), midstream.ErrInvalidOption},
		{"min idle 0", opts(consumer.WithMinIdle(0)), midstream.ErrInvalidOption},
		{"claim interval under 1ms", opts(consumer.WithClaimInterval(time.Microsecond)), midstream.ErrInvalidOption},
		{"retry backoff 0", opts(consumer.WithRetryBackoff(0)), midstream.ErrInvalidOption},
		{"max deliveries 0", opts(consumer.WithMaxDeliveries(0)), midstream.ErrInvalidOption},
		{"max entry size 0", opts(consumer.WithMaxEntrySize(0)), midstream.ErrInvalidOption},
		{"nil dead-letter queue", opts(consumer.WithDeadLetter(nil)), midstream.ErrInvalidOption},
		{"dead-letter queue of another stream", opts(consumer.WithDeadLetter(otherQueue(t, rdb))), midstream.ErrInvalidOption},
		{"consumer cleanup under 1s", opts(consumer.WithConsumerCleanup(time.Millisecond)), midstream.ErrInvalidOption},
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
		consumer.WithConcurrency(0), consumer.WithBlock(0), consumer.WithLogger(nil))
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
