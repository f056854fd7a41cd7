package producer_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

type event struct {
	UserID string  `redis:"userId"`
	Action string  `redis:"action"`
	Amount float64 `redis:"amount"`
}

func newClient(t *testing.T) (*redis.Client, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c, mr
}

func TestNewValidation(t *testing.T) {
	c, _ := newClient(t)
	type unsupported struct{ C chan int }
	for _, tc := range []struct {
		name   string
		stream string
		opts   []producer.Option
		want   error
	}{
		{"empty stream", "", nil, midstream.ErrInvalidStream},
		{"control char stream", "a\nb", nil, midstream.ErrInvalidStream},
		{"nil option", "s", []producer.Option{nil}, midstream.ErrInvalidOption},
		{"max size above max", "s", []producer.Option{producer.WithMaxEntrySize(producer.MaxEntrySize + 1)}, midstream.ErrInvalidOption},
		{"max size MaxInt", "s", []producer.Option{producer.WithMaxEntrySize(math.MaxInt)}, midstream.ErrInvalidOption},
		{"max size 1e9", "s", []producer.Option{producer.WithMaxEntrySize(1e9)}, midstream.ErrInvalidOption},
		{"negative max size", "s", []producer.Option{producer.WithMaxEntrySize(-1)}, midstream.ErrInvalidOption},
		{"nil codec", "s", []producer.Option{producer.WithCodec[event](nil)}, midstream.ErrInvalidOption},
		{"codec of other type", "s", []producer.Option{producer.WithCodec[int](midstream.JSONCodec[int]{})}, midstream.ErrInvalidOption},
		{"nil id func", "s", []producer.Option{producer.WithIDFunc[event](nil)}, midstream.ErrInvalidOption},
		{"id func of other type", "s", []producer.Option{producer.WithIDFunc(func(int) string { return "*" })}, midstream.ErrInvalidOption},
		{"empty header name", "s", []producer.Option{producer.WithHeaders(map[string]string{"": "x"})}, midstream.ErrInvalidOption},
		{"header name with space", "s", []producer.Option{producer.WithHeaders(map[string]string{"a b": "x"})}, midstream.ErrInvalidOption},
		{"trim nothing set", "s", []producer.Option{producer.WithTrim(producer.Trim{Approx: true})}, midstream.ErrInvalidOption},
		{"trim age under 1ms", "s", []producer.Option{producer.WithTrim(producer.Trim{MaxAge: time.Microsecond})}, midstream.ErrInvalidOption},
		{"trim two set", "s", []producer.Option{producer.WithTrim(producer.Trim{MaxLen: 5, MaxAge: time.Hour})}, midstream.ErrInvalidOption},
		{"trim negative len", "s", []producer.Option{producer.WithTrim(producer.Trim{MaxLen: -1})}, midstream.ErrInvalidOption},
		{"trim negative age", "s", []producer.Option{producer.WithTrim(producer.Trim{MaxAge: -time.Second})}, midstream.ErrInvalidOption},
		{"trim limit without approx", "s", []producer.Option{producer.WithTrim(producer.Trim{MaxLen: 5, Limit: 10})}, midstream.ErrInvalidOption},
		{"trim negative limit", "s", []producer.Option{producer.WithTrim(producer.Trim{MaxLen: 5, Approx: true, Limit: -1})}, midstream.ErrInvalidOption},
		{"trim bad min id", "s", []producer.Option{producer.WithTrim(producer.Trim{MinID: "yesterday"})}, midstream.ErrInvalidID},
		{"valid everything", "s", []producer.Option{
			producer.WithTrim(producer.Trim{MaxLen: 5, Approx: true, Limit: 10}),
			producer.WithMaxEntrySize(100), producer.WithNoMkStream(),
			producer.WithHeaders(map[string]string{"tenant": "acme"}),
			producer.WithCodec[event](midstream.JSONCodec[event]{}),
			producer.WithIDFunc(func(event) string { return "*" }),
		}, nil},
		{"zeros are the defaults", "s", []producer.Option{
			producer.WithMaxEntrySize(0), producer.WithTrim(producer.Trim{}), producer.WithHeaders(nil),
		}, nil},
		{"max size at max", "s", []producer.Option{producer.WithMaxEntrySize(producer.MaxEntrySize)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := producer.New[event](c, tc.stream, tc.opts...)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want an error wrapping %v", err, tc.want)
			}
		})
	}
	if _, err := producer.New[event](nil, "s"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("nil client: %v", err)
	}
	if _, err := producer.New[unsupported](c, "s"); !errors.Is(err, midstream.ErrUnsupportedType) {
		t.Errorf("unsupported struct: %v", err)
	}
	if _, err := producer.New[[]int](c, "s"); !errors.Is(err, midstream.ErrUnsupportedType) {
		t.Errorf("type without default codec: %v", err)
	}
}

