package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/live"
	"github.com/midstream-go/midstream/producer"
	"github.com/midstream-go/midstream/trim"
)

// failoverLog records what the clients of TestClusterFailover saw, with
// times, for the checks and the report.
type failoverLog struct {
	mu        sync.Mutex
	durable   map[string]time.Time // IDs Publish returned without error, durable producers, by call start
	plain     map[string]time.Time // the same, plain producers
	done      map[string]time.Time // when those calls returned
	written   map[string]time.Time // IDs of entries written but not confirmed by a replica
	handled   map[string]int       // handler calls by entry ID
	firstCall map[string]time.Time // first handler call by entry ID
	pubErrs   map[string]int       // publish errors by kind
	lastErr   error
}

func (l *failoverLog) published(durable bool, id string, start time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.done[id] = time.Now()
	}
	switch {
	case err == nil && durable:
		l.durable[id] = start
	case err == nil:
		l.plain[id] = start
	case errors.Is(err, producer.ErrNotDurable):
		l.pubErrs["not durable"]++
		l.written[id] = start
		l.lastErr = err
	default:
		l.pubErrs["failed"]++
		l.lastErr = err
	}
}

func (l *failoverLog) handle(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handled[id]++
	if _, ok := l.firstCall[id]; !ok {
		l.firstCall[id] = time.Now()
	}
}

// firstAfter returns when the first of the calls in started that started
// after t returned, or the zero time.
func (l *failoverLog) firstAfter(started map[string]time.Time, t time.Time) time.Time {
	var first time.Time
	for id, at := range started {
		if at.After(t) && (first.IsZero() || l.done[id].Before(first)) {
			first = l.done[id]
		}
	}
	return first
}

// TestClusterFailover kills (SIGKILL) or freezes (SIGSTOP: a host that
// stops answering without closing its connections) the master that holds a
// stream while durable and plain producers, two consumers of a group, a
// live subscription and a Trimmer with a pattern work on it, with clients
// on go-redis's default settings. The replica takes over; the old master is
// restarted or resumed as soon as it has (it rejoins as a replica, as a
// supervisor would bring it back). A frozen master that comes back answers
// the commands queued meanwhile before it learns it was demoted: those
// writes are lost with the resync, which is what durable publish reports.
// Every loop must resume on its own within 10 s; no entry a durable
// publish reported written may be lost; every entry in the stream after the
// failover must reach the group's handler and the live subscriber, with
// nothing left pending; the Trimmer must report the failure and trim
// again. It logs the recovery times, and the lost and duplicated counts.
func TestClusterFailover(t *testing.T) {
	for _, fault := range []string{"kill", "freeze"} {
		t.Run(fault, func(t *testing.T) { clusterFailover(t, fault) })
	}
}

