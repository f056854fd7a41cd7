package feed_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/live"
)

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []feed.Option
	}{
		{"nil client", nil, nil},
		{"nil option", rdb, []feed.Option{nil}},
		{"newline in stream", rdb, []feed.Option{feed.WithStream("activity\n")}},
		{"newline in channel", rdb, []feed.Option{feed.WithChannel("activity:new\n")}},
		{"negative fan-out max len", rdb, []feed.Option{feed.WithFanOutOnWrite(-1)}},
		{"negative budget", rdb, []feed.Option{feed.WithScanBudget(-1)}},
		{"budget above max", rdb, []feed.Option{feed.WithScanBudget(feed.MaxScanBudget + 1)}},
		{"budget MaxInt64", rdb, []feed.Option{feed.WithScanBudget(math.MaxInt64)}},
		{"nil live option", rdb, []feed.Option{feed.WithLiveOptions(nil)}},
		{"negative batch", rdb, []feed.Option{feed.WithFanOutBatch(-1)}},
		{"batch above max", rdb, []feed.Option{feed.WithFanOutBatch(feed.MaxFanOutBatch + 1)}},
		{"negative backfill", rdb, []feed.Option{feed.WithBackfill(-1)}},
		{"backfill above max", rdb, []feed.Option{feed.WithBackfill(feed.MaxBackfill + 1)}},
		{"nil tracer provider", rdb, []feed.Option{feed.WithTracerProvider(nil)}},
		{"nil meter provider", rdb, []feed.Option{feed.WithMeterProvider(nil)}},
		{"negative idempotency TTL", rdb, []feed.Option{feed.WithIdempotencyTTL(-1)}},
		{"idempotency TTL above max", rdb, []feed.Option{feed.WithIdempotencyTTL(feed.MaxIdempotencyTTL + 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := feed.New(tt.client, tt.opts...)
			if !errors.Is(err, midstream.ErrInvalidOption) || f != nil {
				t.Fatalf("New = %v, %v; want ErrInvalidOption", f, err)
			}
		})
	}
	f, err := feed.New(rdb, feed.WithStream("a"), feed.WithChannel("a:new"), feed.WithFanOutOnWrite(10),
		feed.WithScanBudget(5), feed.WithLiveOptions(live.WithPageSize(3)))
	if err != nil {
		t.Fatalf("good options: %v", err)
	}
	ctx := context.Background()
	for _, field := range []string{"actor", "id", "activityId"} {
		if _, err := f.Append(ctx, "ann", map[string]string{field: "x"}); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("Append with a field %q: %v", field, err)
		}
	}
	for _, o := range []feed.AppendOption{nil, feed.WithIdempotencyKey(""), feed.WithIdempotencyKey(strings.Repeat("k", feed.MaxIdempotencyKeyLen+1))} {
		if _, err := f.Append(ctx, "ann", nil, o); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("Append with a bad option: %v", err)
		}
	}
	if err := f.FanOut(ctx, "x"); !errors.Is(err, midstream.ErrInvalidID) {
		t.Errorf("FanOut of a bad ID: %v", err)
	}
	onRead, err := feed.New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	if err := onRead.FanOut(ctx, "1-1"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("FanOut under fan-out on read: %v", err)
	}
	if _, err := f.Followers(ctx, ""); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("Followers of empty user: %v", err)
	}
	for _, limit := range []int{0, -1, feed.MaxReadLimit + 1, math.MaxInt} {
		if _, err := f.Read(ctx, "bob", "", limit); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("Read limit %d: %v", limit, err)
		}
	}
	if _, err := feed.New(rdb, feed.WithStream(""), feed.WithChannel(""), feed.WithFanOutOnWrite(0), feed.WithScanBudget(0)); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if _, err := feed.New(rdb, feed.WithScanBudget(feed.MaxScanBudget)); err != nil {
		t.Errorf("budget at max: %v", err)
	}
	if err := f.Follow(ctx, "", "ann"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("Follow by empty user: %v", err)
	}
}
