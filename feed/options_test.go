package feed_test

import (
	"context"
	"errors"
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
		{"empty stream", rdb, []feed.Option{feed.WithStream("")}},
		{"empty channel", rdb, []feed.Option{feed.WithChannel("")}},
		{"fan-out max len", rdb, []feed.Option{feed.WithFanOutOnWrite(0)}},
		{"budget", rdb, []feed.Option{feed.WithScanBudget(0)}},
		{"nil live option", rdb, []feed.Option{feed.WithLiveOptions(nil)}},
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
	if _, err := f.Append(ctx, "ann", map[string]string{"actor": "x"}); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("Append with an actor field: %v", err)
	}
	if _, err := f.Read(ctx, "bob", "", 0); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("Read limit 0: %v", err)
	}
	if err := f.Follow(ctx, "", "ann"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("Follow by empty user: %v", err)
	}
}