func clusterFailover(t *testing.T, fault string) {
	srv := redistest.Start(t)
	if srv.Cluster == nil {
		t.Skip("needs the cluster backend (MIDSTREAM_REDIS_BACKEND=cluster)")
	}
	ctx := context.Background()
	stream, group := srv.Key("{orders}"), "g"
	trimmed := srv.Key("trim:{orders}") // the same master as stream
	createGroup(t, srv.Client, stream, group)
	l := &failoverLog{durable: map[string]time.Time{}, plain: map[string]time.Time{},
		done: map[string]time.Time{}, written: map[string]time.Time{},
		handled: map[string]int{}, firstCall: map[string]time.Time{}, pubErrs: map[string]int{}}

	run, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	defer wg.Wait()

	// Producers: two durable (one replica must have each entry), two plain.
	pubClient := srv.NewUniversalClient()
	var stopPub atomic.Bool
	var pubWG sync.WaitGroup
	for i := range 4 {
		durable := i < 2
		var opts []producer.Option
		if durable {
			opts = append(opts, producer.WithDurable(1, time.Second))
		}
		p := newProducer[map[string]string](t, pubClient, stream, opts...)
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			for n := 0; !stopPub.Load(); n++ {
				// Each call gives up after 2 s: with a master that stops
				// answering, a call waits until then.
				cctx, cancel := context.WithTimeout(run, 2*time.Second)
				start := time.Now()
				id, err := p.Publish(cctx, map[string]string{"p": strconv.Itoa(i), "n": strconv.Itoa(n)})
				cancel()
				l.published(durable, id, start, err)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				} else {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}

	// Consumers: two in this process, each with its own client.
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.handle(m.ID)
		return nil
	})
	var stops []func() error
	for i := range 2 {
		c := newConsumer(t, srv.NewUniversalClient(), stream, group, h, consumer.WithName(fmt.Sprint("c", i)),
			consumer.WithMinIdle(2*time.Second), consumer.WithClaimInterval(500*time.Millisecond))
		stops = append(stops, runConsumer(t, c))
	}

	// A live subscription from the beginning.
	var liveMu sync.Mutex
	var liveIDs []string
	sub, err := live.Subscribe(run, srv.NewUniversalClient(), stream, srv.Key("{orders}:new"), live.Beginning,
		live.WithPollInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range sub.C() {
			liveMu.Lock()
			liveIDs = append(liveIDs, e.ID)
			liveMu.Unlock()
		}
	}()

	// A Trimmer finding its streams by pattern, one of them on the master
	// to be killed, and a writer filling it.
	var trimMu sync.Mutex
	var trimFailures []time.Time
	var trimOK []time.Time
	tr, err := trim.New(srv.NewUniversalClient(), trim.Policy{MaxLen: 100}, trim.WithPattern(srv.Key("trim:*")),
		trim.WithInterval(200*time.Millisecond), trim.WithReport(func(r trim.Result, err error) {
			trimMu.Lock()
			defer trimMu.Unlock()
			if err != nil {
				trimFailures = append(trimFailures, time.Now())
			} else if r.Trimmed > 0 {
				trimOK = append(trimOK, time.Now())
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	trimErr := make(chan error, 1)
	go func() { trimErr <- tr.Run(run) }()
	trimWriter := srv.NewUniversalClient()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for run.Err() == nil {
			_ = trimWriter.XAdd(run, &redis.XAddArgs{Stream: trimmed, Values: []string{"k", "v"}}).Err()
			time.Sleep(2 * time.Millisecond)
		}
	}()

	// Let everything run, then kill the stream's master.
	time.Sleep(2 * time.Second)
	l.mu.Lock()
	before := len(l.durable) + len(l.plain)
	l.mu.Unlock()
	if before == 0 {
		t.Fatalf("nothing published before the kill: %v", l.lastErr)
	}
	killed, err := srv.Cluster.MasterOf(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	killAt := time.Now()
	breakNode, mend := srv.Cluster.Kill, srv.Cluster.Restart
	if fault == "freeze" {
		breakNode, mend = srv.Cluster.Freeze, srv.Cluster.Thaw
	}
	if err := breakNode(killed); err != nil {
		t.Fatal(err)
	}
	promoted, err := srv.Cluster.WaitFailover(ctx, stream, killed)
	if err != nil {
		t.Fatal(err)
	}
	failoverAt := time.Now()
	if err := mend(killed); err != nil {
		t.Fatal(err)
	}
	restartAt := time.Now()
	t.Logf("%s of master %s; replica %s promoted after %s; old master back after %s",
		fault, killed, promoted, failoverAt.Sub(killAt).Round(time.Millisecond), restartAt.Sub(killAt).Round(time.Millisecond))

	// Recovery: each kind of client works again after the kill.
	const limit = 10 * time.Second
	var plainBack, durableBack, handledBack, trimBack time.Time
	deadline := killAt.Add(limit + 5*time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		plainBack = l.firstAfter(l.plain, killAt)
		durableBack = l.firstAfter(l.durable, killAt)
		var newIDs []string
		for id, at := range l.plain {
			if at.After(killAt) {
				newIDs = append(newIDs, id)
			}
		}
		handledBack = time.Time{}
		for _, id := range newIDs {
			if at, ok := l.firstCall[id]; ok && (handledBack.IsZero() || at.Before(handledBack)) {
				handledBack = at
			}
		}
		l.mu.Unlock()
		trimMu.Lock()
		for _, at := range trimOK {
			if at.After(failoverAt) {
				trimBack = at
				break
			}
		}
		trimMu.Unlock()
		if !plainBack.IsZero() && !durableBack.IsZero() && !handledBack.IsZero() && !trimBack.IsZero() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	report := func(what string, at time.Time) time.Duration {
		if at.IsZero() {
			t.Errorf("%s: not recovered %s after the kill", what, deadline.Sub(killAt))
			return 0
		}
		d := at.Sub(killAt)
		t.Logf("recovery after the %s: %-28s %s", fault, what, d.Round(time.Millisecond))
		if d > limit {
			t.Errorf("%s recovered after %s, more than %s", what, d.Round(time.Millisecond), limit)
		}
		return d
	}
	report("plain publish", plainBack)
	report("durable publish", durableBack)
	report("consumer handles new entries", handledBack)
	report("trimmer trims again", trimBack)

	// Run on for a while, then stop the producers and let the group and
	// the live subscription catch up.
	time.Sleep(2 * time.Second)
	stopPub.Store(true)
	pubWG.Wait()
	entries, err := srv.Client.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	inStream := make(map[string]bool, len(entries))
	for _, e := range entries {
		inStream[e.ID] = true
	}
	caughtUp := func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		liveMu.Lock()
		defer liveMu.Unlock()
		for _, e := range entries {
			if l.handled[e.ID] == 0 {
				return false
			}
		}
		return len(liveIDs) > 0 && compareIDs(liveIDs[len(liveIDs)-1], entries[len(entries)-1].ID) >= 0 &&
			pendingCount(t, srv.Client, stream, group) == 0
	}
	for wait := time.Now().Add(30 * time.Second); !caughtUp() && time.Now().Before(wait); {
		time.Sleep(50 * time.Millisecond)
	}
	l.mu.Lock()
	var unhandled []string
	for _, e := range entries {
		if l.handled[e.ID] == 0 {
			unhandled = append(unhandled, e.ID)
		}
	}
	l.mu.Unlock()
	if len(unhandled) > 0 {
		groups, _ := srv.Client.XInfoGroups(ctx, stream).Result()
		pending, _ := srv.Client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 1000}).Result()
		var sample []string
		for _, id := range unhandled[:min(len(unhandled), 10)] {
			ms, _ := midstream.ParseID(id)
			sample = append(sample, fmt.Sprintf("%s (added %s before the kill)", id, killAt.Sub(ms.Time()).Round(time.Millisecond)))
		}
		t.Errorf("%d entries of the stream never reached the handler: %v; group %+v; %d pending", len(unhandled), sample, groups, len(pending))
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Errorf("%d entries still pending at the end", n)
	}
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	}
	stopAll()
	if err := <-trimErr; err != nil {
		t.Errorf("Trimmer.Run: %v", err)
	}
	<-sub.Done()

	l.mu.Lock()
	defer l.mu.Unlock()
	lost := func(ids map[string]time.Time) (n int, sample []string) {
		for id, at := range ids {
			if !inStream[id] {
				n++
				if len(sample) < 5 {
					sample = append(sample, fmt.Sprintf("%s (publish started %s after the fault)", id, at.Sub(killAt).Round(time.Millisecond)))
				}
			}
		}
		return n, sample
	}
	lostDurable, sampleDurable := lost(l.durable)
	lostPlain, samplePlain := lost(l.plain)
	// A duplicate may only come from state the killed master had not
	// passed on to its replica (XACK and XREADGROUP replicate
	// asynchronously): an entry first handled before the promotion.
	dups := 0
	for id, n := range l.handled {
		if n > 1 {
			dups += n - 1
			if first := l.firstCall[id]; !first.Before(failoverAt) {
				t.Errorf("entry %s handled %d times, first %s after the promotion", id, n, first.Sub(failoverAt).Round(time.Millisecond))
			}
		}
	}
	lostWritten := 0
	for id := range l.written {
		if !inStream[id] {
			lostWritten++
		}
	}
	t.Logf("published: %d durable, %d plain acknowledged; errors %v (last: %v)", len(l.durable), len(l.plain), l.pubErrs, l.lastErr)
	t.Logf("lost: %d of %d durable %v, %d of %d plain %v, %d of %d written but not confirmed", lostDurable, len(l.durable), sampleDurable,
		lostPlain, len(l.plain), samplePlain, lostWritten, len(l.written))
	t.Logf("handled %d entries, %d duplicate handler calls; stream holds %d", len(l.handled), dups, len(entries))
	if lostDurable > 0 {
		t.Errorf("%d entries acknowledged as durable are not in the stream: %v", lostDurable, sampleDurable)
	}
	// Live: every entry of the stream, in order, once.
	liveMu.Lock()
	defer liveMu.Unlock()
	seen := map[string]bool{}
	for i, id := range liveIDs {
		if seen[id] {
			t.Errorf("live delivered %s twice", id)
		}
		seen[id] = true
		if i > 0 && compareIDs(liveIDs[i-1], id) >= 0 {
			t.Errorf("live delivered %s after %s", id, liveIDs[i-1])
		}
	}
	missing := 0
	for _, e := range entries {
		if !seen[e.ID] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("live missed %d entries of the stream", missing)
	}
	trimMu.Lock()
	defer trimMu.Unlock()
	if fault == "kill" && !slices.ContainsFunc(trimFailures, func(at time.Time) bool { return at.After(killAt) }) {
		t.Error("the Trimmer's report never saw a failure after the kill")
	}
	if n := xlen(t, srv.Client, trimmed); n > 100+200 {
		t.Errorf("trimmed stream holds %d entries after the failover, want about 100", n)
	}
}

// compareIDs compares two entry IDs.
func compareIDs(a, b string) int {
	x, errA := midstream.ParseID(a)
	y, errB := midstream.ParseID(b)
	if errA != nil || errB != nil {
		panic(fmt.Sprint(a, b))
	}
	return x.Compare(y)
}
