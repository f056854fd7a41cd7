package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/trim"
)

// trimAdd adds one entry per ID ("*" for a generated one) and returns the
// IDs Redis gave them.
func trimAdd(t *testing.T, rdb redis.UniversalClient, stream string, ids ...string) []string {
	t.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		got, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: id, Values: []string{"i", strconv.Itoa(i)}}).Result()
		if err != nil {
			t.Fatalf("XADD %s: %v", id, err)
		}
		out[i] = got
	}
	return out
}

// trimIDs returns the IDs in the stream, in order.
func trimIDs(t *testing.T, rdb redis.UniversalClient, stream string) []string {
	t.Helper()
	ms, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// trimRead delivers the next n entries to consumer c of group and returns
// their IDs.
func trimRead(t *testing.T, rdb redis.UniversalClient, stream, group, c string, n int64) []string {
	t.Helper()
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: group, Consumer: c, Streams: []string{stream, ">"}, Count: n, Block: -1,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("XREADGROUP: %v", err)
	}
	var ids []string
	for _, s := range res {
		for _, m := range s.Messages {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func trimAck(t *testing.T, rdb redis.UniversalClient, stream, group string, ids ...string) {
	t.Helper()
	if len(ids) == 0 {
		return
	}
	if err := rdb.XAck(context.Background(), stream, group, ids...).Err(); err != nil {
		t.Fatalf("XACK: %v", err)
	}
}

func trimGroup(t *testing.T, rdb redis.UniversalClient, stream, group, start string) {
	t.Helper()
	if err := rdb.XGroupCreateMkStream(context.Background(), stream, group, start).Err(); err != nil {
		t.Fatalf("XGROUP CREATE %s %s: %v", group, start, err)
	}
}

func trimLen(t *testing.T, rdb redis.UniversalClient, stream string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		t.Fatalf("XLEN: %v", err)
	}
	return n
}

// nodeMaxEntries returns the server's stream-node-max-entries.
func nodeMaxEntries(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	cfg, err := rdb.ConfigGet(context.Background(), "stream-node-max-entries").Result()
	if err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	n, err := strconv.ParseInt(cfg["stream-node-max-entries"], 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("stream-node-max-entries %q: %v", cfg["stream-node-max-entries"], err)
	}
	return n
}

func trimOld(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%d-0", i+1)
	}
	return ids
}

func trimGenerated(n int) []string { return slices.Repeat([]string{"*"}, n) }

// TestTrimPolicies: one pass of each policy on real Redis, with and without
// groups: what it trims, what it keeps and which group it names.
func TestTrimPolicies(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	type held struct {
		group  string
		until  int // index of the entry in the stream as built
		reason trim.Reason
	}
	cases := []struct {
		name    string
		entries []string                                                      // IDs to add ("*": generated)
		groups  func(t *testing.T, rdb *redis.Client, s string, ids []string) // sets groups up
		policy  trim.Policy
		trimmed int   // entries trimmed: the first ones
		heldN   int64 // Result.HeldBack
		held    []held
		more    bool
		lost    int64
	}{
		{name: "maxlen, no groups", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10}, trimmed: 40},
		{name: "maxlen above length", entries: trimGenerated(5), policy: trim.Policy{MaxLen: 10}, trimmed: 0},
		{name: "maxage, no groups", entries: append(trimOld(20), trimGenerated(5)...), policy: trim.Policy{MaxAge: time.Hour}, trimmed: 20},
		{name: "maxage keeps recent entries", entries: trimGenerated(5), policy: trim.Policy{MaxAge: time.Hour}, trimmed: 0},
		{name: "maxage and maxlen: maxlen stricter", entries: append(trimOld(20), trimGenerated(5)...), policy: trim.Policy{MaxAge: time.Hour, MaxLen: 3}, trimmed: 22},
		{name: "maxage and maxlen: maxage stricter", entries: append(trimOld(20), trimGenerated(5)...), policy: trim.Policy{MaxAge: time.Hour, MaxLen: 24}, trimmed: 20},
		{name: "limit bounds an exact pass", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10, Limit: 15}, trimmed: 15, more: true},
		{name: "limit bounds a maxage pass", entries: trimOld(30), policy: trim.Policy{MaxAge: time.Hour, Limit: 7}, trimmed: 7, more: true},
		{
			name: "group mid-stream holds back its undelivered entries", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "slow", "0")
				trimAck(t, rdb, s, "slow", trimRead(t, rdb, s, "slow", "c", 20)...)
			},
			trimmed: 20, heldN: 20, held: []held{{"slow", 20, trim.ReasonUndelivered}},
		},
		{
			name: "pending entry holds back", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "slow", "0")
				read := trimRead(t, rdb, s, "slow", "c", 30)
				trimAck(t, rdb, s, "slow", read[:12]...)
				trimAck(t, rdb, s, "slow", read[13:]...) // ids[12] stays pending
			},
			trimmed: 12, heldN: 28, held: []held{{"slow", 12, trim.ReasonPending}},
		},
		{
			name: "group at 0-0 holds everything", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "new", "0")
			},
			trimmed: 0, heldN: 40, held: []held{{"new", 0, trim.ReasonUndelivered}},
		},
		{
			name: "group at the end holds nothing", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "tail", "$")
			},
			trimmed: 40,
		},
		{
			name: "the slowest of three groups sets the cutoff", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "fast", "0")
				trimAck(t, rdb, s, "fast", trimRead(t, rdb, s, "fast", "c", 50)...)
				trimGroup(t, rdb, s, "medium", "0")
				trimAck(t, rdb, s, "medium", trimRead(t, rdb, s, "medium", "c", 20)...)
				trimGroup(t, rdb, s, "slow", "0")
				read := trimRead(t, rdb, s, "slow", "c", 30)
				trimAck(t, rdb, s, "slow", read[:5]...)
				trimAck(t, rdb, s, "slow", read[6:]...)
			},
			trimmed: 5, heldN: 35, held: []held{{"slow", 5, trim.ReasonPending}, {"medium", 20, trim.ReasonUndelivered}},
		},
		{
			name: "unsafe trims past a lagging group", entries: trimGenerated(50), policy: trim.Policy{MaxLen: 10, Unsafe: true},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "slow", "0")
				trimAck(t, rdb, s, "slow", trimRead(t, rdb, s, "slow", "c", 20)[:15]...) // 15..19 pending
			},
			trimmed: 40, lost: 25,
		},
		{
			// A double holds integers exactly only up to 2^53: 2^53+1 and
			// 2^53 compare equal as numbers, and a sequence at 2^64-1 rolls
			// over to the next millisecond.
			name:    "IDs compared and incremented as 64-bit integers",
			entries: []string{"9007199254740992-5", "9007199254740993-0", "9007199254740993-18446744073709551615", "9007199254740994-0", "9007199254740994-1"},
			policy:  trim.Policy{MaxLen: 1},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "g", "9007199254740993-18446744073709551615")
			},
			trimmed: 3, heldN: 1, held: []held{{"g", 3, trim.ReasonUndelivered}},
		},
		{
			name:    "pending ID above 2^53",
			entries: []string{"9007199254740992-0", "9007199254740993-0", "9007199254740994-0"},
			policy:  trim.Policy{MaxLen: 1},
			groups: func(t *testing.T, rdb *redis.Client, s string, ids []string) {
				trimGroup(t, rdb, s, "g", "0")
				read := trimRead(t, rdb, s, "g", "c", 3)
				trimAck(t, rdb, s, "g", read[0], read[2])
			},
			trimmed: 1, heldN: 1, held: []held{{"g", 1, trim.ReasonPending}},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := srv.Key("policy:" + strconv.Itoa(i))
			ids := trimAdd(t, srv.Client, stream, tc.entries...)
			if tc.groups != nil {
				tc.groups(t, srv.Client, stream, ids)
			}
			res, err := trim.Trim(ctx, srv.Client, stream, tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if got := trimIDs(t, srv.Client, stream); !slices.Equal(got, ids[tc.trimmed:]) {
				t.Fatalf("left %v, want %v", got, ids[tc.trimmed:])
			}
			if res.Trimmed != int64(tc.trimmed) || res.Len != int64(len(ids)-tc.trimmed) {
				t.Errorf("Trimmed %d Len %d, want %d and %d", res.Trimmed, res.Len, tc.trimmed, len(ids)-tc.trimmed)
			}
			if res.HeldBack != tc.heldN || res.More != tc.more || res.Lost != tc.lost {
				t.Errorf("HeldBack %d More %v Lost %d, want %d %v %d", res.HeldBack, res.More, res.Lost, tc.heldN, tc.more, tc.lost)
			}
			var want []trim.HeldBack
			for _, h := range tc.held {
				want = append(want, trim.HeldBack{Group: h.group, Until: ids[h.until], Reason: h.reason})
			}
			if !slices.Equal(res.HeldBackBy, want) {
				t.Errorf("HeldBackBy %+v, want %+v", res.HeldBackBy, want)
			}
			// The cutoff: everything below it went, everything at or above stayed.
			cut, err := midstream.ParseID(res.Cutoff)
			if err != nil {
				t.Fatalf("Cutoff %q: %v", res.Cutoff, err)
			}
			for j, id := range ids {
				p, _ := midstream.ParseID(id)
				if below := p.Compare(cut) < 0; below != (j < tc.trimmed) {
					t.Errorf("entry %d (%s) below the cutoff %s: %v, but trimmed: %v", j, id, res.Cutoff, below, j < tc.trimmed)
				}
			}
		})
	}
}

