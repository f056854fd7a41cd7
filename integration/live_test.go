package integration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/live"
)

// collector receives a subscription's entries in a goroutine.
type collector struct {
	mu   sync.Mutex
	ids  []string
	done chan struct{}
}

// collect receives from sub until C is closed, calling slow (if not nil)
// after each entry.
func collect(sub *live.Subscription, slow func(n int)) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for e := range sub.C() {
			c.mu.Lock()
			c.ids = append(c.ids, e.ID)
			n := len(c.ids)
			c.mu.Unlock()
			if slow != nil {
				slow(n)
			}
		}
	}()
	return c
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func (c *collector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

// compareDelivery checks got against want: same IDs, in order, once each.
// It returns the number of missing entries and of duplicates.
func compareDelivery(t *testing.T, want, got []string) (gaps, dups int) {
	t.Helper()
	seen := make(map[string]int, len(got))
	var prev midstream.ID
	for i, id := range got {
		seen[id]++
		if seen[id] > 1 {
			dups++
		}
		pid, err := midstream.ParseID(id)
		if err != nil {
			t.Fatalf("delivered ID %q: %v", id, err)
		}
		if i > 0 && pid.Compare(prev) <= 0 {
			t.Errorf("entry %d: %s delivered after %s", i, id, prev)
		}
		prev = pid
	}
	for _, id := range want {
		if seen[id] == 0 {
			gaps++
		}
	}
	if len(got)-dups != len(want)-gaps {
		t.Errorf("%d distinct entries delivered, %d expected ones among them", len(got)-dups, len(want)-gaps)
	}
	return gaps, dups
}

// publishBurst adds n entries in pipelines of 100, each followed by one
// PUBLISH on channel, calling between(i) before the batch starting at i.
func publishBurst(t *testing.T, rdb redis.UniversalClient, stream, channel string, n int, between func(i int)) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 100 {
		if between != nil {
			between(start)
		}
		pipe := rdb.Pipeline()
		var cmds []*redis.StringCmd
		for i := start; i < min(start+100, n); i++ {
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", strconv.Itoa(i)}}))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("publishing: %v", err)
		}
		for _, c := range cmds {
			ids = append(ids, c.Val())
		}
		if err := rdb.Publish(ctx, channel, ids[len(ids)-1]).Err(); err != nil {
			t.Fatalf("PUBLISH: %v", err)
		}
	}
	return ids
}

// TestLiveSurvivesCutConnectionsDuringBurst cuts the subscriber's
// connections (all of them through a proxy, and its pub/sub connection with
// CLIENT KILL) several times during a burst of 10,000 entries, with a
// receiver that is slow at times: every entry arrives, in order, once.
func TestLiveSurvivesCutConnectionsDuringBurst(t *testing.T) {
	srv := redistest.Start(t)
	proxy := srv.StartProxy(t)
	sc := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr() })
	stream, channel := srv.Key("burst"), srv.Key("burst:new")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sub, err := live.Subscribe(ctx, sc, stream, channel, live.Now,
		live.WithPageSize(128), live.WithPollInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	col := collect(sub, func(n int) {
		if n%1000 == 0 { // a slow receiver now and then: back-pressure
			time.Sleep(20 * time.Millisecond)
		}
	})

	const n = 10_000
	cuts := 0
	ids := publishBurst(t, srv.Client, stream, channel, n, func(i int) {
		switch {
		case i > 0 && i%2000 == 0:
			proxy.Cut()
			cuts++
		case i%2000 == 1000:
			if err := srv.Client.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Errorf("CLIENT KILL TYPE pubsub: %v", err)
			}
			cuts++
		}
	})
	waitFor(t, time.Minute, "10,000 entries", func() bool { return col.len() >= n })
	// Let the subscription run on a little: a late duplicate would show.
	time.Sleep(500 * time.Millisecond)
	cancel()
	<-col.done
	if err := sub.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
	got := col.snapshot()
	gaps, dups := compareDelivery(t, ids, got)
	t.Logf("sent %d, received %d, gaps %d, duplicates %d, connection cuts %d", len(ids), len(got), gaps, dups, cuts)
	if gaps != 0 || dups != 0 || len(got) != n {
		t.Fatalf("sent %d, received %d, gaps %d, duplicates %d", len(ids), len(got), gaps, dups)
	}
}

