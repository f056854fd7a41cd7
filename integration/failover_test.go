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
	// The same by entry: its ID and the producer and sequence number in
	// it. A frozen master that comes back runs the XADDs queued meanwhile
	// before it learns of its demotion; such an entry, lost with the
	// resync, can have the ID of another one the new master added in the
	// same millisecond: handling both is not handling one entry twice.
	byEntry      map[string]int
	firstByEntry map[string]time.Time
	pubErrs      map[string]int // publish errors by kind
	lastErr      error
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

func (l *failoverLog) handle(m *consumer.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.handled[m.ID]++
	if _, ok := l.firstCall[m.ID]; !ok {
		l.firstCall[m.ID] = now
	}
	k := m.ID + "/" + m.Field("p") + "/" + m.Field("n")
	l.byEntry[k]++
	if _, ok := l.firstByEntry[k]; !ok {
		l.firstByEntry[k] = now
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
// stream, or fails it over by hand (CLUSTER FAILOVER on its replica), while durable and plain producers, two consumers of a group, a
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
	for _, fault := range []string{"kill", "freeze", "manual"} {
		t.Run(fault, func(t *testing.T) { clusterFailover(t, fault) })
	}
}

func clusterFailover(t *testing.T, fault string) {
	srv := redistest.Start(t)
	if srv.Cluster == nil {
		t.Skip("needs the cluster backend (MIDSTREAM_REDIS_BACKEND=cluster)")
	}
	stream := srv.Key("{orders}")
	env := failoverEnv{fault: fault, admin: srv.Client, key: srv.Key, durableReplicas: 1,
		newClient:   func() redis.UniversalClient { return srv.NewUniversalClient() },
		master:      func(ctx context.Context) (string, error) { return srv.Cluster.MasterOf(ctx, stream) },
		breakMaster: func(_ context.Context, addr string) error { return srv.Cluster.Kill(addr) },
		waitFailover: func(ctx context.Context, old string) (string, error) {
			return srv.Cluster.WaitFailover(ctx, stream, old)
		},
		mend: func(_ context.Context, addr string) error { return srv.Cluster.Restart(addr) },
	}
	switch fault {
	case "freeze":
		env.breakMaster = func(_ context.Context, addr string) error { return srv.Cluster.Freeze(addr) }
		env.mend = func(_ context.Context, addr string) error { return srv.Cluster.Thaw(addr) }
	case "manual":
		env.breakMaster = srv.Cluster.FailoverFrom
		env.mend = nil // the old master follows the new one by itself
	}
	runFailover(t, env)
}

// failoverEnv is what runFailover needs of a deployment: clients, and
// how to break the stream's master and wait for its replacement.
type failoverEnv struct {
	// fault names the fault, for logs: "kill" (the Trimmer must report
	// a failure), "freeze" or "failover".
	fault string
	// admin is a client for the checks after the fact.
	admin redis.UniversalClient
	// newClient returns a new client for one worker (closed at the end).
	newClient func() redis.UniversalClient
	// key returns name made unique to the test (keeping its hash tag).
	key func(name string) string
	// master returns the address of the master that holds the stream.
	master func(ctx context.Context) (string, error)
	// breakMaster breaks the master at addr (kill, freeze, or a
	// failover away from it).
	breakMaster func(ctx context.Context, addr string) error
	// waitFailover waits until a master other than old holds the stream
	// and returns its address.
	waitFailover func(ctx context.Context, old string) (string, error)
	// mend brings the old master back (as a replica) once another one
	// took over; nil when the deployment does it itself.
	mend func(ctx context.Context, addr string) error
	// durableReplicas is the durable producers' WithDurable replicas.
	durableReplicas int
	// fromPromotion measures recovery by calls started after the promotion
	// rather than after the fault: with a failover that leaves the old
	// master running, calls keep succeeding there until the clients hear
	// of the switch.
	fromPromotion bool
	// promotions returns when each promotion the deployment made since
	// the start was seen, or nil: more than the one the fault caused
	// (a master failed over again because it stalled on a loaded
	// machine) move the point before which lost acknowledgements may
	// cause duplicates.
	promotions func() []time.Time
	// limit bounds the recovery of every loop; zero means 10 s.
	limit time.Duration
	// durableLimit bounds the durable publishers' recovery when it must
	// wait for more than the promotion (a replica to follow the new
	// master); zero means limit.
	durableLimit time.Duration
}

// runFailover breaks the master that holds a stream (env.breakMaster)
// while durable and plain producers, two consumers of a group, a live
// subscription and a Trimmer with a pattern work on it, waits for the
// promotion and mends the old master; then checks that every loop resumed
// on its own, that no entry a durable publish reported written is lost,
// that every entry of the stream reached the group's handler (duplicates
// only of entries first handled before the promotion) and the live
// subscriber (once, in order), with the group's state intact; and logs
// the recovery times and the lost and duplicated counts.
func runFailover(t *testing.T, env failoverEnv) {
	ctx := context.Background()
	fault := env.fault
	stream, group := env.key("{orders}"), "g"
	trimmed := env.key("trim:{orders}") // the same master as stream
	createGroup(t, env.admin, stream, group)
	l := &failoverLog{durable: map[string]time.Time{}, plain: map[string]time.Time{},
		done: map[string]time.Time{}, written: map[string]time.Time{},
		handled: map[string]int{}, firstCall: map[string]time.Time{}, pubErrs: map[string]int{},
		byEntry: map[string]int{}, firstByEntry: map[string]time.Time{}}

	run, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	defer wg.Wait()

	// Producers: two durable (one replica must have each entry), two plain.
	pubClient := env.newClient()
	var stopPub atomic.Bool
	var pubWG sync.WaitGroup
	for i := range 4 {
		durable := i < 2
		var opts []producer.Option
		if durable {
			opts = append(opts, producer.WithDurable(env.durableReplicas, time.Second))
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
		l.handle(m)
		return nil
	})
	var stops []func() error
	for i := range 2 {
		c := newConsumer(t, env.newClient(), stream, group, h, consumer.WithName(fmt.Sprint("c", i)),
			consumer.WithMinIdle(2*time.Second), consumer.WithClaimInterval(500*time.Millisecond))
		stops = append(stops, runConsumer(t, c))
	}

	// A live subscription from the beginning.
	var liveMu sync.Mutex
	var liveIDs []string
	sub, err := live.Subscribe(run, env.newClient(), stream, env.key("{orders}:new"), live.Beginning,
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
	tr, err := trim.New(env.newClient(), trim.Policy{MaxLen: 100}, trim.WithPattern(env.key("trim:*")),
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
	trimWriter := env.newClient()
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
	killed, err := env.master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killAt := time.Now()
	if err := env.breakMaster(ctx, killed); err != nil {
		t.Fatal(err)
	}
	promoted, err := env.waitFailover(ctx, killed)
	if err != nil {
		t.Fatal(err)
	}
	failoverAt := time.Now()
	back := "left to the deployment"
	if env.mend != nil {
		if err := env.mend(ctx, killed); err != nil {
			t.Fatal(err)
		}
		back = "back after " + time.Since(killAt).Round(time.Millisecond).String()
	}
	t.Logf("%s of master %s; %s promoted after %s; old master %s",
		fault, killed, promoted, failoverAt.Sub(killAt).Round(time.Millisecond), back)

	// Recovery: each kind of client works again after the kill: a call
	// started after it (or after the promotion) succeeds.
	from := killAt
	if env.fromPromotion {
		from = failoverAt
	}
	limit := 10 * time.Second
	if env.limit > 0 {
		limit = env.limit
	}
	durableLimit := limit
	if env.durableLimit > 0 {
		durableLimit = env.durableLimit
	}
	var plainBack, durableBack, handledBack, trimBack time.Time
	deadline := killAt.Add(max(limit, durableLimit) + 5*time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		plainBack = l.firstAfter(l.plain, from)
		durableBack = l.firstAfter(l.durable, from)
		var newIDs []string
		for id, at := range l.plain {
			if at.After(from) {
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
	report := func(what string, at time.Time, limit time.Duration) time.Duration {
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
	report("plain publish", plainBack, limit)
	report("durable publish", durableBack, durableLimit)
	report("consumer handles new entries", handledBack, limit)
	report("trimmer trims again", trimBack, limit)

	// Run on for a while, then stop the producers and let the group and
	// the live subscription catch up.
	time.Sleep(2 * time.Second)
	stopPub.Store(true)
	pubWG.Wait()
	entries, err := env.admin.XRange(ctx, stream, "-", "+").Result()
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
			pendingCount(t, env.admin, stream, group) == 0
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
		groups, _ := env.admin.XInfoGroups(ctx, stream).Result()
		pending, _ := env.admin.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 1000}).Result()
		var sample []string
		for _, id := range unhandled[:min(len(unhandled), 10)] {
			ms, _ := midstream.ParseID(id)
			sample = append(sample, fmt.Sprintf("%s (added %s before the kill)", id, killAt.Sub(ms.Time()).Round(time.Millisecond)))
		}
		t.Errorf("%d entries of the stream never reached the handler: %v; group %+v; %d pending", len(unhandled), sample, groups, len(pending))
	}
	if n := pendingCount(t, env.admin, stream, group); n != 0 {
		t.Errorf("%d entries still pending at the end", n)
	}
	// The group survived with its cursor at the end of the stream: it
	// delivered the last entry and nothing past it.
	groups, err := env.admin.XInfoGroups(ctx, stream).Result()
	if err != nil {
		t.Fatalf("XINFO GROUPS: %v", err)
	}
	if len(groups) != 1 || groups[0].Name != group || groups[0].LastDeliveredID != entries[len(entries)-1].ID {
		t.Errorf("groups after the %s: %+v; want %q at the last entry %s", fault, groups, group, entries[len(entries)-1].ID)
	} else {
		t.Logf("group %q: last delivered %s (the stream's last entry), %d consumers, %d pending", group,
			groups[0].LastDeliveredID, groups[0].Consumers, groups[0].Pending)
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
	// The first publish started after the fault (or the promotion) whose
	// entry was kept: under SENTINEL FAILOVER the old master accepts writes
	// for a while, so the first success may be an entry the failover then
	// loses.
	kept := func(ids map[string]time.Time) string {
		var first time.Time
		for id, at := range ids {
			if at.After(from) && inStream[id] && (first.IsZero() || l.done[id].Before(first)) {
				first = l.done[id]
			}
		}
		if first.IsZero() {
			return "none"
		}
		return first.Sub(killAt).Round(time.Millisecond).String()
	}
	t.Logf("first publish after the %s whose entry was kept returned after: plain %s, durable %s", fault, kept(l.plain), kept(l.durable))
	lostDurable, sampleDurable := lost(l.durable)
	lostPlain, samplePlain := lost(l.plain)
	// A duplicate may only come from state the killed master had not
	// passed on to its replica (XACK and XREADGROUP replicate
	// asynchronously): an entry first handled before the (last) promotion.
	lastPromotion := failoverAt
	if env.promotions != nil {
		seen := env.promotions()
		if len(seen) > 1 {
			t.Logf("%d promotions, the last %s after the %s: the master was failed over again",
				len(seen), seen[len(seen)-1].Sub(killAt).Round(time.Millisecond), fault)
		}
		for _, at := range seen {
			if at.After(lastPromotion) {
				lastPromotion = at
			}
		}
	}
	dups := 0
	for k, n := range l.byEntry {
		if n > 1 {
			dups += n - 1
			if first := l.firstByEntry[k]; !first.Before(lastPromotion) {
				t.Errorf("entry %s (ID/producer/sequence) handled %d times, first %s after the promotion", k, n, first.Sub(lastPromotion).Round(time.Millisecond))
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
	if fault == "manual" {
		// CLUSTER FAILOVER holds the master's writes until the replica
		// has them all, then the old master redirects (MOVED): not even a
		// plain write may be lost, and no publish may fail (a durable
		// one may find the replica not yet following: not durable).
		if lostPlain > 0 {
			t.Errorf("%d plain entries lost by a manual failover: %v", lostPlain, samplePlain)
		}
		if n := l.pubErrs["failed"]; n > 0 {
			t.Errorf("%d publishes failed across a manual failover (last: %v)", n, l.lastErr)
		}
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
	if n := xlen(t, env.admin, trimmed); n > 100+200 {
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