// TestTrimMissingAndWrongType: a missing stream is left alone, a key of
// another type is an error, a bad policy is refused before anything is sent.
func TestTrimMissingAndWrongType(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	res, err := trim.Trim(ctx, srv.Client, srv.Key("missing"), trim.Policy{MaxLen: 1})
	if err != nil || res.Trimmed != 0 || res.Len != 0 {
		t.Fatalf("missing stream: %+v %v", res, err)
	}
	str := srv.Key("string")
	srv.Client.Set(ctx, str, "x", 0)
	if _, err := trim.Trim(ctx, srv.Client, str, trim.Policy{MaxLen: 1}); err == nil {
		t.Fatal("trimming a string: no error")
	}
	if _, err := trim.Trim(ctx, srv.Client, str, trim.Policy{}); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("empty policy: %v", err)
	}
}

// TestTrimApproxWithinBound: approximate passes trim whole nodes only: they
// never trim an entry an exact pass would keep, and keep at most
// stream-node-max-entries − 1 more than it.
func TestTrimApproxWithinBound(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	node := nodeMaxEntries(t, srv.Client)
	cases := []struct {
		n      int
		policy trim.Policy
		group  int // entries a group "g" has read and acked; -1: no group
	}{
		{1000, trim.Policy{MaxLen: 100, Approx: true}, -1},
		{1234, trim.Policy{MaxLen: 17, Approx: true}, -1},
		{5000, trim.Policy{MaxLen: 999, Approx: true, Limit: 10_000}, -1},
		{1000, trim.Policy{MaxLen: 100, Approx: true, Limit: 250}, -1},
		{1000, trim.Policy{MaxLen: 1, Approx: true}, 555},
		{1000, trim.Policy{MaxLen: 10, Approx: true}, 0},
		{3000, trim.Policy{MaxLen: 50, Approx: true, Limit: 2000}, 1999},
	}
	var totalSurplus int64
	for i, tc := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			stream := srv.Key("approx:" + strconv.Itoa(i))
			ids := publishN(t, srv.Client, stream, 0, tc.n)
			if tc.group >= 0 {
				trimGroup(t, srv.Client, stream, "g", "0")
				if tc.group > 0 {
					trimAck(t, srv.Client, stream, "g", trimRead(t, srv.Client, stream, "g", "c", int64(tc.group))...)
				}
			}
			res, err := trim.Trim(ctx, srv.Client, stream, tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			// What an exact pass would trim: every entry below the cutoff.
			exact := 0
			cut, _ := midstream.ParseID(res.Cutoff)
			for _, id := range ids {
				if p, _ := midstream.ParseID(id); p.Compare(cut) < 0 {
					exact++
				}
			}
			if limit := tc.policy.Limit; limit == 0 && exact > trim.DefaultLimit || limit > 0 && int64(exact) > limit {
				t.Fatalf("cutoff %s is past the work limit: %d entries below it", res.Cutoff, exact)
			}
			got := trimIDs(t, srv.Client, stream)
			if !slices.Equal(got, ids[res.Trimmed:]) {
				t.Fatalf("an approximate pass did not trim a prefix of the stream")
			}
			surplus := int64(exact) - res.Trimmed
			if surplus < 0 || surplus > node-1 {
				t.Fatalf("trimmed %d, exact would trim %d: surplus %d outside [0, %d]", res.Trimmed, exact, surplus, node-1)
			}
			if tc.group >= 0 && res.Trimmed > int64(tc.group) {
				t.Fatalf("trimmed %d entries, the group had read only %d", res.Trimmed, tc.group)
			}
			totalSurplus += surplus
			t.Logf("%d entries, %+v: trimmed %d, exact %d, surplus %d (node size %d)", tc.n, tc.policy, res.Trimmed, exact, surplus, node)
		})
	}
	if totalSurplus == 0 {
		t.Log("no approximate pass kept more than an exact one would have")
	}
}

