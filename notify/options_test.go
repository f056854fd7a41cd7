package notify_test

import (
	"context"
	"errors"
	"testing"

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
		{"empty prefix", rdb, []notify.Option{notify.WithKeyPrefix("")}},
		{"control prefix", rdb, []notify.Option{notify.WithKeyPrefix("a\n")}},
		{"max len", rdb, []notify.Option{notify.WithMaxLen(0)}},
		{"budget", rdb, []notify.Option{notify.WithCountBudget(-1)}},
		{"nil live option", rdb, []notify.Option{notify.WithLiveOptions(nil)}},
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
	if _, err := n.List(ctx, "u", "", 0); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("List limit 0: %v", err)
	}
	if _, err := n.List(ctx, "u", "x", 1); !errors.Is(err, midstream.ErrInvalidID) {
		t.Errorf("List bad cursor: %v", err)
	}
}
