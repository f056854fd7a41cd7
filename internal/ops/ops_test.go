package ops_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/internal/ops"
)

// These tests use miniredis for what it does as Redis 7 does: SCAN with
// MATCH and TYPE, XADD, XRANGE, blocking XREAD. What needs XINFO's newer
// fields runs against a real server in the command's and the dashboard's
// tests.

func newClient(t *testing.T) *redis.Client {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestFindStreams(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "{c}", "{c}:dlq", "x:1"} {
		c.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"f", "v"}})
	}
	c.Set(ctx, "a-string", "v", 0)
	got, truncated, err := ops.FindStreams(ctx, c, "*", 100, false)
	if err != nil || truncated || !slices.Equal(got, []string{"a", "b", "x:1", "{c}"}) {
		t.Fatalf("got %v %t %v", got, truncated, err)
	}
	got, _, _ = ops.FindStreams(ctx, c, "{c}*", 100, true)
	if !slices.Equal(got, []string{"{c}", "{c}:dlq"}) {
		t.Fatalf("with dead-letter streams: %v", got)
	}
	got, truncated, _ = ops.FindStreams(ctx, c, "*", 2, false)
	if !truncated || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("limit 2: %v %t", got, truncated)
	}
	for _, n := range []int{0, ops.MaxStreams + 1} {
		if _, _, err := ops.FindStreams(ctx, c, "*", n, false); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("limit %d: %v", n, err)
		}
	}
}

func TestSummarize(t *testing.T) {
	h := health.StreamHealth{Stream: "s", Length: 9, EntriesAdded: 12, DeadLetter: health.DeadLetterHealth{Key: "{s}:dlq", Length: 2},
		Groups: []health.GroupHealth{
			{Name: "a", Pending: 3, OldestPendingAge: 2 * time.Second, Lag: 4, LagKnown: true, EntriesRead: 5, EntriesReadKnown: true},
			{Name: "b", Pending: 1, OldestPendingAge: 5 * time.Second, Lag: 100},
			{Name: "c", Lag: 7, LagKnown: true, EntriesRead: 2, EntriesReadKnown: true},
		}}
	s := ops.Summarize(h)
	if s.Lag == nil || *s.Lag != 7 || s.Pending != 4 || s.OldestPendingAgeMs != 5000 || s.EntriesRead != 7 || s.Groups != 3 || s.DeadLetters != 2 {
		t.Fatalf("%+v", s)
	}
	if s := ops.Summarize(health.StreamHealth{Groups: []health.GroupHealth{{Name: "x", Lag: 3}}}); s.Lag != nil {
		t.Fatalf("unknown lag reported: %v", *s.Lag)
	}
}

func TestSortSummaries(t *testing.T) {
	lag := func(n int64) *int64 { return &n }
	sums := []ops.StreamSummary{{Stream: "b", Length: 1, Lag: lag(5)}, {Stream: "a", Length: 3}, {Stream: "c", Length: 3, Lag: lag(1), DeadLetters: 4}}
	order := func() []string {
		var s []string
		for _, x := range sums {
			s = append(s, x.Stream)
		}
		return s
	}
	for key, want := range map[string][]string{"name": {"a", "b", "c"}, "length": {"a", "c", "b"}, "lag": {"b", "c", "a"}, "dlq": {"c", "a", "b"}} {
		if err := ops.SortSummaries(sums, key); err != nil || !slices.Equal(order(), want) {
			t.Fatalf("sort %s: %v %v", key, order(), err)
		}
	}
	if err := ops.SortSummaries(sums, "size"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatal(err)
	}
}

func TestRates(t *testing.T) {
	t0 := time.Unix(100, 0)
	prev := []ops.StreamSummary{{Stream: "a", EntriesAdded: 10, EntriesRead: 4}, {Stream: "b", EntriesAdded: 50}}
	cur := []ops.StreamSummary{{Stream: "a", EntriesAdded: 30, EntriesRead: 8}, {Stream: "b", EntriesAdded: 2}, {Stream: "new", EntriesAdded: 9}}
	r := ops.Rates(prev, t0, cur, t0.Add(2*time.Second))
	if r[0].AddedPerSec != 10 || r[0].DeliveredPerSec != 2 || r[1].AddedPerSec != 0 || r[2].AddedPerSec != 0 {
		t.Fatalf("%+v", r)
	}
	if r := ops.Rates(prev, t0, cur, t0); r[0].AddedPerSec != 0 {
		t.Fatalf("zero interval: %+v", r)
	}
}