// TestTrimGroupCreatedLater: a group created from 0 after trims reads every
// entry that was not trimmed before it existed, and from then on nothing it
// still needs is trimmed.
func TestTrimGroupCreatedLater(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb, stream := srv.Client, srv.Key("later")
	p := trim.Policy{MaxLen: 10}
	publishN(t, rdb, stream, 0, 100)
	if res, err := trim.Trim(ctx, rdb, stream, p); err != nil || res.Trimmed != 90 {
		t.Fatalf("before the group: %+v %v", res, err)
	}
	before := trimIDs(t, rdb, stream)
	trimGroup(t, rdb, stream, "late", "0")
	added := publishN(t, rdb, stream, 100, 50)
	want := append(slices.Clone(before), added...)

	// kept fails unless every entry the group has not acked is in the stream.
	kept := func(round int, read []string) {
		t.Helper()
		left, need := trimIDs(t, rdb, stream), want[len(read):]
		if len(left) < len(need) || !slices.Equal(left[len(left)-len(need):], need) {
			t.Fatalf("round %d: the stream lost entries the group needs: %d left, %d needed", round, len(left), len(need))
		}
	}
	var read []string
	for round := 0; len(read) < len(want); round++ {
		res, err := trim.Trim(ctx, rdb, stream, p)
		if err != nil {
			t.Fatal(err)
		}
		kept(round, read)
		if len(want)-len(read) > 10 && (len(res.HeldBackBy) != 1 || res.HeldBackBy[0].Group != "late" ||
			res.HeldBackBy[0].Until != want[len(read)] || res.HeldBackBy[0].Reason != trim.ReasonUndelivered) {
			t.Fatalf("round %d: HeldBackBy %+v, want the group at %s", round, res.HeldBackBy, want[len(read)])
		}
		got := trimRead(t, rdb, stream, "late", "c", 13)
		if len(got) == 0 {
			t.Fatalf("round %d: nothing to read, read %d of %d", round, len(read), len(want))
		}
		// Trim between delivery and ack: the pending entries are kept.
		if _, err := trim.Trim(ctx, rdb, stream, p); err != nil {
			t.Fatal(err)
		}
		kept(round, read)
		trimAck(t, rdb, stream, "late", got...)
		read = append(read, got...)
	}
	if !slices.Equal(read, want) {
		t.Fatalf("the late group read %d entries, want the %d not trimmed before it existed", len(read), len(want))
	}
	res, err := trim.Trim(ctx, rdb, stream, p)
	if err != nil || res.Len != 10 || len(res.HeldBackBy) != 0 {
		t.Fatalf("once caught up: %+v %v, want 10 left and nothing held back", res, err)
	}
}

