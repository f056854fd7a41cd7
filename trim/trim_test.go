package trim_test

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
	"github.com/midstream-go/midstream/trim"
)

// These tests run on miniredis, which matches Redis for what they use:
// XINFO GROUPS and XPENDING inside a script, TIME, XTRIM MINID (exact; it
// ignores "~", so approximate trimming is tested in package integration).

func newClient(t *testing.T) (*redis.Client, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	return c, mr
}

func add(t *testing.T, c *redis.Client, stream string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: id, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Fatalf("XADD %s: %v", id, err)
		}
	}
}

func left(t *testing.T, c *redis.Client, stream string) []string {
	t.Helper()
	var ids []string
	for _, m := range c.XRange(context.Background(), stream, "-", "+").Val() {
		ids = append(ids, m.ID)
	}
	return ids
}

func seq(from, to int) []string {
	var ids []string
	for i := from; i <= to; i++ {
		ids = append(ids, fmt.Sprintf("%d-0", i))
	}
	return ids
}

func TestTrimMaxLenAndGroups(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	add(t, c, "s", seq(1, 20)...)
	c.XGroupCreate(ctx, "s", "g", "0")
	msgs := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Count: 8}).Val()[0].Messages
	for _, m := range msgs[:6] {
		c.XAck(ctx, "s", "g", m.ID)
	}
	// 7-0 and 8-0 are pending: the pass stops there.
	res, err := trim.Trim(ctx, c, "s", trim.Policy{MaxLen: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := trim.Result{
		Stream: "s", Trimmed: 6, Cutoff: "7-0", PolicyCutoff: "16-0", HeldBack: 9, Len: 14,
		HeldBackBy: []trim.HeldBack{{Group: "g", Until: "7-0", Reason: trim.ReasonPending}},
	}
	if !equal(res, want) {
		t.Fatalf("got %+v\nwant %+v", res, want)
	}
	if got := left(t, c, "s"); !slices.Equal(got, seq(7, 20)) {
		t.Fatalf("left %v", got)
	}
	// Acked: the group now needs what it has not been delivered.
	c.XAck(ctx, "s", "g", "7-0", "8-0")
	res, _ = trim.Trim(ctx, c, "s", trim.Policy{MaxLen: 5})
	if res.Trimmed != 2 || res.Cutoff != "8-1" || len(res.HeldBackBy) != 1 || res.HeldBackBy[0] != (trim.HeldBack{Group: "g", Until: "9-0", Reason: trim.ReasonUndelivered}) {
		t.Fatalf("after the acks: %+v", res)
	}
	// Unsafe ignores the group and says what it took from it.
	res, _ = trim.Trim(ctx, c, "s", trim.Policy{MaxLen: 5, Unsafe: true})
	if res.Trimmed != 7 || res.Lost != 7 || len(res.HeldBackBy) != 0 || !slices.Equal(left(t, c, "s"), seq(16, 20)) {
		t.Fatalf("unsafe: %+v, left %v", res, left(t, c, "s"))
	}
}

func TestTrimMaxAgeOnServerClock(t *testing.T) {
	c, mr := newClient(t)
	add(t, c, "s", "1000-0", "2000-0", "3000-0", "4000-0", "5000-0", "5000-1", "6000-0")
	mr.SetTime(time.UnixMilli(10_000))
	res, err := trim.Trim(context.Background(), c, "s", trim.Policy{MaxAge: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Trimmed != 4 || res.PolicyCutoff != "5000-0" || !slices.Equal(left(t, c, "s"), []string{"5000-0", "5000-1", "6000-0"}) {
		t.Fatalf("%+v, left %v", res, left(t, c, "s"))
	}
	// With MaxLen too, the stricter bound wins.
	res, _ = trim.Trim(context.Background(), c, "s", trim.Policy{MaxAge: 5 * time.Second, MaxLen: 1})
	if res.Trimmed != 2 || !slices.Equal(left(t, c, "s"), []string{"6000-0"}) {
		t.Fatalf("%+v, left %v", res, left(t, c, "s"))
	}
}

// TestTrimLargeIDs: IDs are compared and incremented as 64-bit integers,
// not as Lua numbers (doubles, exact only up to 2^53).
func TestTrimLargeIDs(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	add(t, c, "s", "9007199254740992-0", "9007199254740993-0", "9007199254740993-18446744073709551615", "9007199254740994-0", "9007199254740995-0")
	c.XGroupCreate(ctx, "s", "g", "9007199254740993-18446744073709551615")
	res, err := trim.Trim(ctx, c, "s", trim.Policy{MaxLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cutoff != "9007199254740994-0" || res.Trimmed != 3 {
		t.Fatalf("%+v", res)
	}
	c.XGroupDestroy(ctx, "s", "g") // miniredis has no XGROUP SETID
	c.XGroupCreate(ctx, "s", "g", "18446744073709551615-18446744073709551614")
	add(t, c, "s", "18446744073709551615-18446744073709551615")
	res, _ = trim.Trim(ctx, c, "s", trim.Policy{MaxLen: 1})
	if res.Cutoff != "18446744073709551615-18446744073709551615" || res.Trimmed != 2 {
		t.Fatalf("%+v", res)
	}
}

func TestTrimLimit(t *testing.T) {
	c, _ := newClient(t)
	add(t, c, "s", seq(1, 100)...)
	for i, want := range []int64{30, 30, 30, 0} {
		res, err := trim.Trim(context.Background(), c, "s", trim.Policy{MaxLen: 10, Limit: 30})
		if err != nil {
			t.Fatal(err)
		}
		if res.Trimmed != want || res.More != (i < 2) {
			t.Fatalf("pass %d: %+v, want %d trimmed", i, res, want)
		}
	}
	if n := c.XLen(context.Background(), "s").Val(); n != 10 {
		t.Fatalf("%d left", n)
	}
}

func TestTrimEmptyAndMissing(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	res, err := trim.Trim(ctx, c, "missing", trim.Policy{MaxLen: 1})
	if err != nil || res.Trimmed != 0 || res.Cutoff != "0-0" {
		t.Fatalf("%+v %v", res, err)
	}
	c.XGroupCreateMkStream(ctx, "empty", "g", "$")
	if res, err := trim.Trim(ctx, c, "empty", trim.Policy{MaxLen: 1}); err != nil || res.Len != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	c.Set(ctx, "str", "x", 0)
	if _, err := trim.Trim(ctx, c, "str", trim.Policy{MaxLen: 1}); err == nil {
		t.Fatal("a string key: no error")
	}
}

func equal(a, b trim.Result) bool {
	return a.Stream == b.Stream && a.Trimmed == b.Trimmed && a.Cutoff == b.Cutoff && a.PolicyCutoff == b.PolicyCutoff &&
		a.HeldBack == b.HeldBack && a.More == b.More && a.Lost == b.Lost && a.Len == b.Len && slices.Equal(a.HeldBackBy, b.HeldBackBy)
}

// TestPreviewTrimsNothing: Preview reports what the same Trim would do, and
// leaves the stream alone.
func TestPreviewTrimsNothing(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	add(t, c, "s", seq(1, 20)...)
	c.XGroupCreate(ctx, "s", "g", "0")
	msgs := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Count: 8}).Val()[0].Messages
	for _, m := range msgs[:6] {
		c.XAck(ctx, "s", "g", m.ID)
	}
	want := trim.Result{
		Stream: "s", Trimmed: 6, Cutoff: "7-0", PolicyCutoff: "16-0", HeldBack: 9, Len: 14,
		HeldBackBy: []trim.HeldBack{{Group: "g", Until: "7-0", Reason: trim.ReasonPending}},
	}
	for range 2 {
		res, err := trim.Preview(ctx, c, "s", trim.Policy{MaxLen: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !equal(res, want) {
			t.Fatalf("got %+v\nwant %+v", res, want)
		}
		if got := left(t, c, "s"); !slices.Equal(got, seq(1, 20)) {
			t.Fatalf("preview trimmed: left %v", got)
		}
	}
	res, err := trim.Trim(ctx, c, "s", trim.Policy{MaxLen: 5})
	if err != nil || !equal(res, want) {
		t.Fatalf("trim after preview: %+v, %v", res, err)
	}
	res, err = trim.Preview(ctx, c, "s", trim.Policy{MaxLen: 5, Unsafe: true})
	if err != nil || res.Trimmed != 9 || res.Lost != 9 || res.Len != 5 || len(left(t, c, "s")) != 14 {
		t.Fatalf("unsafe preview: %+v, %v, left %v", res, err, left(t, c, "s"))
	}
	if _, err := trim.Preview(ctx, c, "s", trim.Policy{}); err == nil {
		t.Fatal("empty policy accepted")
	}
}

func TestTrimPartitionedArguments(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	add(t, c, "plain", "1-0")
	for name, f := range map[string]func(context.Context, redis.UniversalClient, string, trim.Policy) ([]trim.Result, error){
		"TrimPartitioned": trim.TrimPartitioned, "PreviewPartitioned": trim.PreviewPartitioned,
	} {
		if _, err := f(ctx, nil, "s", trim.Policy{MaxLen: 1}); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("%s nil client: %v", name, err)
		}
		if _, err := f(ctx, c, "", trim.Policy{MaxLen: 1}); !errors.Is(err, midstream.ErrInvalidStream) {
			t.Errorf("%s empty stream: %v", name, err)
		}
		if _, err := f(ctx, c, "s", trim.Policy{}); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("%s no bound: %v", name, err)
		}
		// A plain stream: no layout.
		if res, err := f(ctx, c, "plain", trim.Policy{MaxLen: 1}); !errors.Is(err, midstream.ErrNoStream) || res != nil {
			t.Errorf("%s plain stream: %v %v", name, res, err)
		}
	}
	// A partition not created yet is left alone, like a missing stream.
	parts, err := midstream.EnsurePartitions(ctx, c, "o", midstream.Partitions{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	add(t, c, parts[0], seq(1, 5)...)
	res, err := trim.TrimPartitioned(ctx, c, "o", trim.Policy{MaxLen: 2})
	if err != nil || len(res) != 2 || res[0].Stream != parts[0] || res[0].Trimmed != 3 || res[0].Len != 2 ||
		res[1].Stream != parts[1] || res[1].Trimmed != 0 || res[1].Len != 0 {
		t.Fatalf("TrimPartitioned: %+v %v", res, err)
	}
	if got := left(t, c, parts[0]); !slices.Equal(got, seq(4, 5)) {
		t.Fatalf("partition 0 keeps %v", got)
	}
}