func TestPublishRejectsBeforeSending(t *testing.T) {
	c, mr := newClient(t)
	ctx := context.Background()
	p, err := producer.New[map[string]string](c, "s", producer.WithMaxEntrySize(16))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		v    map[string]string
		opts []producer.PublishOption
		want error
	}{
		{"too large", map[string]string{"k": strings.Repeat("x", 16)}, nil, midstream.ErrTooLarge},
		{"too large with header", map[string]string{"k": "v"}, []producer.PublishOption{producer.Header("h", "0123456789")}, midstream.ErrTooLarge},
		{"reserved field", map[string]string{"traceparent": "x"}, nil, midstream.ErrReservedField},
		{"empty", map[string]string{}, nil, midstream.ErrEmptyEntry},
		{"bad id", map[string]string{"k": "v"}, []producer.PublishOption{producer.ID("tomorrow")}, midstream.ErrInvalidID},
		{"zero id", map[string]string{"k": "v"}, []producer.PublishOption{producer.ID("0-0")}, midstream.ErrInvalidID},
		{"bad header", map[string]string{"k": "v"}, []producer.PublishOption{producer.Header("", "x")}, midstream.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := p.Publish(ctx, tc.v, tc.opts...)
			if !errors.Is(err, tc.want) || id != "" {
				t.Fatalf("Publish = %q, %v; want an error wrapping %v", id, err, tc.want)
			}
		})
	}
	if mr.Exists("s") {
		t.Fatal("a rejected entry reached Redis")
	}
	// The limit counts exactly: 16 bytes pass.
	if _, err := p.Publish(ctx, map[string]string{"k": strings.Repeat("x", 15)}); err != nil {
		t.Fatalf("entry at the limit: %v", err)
	}
}

func TestPublishBatchRejectsWholeBatchOnEncodeError(t *testing.T) {
	c, mr := newClient(t)
	p, err := producer.New[map[string]string](c, "s")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := p.PublishBatch(context.Background(), []map[string]string{{"a": "1"}, {"header:x": "2"}, {"c": "3"}})
	var be *producer.BatchError
	if !errors.As(err, &be) || be.Failed() != 3 || !errors.Is(be.Errs[1], midstream.ErrReservedField) || !errors.Is(err, midstream.ErrReservedField) {
		t.Fatalf("PublishBatch error = %v", err)
	}
	for _, i := range []int{0, 2} {
		if !errors.Is(be.Errs[i], producer.ErrNotSent) {
			t.Errorf("valid entry %d of a rejected batch: %v, want ErrNotSent", i, be.Errs[i])
		}
	}
	if !strings.Contains(err.Error(), "entry 1") {
		t.Errorf("the error names a valid entry rather than the invalid one: %v", err)
	}
	if len(ids) != 3 || ids[0] != "" {
		t.Fatalf("ids = %q", ids)
	}
	if mr.Exists("s") {
		t.Fatal("part of a rejected batch reached Redis")
	}
}

func TestPublishHonoursCancelledContext(t *testing.T) {
	c, mr := newClient(t)
	p, err := producer.New[event](c, "s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Publish(ctx, event{UserID: "1"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish: %v", err)
	}
	var be *producer.BatchError
	if _, err := p.PublishBatch(ctx, []event{{UserID: "1"}}); !errors.Is(err, context.Canceled) || !errors.As(err, &be) {
		t.Fatalf("PublishBatch: %v, want a *BatchError of context.Canceled", err)
	}
	if mr.Exists("s") {
		t.Fatal("published with a cancelled context")
	}
}

func TestHeadersAndIDs(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	p, err := producer.New[event](c, "s",
		producer.WithHeaders(map[string]string{"tenant": "acme", "region": "eu"}),
		producer.WithIDFunc(func(e event) string { return e.UserID + "-1" }))
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Publish(ctx, event{UserID: "5"}, producer.Header("region", "us"))
	if err != nil || id != "5-1" {
		t.Fatalf("Publish = %q, %v", id, err)
	}
	msgs, err := c.XRange(ctx, "s", "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE: %v %v", msgs, err)
	}
	got := msgs[0].Values
	if got["header:tenant"] != "acme" || got["header:region"] != "us" || got["userId"] != "5" {
		t.Fatalf("fields = %v", got)
	}
	if _, err := p.Publish(ctx, event{UserID: "4"}); !errors.Is(err, midstream.ErrIDNotIncreasing) {
		t.Fatalf("decreasing ID: %v", err)
	}
	if id, err := p.Publish(ctx, event{UserID: "9"}, producer.ID("7-*")); err != nil || id != "7-0" {
		t.Fatalf("per-call ID: %q %v", id, err)
	}
}

func TestPublishOptionEdges(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	p, err := producer.New[map[string]string](c, "edges")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, map[string]string{"k": "v"}, nil); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("nil publish option: %v", err)
	}
	// "0-*" is a valid partial ID (the first sequence of millisecond 0).
	if id, err := p.Publish(ctx, map[string]string{"k": "v"}, producer.ID("0-*")); err != nil || id != "0-1" {
		t.Fatalf(`ID("0-*") = %q, %v; want "0-1"`, id, err)
	}
	if _, err := p.Publish(ctx, map[string]string{"k": "v"}, producer.Header("h", "1"), producer.Header("h", "2")); err != nil {
		t.Fatal(err)
	}
	msgs := c.XRevRangeN(ctx, "edges", "+", "-", 1).Val()
	if len(msgs) != 1 || len(msgs[0].Values) != 2 || msgs[0].Values["header:h"] != "2" {
		t.Fatalf("a header given twice: %v, want the later value once", msgs)
	}
}