// TestTrimUnsafeLosesPending documents the risk of Unsafe: entries a group
// holds pending are trimmed, and its consumer finds them deleted.
func TestTrimUnsafeLosesPending(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb, stream := srv.Client, srv.Key("unsafe")
	publishN(t, rdb, stream, 0, 30)
	trimGroup(t, rdb, stream, "g", "0")
	pending := trimRead(t, rdb, stream, "g", "crashed", 10) // never acked
	res, err := trim.Trim(ctx, rdb, stream, trim.Policy{MaxLen: 5, Unsafe: true})
	if err != nil || res.Trimmed != 25 || res.Lost != 25 {
		t.Fatalf("unsafe pass: %+v %v, want 25 trimmed, all lost to the group", res, err)
	}
	l := newLedger()
	c := newConsumer(t, rdb, stream, "g", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.ID)
		return nil
	}), consumer.WithMinIdle(consumer.MinMinIdle), consumer.WithClaimInterval(10*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "the pending entries reclaimed", func() bool { return c.Stats().Deleted == int64(len(pending)) })
	waitFor(t, time.Minute, "the rest handled", func() bool { return l.distinct() == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, id := range pending {
		if l.count(id) != 0 {
			t.Fatalf("trimmed entry %s reached the handler", id)
		}
	}
	t.Logf("unsafe: %d trimmed, %d of them pending or undelivered in the group; the consumer found %d deleted while pending and never saw the other %d",
		res.Trimmed, res.Lost, c.Stats().Deleted, res.Lost-c.Stats().Deleted)
}

// TestTrimmerPattern: a Trimmer finds streams by pattern (and by name),
// leaves other keys alone, and Run returns on cancellation with nothing
// left running.
func TestTrimmerPattern(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	rdb := srv.Client
	var streams []string
	for i := range 25 {
		s := srv.Key("pat:" + strconv.Itoa(i))
		publishN(t, rdb, s, 0, 30)
		streams = append(streams, s)
	}
	named := srv.Key("named")
	publishN(t, rdb, named, 0, 30)
	other := srv.Key("pat:not-a-stream")
	rdb.Set(ctx, other, "x", 0)
	var mu sync.Mutex
	seen := map[string]bool{}
	tr, err := trim.New(rdb, trim.Policy{MaxLen: 3},
		trim.WithPattern(srv.Key("pat:*")), trim.WithStreams(named),
		trim.WithInterval(5*time.Millisecond), trim.WithMaxStreamsPerTick(4),
		trim.WithReport(func(r trim.Result, err error) {
			if err != nil {
				t.Errorf("pass on %s: %v", r.Stream, err)
			}
			mu.Lock()
			seen[r.Stream] = true
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(rctx) }()
	waitFor(t, time.Minute, "every stream trimmed", func() bool {
		for _, s := range append(streams, named) {
			if trimLen(t, rdb, s) != 3 {
				return false
			}
		}
		return true
	})
	if err := tr.Run(ctx); !errors.Is(err, trim.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if v, err := rdb.Get(ctx, other).Result(); err != nil || v != "x" {
		t.Fatalf("a non-stream key matching the pattern: %q %v", v, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[other] {
		t.Fatal("the trimmer visited a key that is not a stream")
	}
	if s := tr.Stats(); s.Trimmed != 26*27 || s.Errors != 0 {
		t.Fatalf("stats %+v, want %d trimmed and no errors", s, 26*27)
	}
}

// TestTrimmerNeverLosesUnreadWork is the acceptance test: producers
// publish continuously; a fast group and a lagging group (slow handlers,
// some failing so that their entries stay pending and are reclaimed)
// consume; two Trimmers trim aggressively, one by length (approximate) and
// one by age (exact, everything older than a millisecond). Every entry
// published must be handled by both groups: 0 lost.
func TestTrimmerNeverLosesUnreadWork(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	rdb, stream := srv.Client, srv.Key("retention")
	const producers, perProducer = 4, 5000
	trimGroup(t, rdb, stream, "fast", "0")
	trimGroup(t, rdb, stream, "slow", "0")

	// Trimmers, with a report that sums what they did.
	var trimmed, heldBack, lost, passes atomic.Int64
	var hmu sync.Mutex
	holders := map[string]int{} // "group/reason" -> passes
	var peakHeld int64          // most entries one pass held back
	report := func(r trim.Result, err error) {
		if err != nil {
			t.Errorf("trim pass: %v", err)
			return
		}
		passes.Add(1)
		trimmed.Add(r.Trimmed)
		heldBack.Add(r.HeldBack)
		lost.Add(r.Lost)
		hmu.Lock()
		peakHeld = max(peakHeld, r.HeldBack)
		for _, h := range r.HeldBackBy {
			holders[h.Group+"/"+string(h.Reason)]++
		}
		hmu.Unlock()
	}
	tctx, stopTrimmers := context.WithCancel(ctx)
	defer stopTrimmers()
	var twg sync.WaitGroup
	var trimmers []*trim.Trimmer
	for _, p := range []trim.Policy{
		{MaxLen: 100, Approx: true, Limit: 500},
		{MaxAge: time.Millisecond},
	} {
		tr, err := trim.New(rdb, p, trim.WithStreams(stream), trim.WithInterval(5*time.Millisecond),
			trim.WithJitter(5*time.Millisecond), trim.WithReport(report))
		if err != nil {
			t.Fatal(err)
		}
		trimmers = append(trimmers, tr)
		twg.Add(1)
		go func() {
			defer twg.Done()
			if err := tr.Run(tctx); err != nil {
				t.Errorf("Trimmer.Run: %v", err)
			}
		}()
	}

	// Consumers. The slow group handles entries one or two at a time and
	// fails the first delivery of every 37th entry: those stay pending until
	// the reclaim loop delivers them again.
	fast, slow := newLedger(), newLedger()
	var slowFailed atomic.Int64
	var cs []*consumer.Consumer
	var stops []func() error
	for range 2 {
		c := newConsumer(t, rdb, stream, "fast", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
			fast.record(m.ID)
			return nil
		}), consumer.WithConcurrency(8))
		cs = append(cs, c)
		stops = append(stops, runConsumer(t, c))
	}
	c := newConsumer(t, rdb, stream, "slow", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		time.Sleep(200 * time.Microsecond)
		if n, _ := strconv.Atoi(m.Field("n")); n%37 == 0 && m.Deliveries == 1 {
			slowFailed.Add(1)
			return errors.New("transient failure")
		}
		slow.record(m.ID)
		return nil
	}), consumer.WithConcurrency(2), consumer.WithBatchSize(20),
		consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond),
		consumer.WithRetryBackoff(100*time.Millisecond))
	cs = append(cs, c)
	stops = append(stops, runConsumer(t, c))

	// Producers.
	var pmu sync.Mutex
	var published []string
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for start := 0; start < perProducer; start += 25 {
				pipe := rdb.Pipeline()
				var cmds []*redis.StringCmd
				for i := start; i < start+25; i++ {
					n := strconv.Itoa(p*perProducer + i)
					cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", n}}))
				}
				if _, err := pipe.Exec(ctx); err != nil {
					t.Errorf("publishing: %v", err)
					return
				}
				pmu.Lock()
				for _, c := range cmds {
					published = append(published, c.Val())
				}
				pmu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	pwg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	lastID := slices.MaxFunc(published, func(a, b string) int {
		x, _ := midstream.ParseID(a)
		y, _ := midstream.ParseID(b)
		return x.Compare(y)
	})
	lenAfterPublishing := trimLen(t, rdb, stream)

	// Wait until both groups have nothing left to deliver and nothing
	// pending. Entries trimmed before delivery are never delivered, so this
	// ends whether or not some were lost, and the ledgers then tell.
	groupDone := func(g string) bool {
		infos, err := rdb.XInfoGroups(ctx, stream).Result()
		if err != nil {
			t.Fatalf("XINFO GROUPS: %v", err)
		}
		for _, in := range infos {
			if in.Name != g {
				continue
			}
			if in.Pending != 0 {
				return false
			}
			if in.LastDeliveredID == lastID {
				return true
			}
			next, err := rdb.XRangeN(ctx, stream, "("+in.LastDeliveredID, "+", 1).Result()
			if err != nil {
				t.Fatalf("XRANGE: %v", err)
			}
			return len(next) == 0
		}
		t.Fatalf("group %s gone", g)
		return false
	}
	waitFor(t, 5*time.Minute, "both groups done", func() bool { return groupDone("fast") && groupDone("slow") })
	// Once the lagging group caught up, the trimmers bring the stream back
	// within the policy (MaxLen 100, approximate).
	node := nodeMaxEntries(t, rdb)
	waitFor(t, time.Minute, "the stream trimmed once the groups caught up", func() bool {
		return trimLen(t, rdb, stream) < 100+node
	})
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatalf("consumer Run: %v", err)
		}
	}
	stopTrimmers()
	twg.Wait()

	lostFast, lostSlow := 0, 0
	for _, id := range published {
		if fast.count(id) == 0 {
			lostFast++
		}
		if slow.count(id) == 0 {
			lostSlow++
		}
	}
	var deleted int64
	for _, c := range cs {
		deleted += c.Stats().Deleted
	}
	hmu.Lock()
	byPolicy := make([]int64, len(trimmers))
	for i, tr := range trimmers {
		byPolicy[i] = tr.Stats().Trimmed
	}
	t.Logf("published %d; fast group handled %d distinct (%d calls), slow group %d distinct (%d successful calls, %d failed first deliveries); "+
		"%d trim passes trimmed %d entries (by length %d, by age %d) and held back %d (sum over passes; at most %d in one pass) for %v; "+
		"stream length when publishing ended %d, at the end %d; deleted while pending %d; lost: fast %d, slow %d",
		len(published), fast.distinct(), fast.total.Load(), slow.distinct(), slow.total.Load(), slowFailed.Load(),
		passes.Load(), trimmed.Load(), byPolicy[0], byPolicy[1], heldBack.Load(), peakHeld, holders, lenAfterPublishing, trimLen(t, rdb, stream),
		deleted, lostFast, lostSlow)
	hmu.Unlock()
	if lostFast != 0 || lostSlow != 0 || deleted != 0 || lost.Load() != 0 {
		t.Fatalf("entries lost to trimming: fast %d, slow %d, deleted while pending %d, Result.Lost %d", lostFast, lostSlow, deleted, lost.Load())
	}
	if fast.distinct() != len(published) || slow.distinct() != len(published) {
		t.Fatalf("handled %d and %d distinct entries of %d", fast.distinct(), slow.distinct(), len(published))
	}
	// The test means something only if the trimmers both trimmed and held
	// back for the lagging group, and some of its handler calls failed.
	if trimmed.Load() == 0 || heldBack.Load() == 0 || holders["slow/pending"]+holders["slow/undelivered"] == 0 || slowFailed.Load() == 0 {
		t.Fatalf("the run did not exercise trimming: trimmed %d, held back %d, holders %v, failures %d",
			trimmed.Load(), heldBack.Load(), holders, slowFailed.Load())
	}
	var st trim.Stats
	for _, tr := range trimmers {
		s := tr.Stats()
		st.Trimmed += s.Trimmed
		st.HeldBack += s.HeldBack
		st.Errors += s.Errors
	}
	if st.Trimmed != trimmed.Load() || st.HeldBack != heldBack.Load() || st.Errors != 0 {
		t.Fatalf("Stats %+v disagree with the reports (trimmed %d, held back %d)", st, trimmed.Load(), heldBack.Load())
	}
}