// TestLiveResumesFromID starts from an entry in the middle: the entries
// after it arrive, then the new ones.
func TestLiveResumesFromID(t *testing.T) {
	srv := redistest.Start(t)
	stream, channel := srv.Key("resume"), srv.Key("resume:new")
	ids := publishN(t, srv.Client, stream, 0, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := live.Subscribe(ctx, srv.Client, stream, channel, ids[499], live.WithPageSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	col := collect(sub, nil)
	more := publishBurst(t, srv.Client, stream, channel, 300, nil)
	want := append(append([]string(nil), ids[500:]...), more...)
	waitFor(t, 30*time.Second, "800 entries", func() bool { return col.len() >= len(want) })
	if got := sub.Last(); got != more[len(more)-1] {
		t.Errorf("Last = %s, want %s", got, more[len(more)-1])
	}
	cancel()
	<-col.done
	got := col.snapshot()
	gaps, dups := compareDelivery(t, want, got)
	if gaps != 0 || dups != 0 || len(got) != len(want) {
		t.Fatalf("want %d, received %d, gaps %d, duplicates %d", len(want), len(got), gaps, dups)
	}
}

// TestLiveFromNow delivers only entries added after Subscribe returned.
func TestLiveFromNow(t *testing.T) {
	srv := redistest.Start(t)
	stream, channel := srv.Key("now"), srv.Key("now:new")
	publishN(t, srv.Client, stream, 0, 50)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := live.Subscribe(ctx, srv.Client, stream, channel, live.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	col := collect(sub, nil)
	want := publishBurst(t, srv.Client, stream, channel, 20, nil)
	waitFor(t, 30*time.Second, "20 entries", func() bool { return col.len() >= len(want) })
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-col.done
	got := col.snapshot()
	if gaps, dups := compareDelivery(t, want, got); gaps != 0 || dups != 0 || len(got) != len(want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

// TestLiveWithoutNotifications delivers entries nobody PUBLISHed about, at
// the next poll.
func TestLiveWithoutNotifications(t *testing.T) {
	srv := redistest.Start(t)
	stream := srv.Key("quiet")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := live.Subscribe(ctx, srv.Client, stream, srv.Key("quiet:new"), live.Beginning,
		live.WithPollInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	col := collect(sub, nil)
	want := publishN(t, srv.Client, stream, 0, 300)
	waitFor(t, 30*time.Second, "300 entries", func() bool { return col.len() >= len(want) })
	cancel()
	<-col.done
	got := col.snapshot()
	if gaps, dups := compareDelivery(t, want, got); gaps != 0 || dups != 0 {
		t.Fatalf("gaps %d, duplicates %d", gaps, dups)
	}
}

// TestLiveCancelEndsEverything: cancelling ctx, even while delivery is
// blocked on a receiver that stopped receiving, closes C, leaves Err nil
// and ends every goroutine; so does Close and breaking out of Entries.
func TestLiveCancelEndsEverything(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream, channel := srv.Key("cancel"), srv.Key("cancel:new")
	publishN(t, srv.Client, stream, 0, 10)

	ctx, cancel := context.WithCancel(context.Background())
	sub, err := live.Subscribe(ctx, srv.Client, stream, channel, live.Beginning)
	if err != nil {
		t.Fatal(err)
	}
	<-sub.C() // one received; the next delivery blocks
	cancel()
	select {
	case <-sub.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("subscription still running 30s after cancel")
	}
	for range sub.C() { // closed: drains at most nothing
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err after cancel = %v", err)
	}

	sub2, err := live.Subscribe(context.Background(), srv.Client, stream, channel, live.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub2.Close(); err != nil {
		t.Fatal(err)
	}

	n := 0
	for e, err := range live.Entries(context.Background(), srv.Client, stream, channel, live.Beginning) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 || e.ID == "" {
			break
		}
	}
	if n != 3 {
		t.Fatalf("iterated %d entries, want 3", n)
	}
}

// TestLiveWrongTypeEndsWithError: a key that is not a stream is an error
// retrying cannot fix; after a few attempts the subscription ends and
// reports it, wrapping midstream.ErrMisconfigured.
func TestLiveWrongTypeEndsWithError(t *testing.T) {
	srv := redistest.Start(t)
	key := srv.Key("notastream")
	if err := srv.Client.Set(context.Background(), key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sub, err := live.Subscribe(context.Background(), srv.Client, key, srv.Key("c"), live.Beginning)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("subscription on a string key still running")
	}
	if err := sub.Err(); !errors.Is(err, midstream.ErrMisconfigured) || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		t.Fatalf("Err = %v, want WRONGTYPE wrapped in midstream.ErrMisconfigured", err)
	}
}