func TestParseFiltersAndMatch(t *testing.T) {
	f, err := ops.ParseFilters([]string{"kind=a", "note=x=y", "empty="})
	if err != nil || f["note"] != "x=y" || f["empty"] != "" {
		t.Fatalf("%v %v", f, err)
	}
	for _, bad := range []string{"nokey", "=v"} {
		if _, err := ops.ParseFilters([]string{bad}); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	e := ops.Entry{Fields: map[string]string{"kind": "a", "note": "x=y", "empty": ""}}
	if !ops.Match(e, f) || ops.Match(ops.Entry{Fields: map[string]string{"kind": "a"}}, f) || !ops.Match(e, nil) {
		t.Fatal("match")
	}
}

func TestTailFromAnIDThenLive(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i <= 3; i++ {
		c.XAdd(ctx, &redis.XAddArgs{Stream: "s", ID: fmt.Sprintf("%d-0", i), Values: []string{"n", fmt.Sprint(i)}})
	}
	if id, err := ops.StartID(ctx, c, "s", ops.TailNow); err != nil || id != "3-0" {
		t.Fatalf("now: %q %v", id, err)
	}
	if id, _ := ops.StartID(ctx, c, "missing", ops.TailNow); id != "0-0" {
		t.Fatalf("now on a missing stream: %q", id)
	}
	if id, _ := ops.StartID(ctx, c, "s", "2"); id != "2-0" {
		t.Fatalf("from 2: %q", id)
	}
	if _, err := ops.StartID(ctx, c, "s", "x"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("from x: %v", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		for i := 4; i <= 6; i++ {
			c.XAdd(ctx, &redis.XAddArgs{Stream: "s", ID: fmt.Sprintf("%d-0", i), Values: []string{"n", fmt.Sprint(i)}})
		}
	}()
	var got []string
	stop := errors.New("stop")
	err := ops.Tail(ctx, c, "s", ops.TailOptions{After: "1-0", Filter: map[string]string{}}, func(e ops.Entry) error {
		got = append(got, e.ID)
		if len(got) == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(got, []string{"2-0", "3-0", "4-0", "5-0", "6-0"}) {
		t.Fatalf("tail: %v %v", got, err)
	}
}

func TestFindPartitioned(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	for _, s := range []string{"orders", "order-lines", "other"} {
		if _, err := midstream.EnsurePartitions(ctx, c, s, midstream.Partitions{Count: 2}); err != nil {
			t.Fatal(err)
		}
	}
	c.Set(ctx, midstream.PartitionLayoutKey("a-string"), "v", 0) // not a hash: not a layout
	got, truncated, err := ops.FindPartitioned(ctx, c, "order*", 100)
	if err != nil || truncated || !slices.Equal(got, []string{"order-lines", "orders"}) {
		t.Fatalf("order*: %v %t %v", got, truncated, err)
	}
	got, truncated, _ = ops.FindPartitioned(ctx, c, "", 2)
	if !truncated || !slices.Equal(got, []string{"order-lines", "orders"}) {
		t.Fatalf("limit 2: %v %t", got, truncated)
	}
	parts, err := ops.StoredPartitions(ctx, c, "orders")
	if err != nil || len(parts) != 2 || parts[1].Stream != midstream.DefaultPartitionKey("orders", 1, 2) ||
		parts[1].DeadLetterKey != deadletter.Key(parts[1].Stream) || parts[1].DeadLetters != 0 {
		t.Fatalf("partitions of orders: %+v %v", parts, err)
	}
	if parts, err := ops.StoredPartitions(ctx, c, "plain"); parts != nil || err != nil {
		t.Fatalf("partitions of a plain stream: %+v %v", parts, err)
	}
}