// TestTrimmerMisconfiguredUser: a Trimmer whose ACL user may not do its
// work (run the trim script, run XTRIM inside it, or SCAN for its pattern)
// stops: Run returns an error wrapping midstream.ErrMisconfigured and the
// Redis error once the refusal has persisted for a bounded number of
// passes. Before, Run logged a warning and retried every interval forever
// (returning nil when its ctx ended), so a missing permission went
// unnoticed while the streams grew.
func TestTrimmerMisconfiguredUser(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Backend == "url" {
		t.Skip("creates ACL users: needs a server of its own")
	}
	cases := []struct {
		name    string
		rules   []any // ACL SETUSER rules besides on, >secret, ~*, &*, +@all
		pattern bool  // find the stream by pattern rather than by name
		want    string
	}{
		// Redis 7.0: NOPERM this user has no permissions to run the 'evalsha' command
		{"no scripts", []any{"-evalsha", "-eval"}, false, "NOPERM"},
		// Redis 7.0: ERR The user executing the script can't run this
		// command or subcommand script: <sha>, on @user_script:1.
		{"no XTRIM in the script", []any{"-xtrim"}, false, "can't run this command"},
		// Redis 7.0: NOPERM this user has no permissions to run the 'scan' command
		{"no SCAN", []any{"-scan"}, true, "NOPERM"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx := context.Background()
			user := fmt.Sprintf("trimmer%d", i)
			setuser := append([]any{"ACL", "SETUSER", user, "on", ">secret", "~*", "&*", "+@all"}, tc.rules...)
			if err := srv.Client.Do(ctx, setuser...).Err(); err != nil {
				t.Fatal(err)
			}
			stream := srv.Key(fmt.Sprintf("acl%d:s", i))
			publishN(t, srv.Client, stream, 0, 20)
			rdb := srv.NewClient(func(o *redis.Options) { o.Username, o.Password = user, "secret" })
			var failed atomic.Int64
			where := trim.WithStreams(stream)
			if tc.pattern {
				where = trim.WithPattern(srv.Key(fmt.Sprintf("acl%d:*", i)))
			}
			tr, err := trim.New(rdb, trim.Policy{MaxLen: 5}, where, trim.WithInterval(5*time.Millisecond),
				trim.WithReport(func(_ trim.Result, err error) {
					if err != nil {
						failed.Add(1)
					}
				}))
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err = tr.Run(rctx)
			if err == nil {
				t.Fatalf("Run returned nil when its ctx ended, after %d failed passes (stats %+v): the trimmer retried silently",
					failed.Load(), tr.Stats())
			}
			if !errors.Is(err, midstream.ErrMisconfigured) {
				t.Fatalf("Run: %v, want an error wrapping midstream.ErrMisconfigured", err)
			}
			var rerr redis.Error
			if !errors.As(err, &rerr) || !strings.Contains(rerr.Error(), tc.want) {
				t.Fatalf("Run: %v, want it to wrap the Redis error (%q)", err, tc.want)
			}
			if rctx.Err() != nil {
				t.Fatal("Run returned only when its ctx ended")
			}
			if s := tr.Stats(); s.Errors < 1 || s.Errors > 10 {
				t.Fatalf("stats %+v: want a bounded number of failures before Run returns", s)
			}
			if n := trimLen(t, srv.Client, stream); n != 20 {
				t.Fatalf("the stream has %d entries, want 20 (nothing trimmed)", n)
			}
			t.Logf("Run: %v (stats %+v)", err, tr.Stats())
		})
	}
}
