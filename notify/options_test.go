package notify_test

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
	"github.com/midstream-go/midstream/live"
	"github.com/midstream-go/midstream/notify"
)

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []notify.Option
	}{
		{"nil client", nil, nil},
		{"nil option", rdb, []notify.Option{nil}},
		{"control prefix", rdb, []notify.Option{notify.WithKeyPrefix("a\n")}},
		{"negative max len", rdb, []notify.Option{notify.WithMaxLen(-1)}},
		{"negative budget", rdb, []notify.Option{notify.WithCountBudget(-1)}},
		{"budget above max", rdb, []notify.Option{notify.WithCountBudget(notify.MaxCountBudget + 1)}},
		{"budget MaxInt64", rdb, []notify.Option{notify.WithCountBudget(math.MaxInt64)}},
		{"budget 1e9", rdb, []notify.Option{notify.WithCountBudget(1e9)}},
		{"nil live option", rdb, []notify.Option{notify.WithLiveOptions(nil)}},
		{"negative marker window", rdb, []notify.Option{notify.WithMarkerWindow(-1)}},
		{"marker window above max", rdb, []notify.Option{notify.WithMarkerWindow(notify.MaxMarkerWindow + 1)}},
		{"negative idempotency TTL", rdb, []notify.Option{notify.WithIdempotencyTTL(-1)}},
		{"idempotency TTL above max", rdb, []notify.Option{notify.WithIdempotencyTTL(notify.MaxIdempotencyTTL + 1)}},
		{"idempotency TTL below 1ms", rdb, []notify.Option{notify.WithIdempotencyTTL(time.Microsecond)}},
		{"nil tracer provider", rdb, []notify.Option{notify.WithTracerProvider(nil)}},
		{"nil meter provider", rdb, []notify.Option{notify.WithMeterProvider(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := notify.New(tt.client, tt.opts...)
			if !errors.Is(err, midstream.ErrInvalidOption) || n != nil {
				t.Fatalf("New = %v, %v; want ErrInvalidOption", n, err)
			}
		})
	}
	if _, err := notify.New(rdb, notify.WithKeyPrefix("n:"), notify.WithMaxLen(10),
		notify.WithCountBudget(5), notify.WithLiveOptions(live.WithPageSize(10))); err != nil {
		t.Fatalf("good options: %v", err)
	}
	if _, err := notify.New(rdb, notify.WithKeyPrefix(""), notify.WithMaxLen(0), notify.WithCountBudget(0)); err != nil {
		t.Fatalf("zero options: %v", err)
	}
	if _, err := notify.New(rdb, notify.WithCountBudget(notify.MaxCountBudget)); err != nil {
		t.Fatalf("budget at max: %v", err)
	}
}

func TestCallsRejectBadArguments(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	n, err := notify.New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := n.Send(ctx, "", "x"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("Send to empty user: %v", err)
	}
	if err := n.MarkRead(ctx, "u", "nope"); !errors.Is(err, midstream.ErrInvalidID) {
		t.Errorf("MarkRead bad ID: %v", err)
	}
	for _, limit := range []int{0, -1, notify.MaxListLimit + 1, math.MaxInt} {
		if _, err := n.List(ctx, "u", "", limit); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("List limit %d: %v", limit, err)
		}
		if _, err := n.Unread(ctx, "u", "", limit); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("Unread limit %d: %v", limit, err)
		}
	}
	if _, err := n.List(ctx, "u", "x", 1); !errors.Is(err, midstream.ErrInvalidID) {
		t.Errorf("List bad cursor: %v", err)
	}
	for i, o := range []notify.SendOption{nil, notify.WithIdempotencyKey(""),
		notify.WithIdempotencyKey(strings.Repeat("k", notify.MaxIdempotencyKeyLen+1)),
		notify.WithFields(map[string]string{notify.FieldContent: "x"}), notify.WithFields(map[string]string{"traceparent": "x"}),
		notify.WithValue[map[string]string](nil, nil)} {
		if _, err := n.Send(ctx, "u", "x", o); !errors.Is(err, midstream.ErrInvalidOption) && !errors.Is(err, midstream.ErrReservedField) {
			t.Errorf("Send with bad option %d: %v", i, err)
		}
	}
}
