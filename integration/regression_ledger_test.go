package integration

// Regression tests for the consumer's ownership ledger (see DESIGN.md,
// "Delivery guarantees"): one live, healthy consumer never hands an entry to
// its handler twice, whatever its reclaim loop, its history reads, a slow
// or refused acknowledgement, a delayed or lost reply or an outage shorter
// than a crash do; a configuration error that persists ends Run with
// midstream.ErrMisconfigured instead of being retried forever.
//
// Each test names the behaviour of the consumer before the ledger that it
// catches.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// callLog records handler calls by entry ID: how many, and how many of them
// ran at the same time.
type callLog struct {
	mu         sync.Mutex
	calls      map[string]int
	running    map[string]int
	maxRunning map[string]int
	total      atomic.Int64
}

func newCallLog() *callLog {
	return &callLog{calls: map[string]int{}, running: map[string]int{}, maxRunning: map[string]int{}}
}

// begin records the start of a call for id; the function it returns
// records its end.
func (l *callLog) begin(id string) (end func()) {
	l.mu.Lock()
	l.calls[id]++
	l.running[id]++
	l.maxRunning[id] = max(l.maxRunning[id], l.running[id])
	l.mu.Unlock()
	l.total.Add(1)
	return func() {
		l.mu.Lock()
		l.running[id]--
		l.mu.Unlock()
	}
}

func (l *callLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[id]
}

func (l *callLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// repeated returns the IDs called more than once, sorted, and how many of
// them had calls running at the same time.
func (l *callLog) repeated() (ids []string, concurrent int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, n := range l.calls {
		if n > 1 {
			ids = append(ids, id)
		}
		if l.maxRunning[id] > 1 {
			concurrent++
		}
	}
	slices.Sort(ids)
	return ids, concurrent
}

// asyncRun is a Run in a goroutine, for tests that expect it to return on
// its own.
type asyncRun struct {
	cancel context.CancelFunc
	errc   chan error
	mu     sync.Mutex
	done   bool
	err    error
}

// startRun starts c.Run; it is cancelled, and waited for, when the test ends.
func startRun(t *testing.T, c *consumer.Consumer) *asyncRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &asyncRun{cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		if _, ok := r.stop(time.Minute); !ok {
			t.Errorf("consumer %s did not stop", c.Name())
		}
	})
	return r
}

// returned reports whether Run has returned, and its error.
func (r *asyncRun) returned() (error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		select {
		case r.err = <-r.errc:
			r.done = true
		default:
		}
	}
	return r.err, r.done
}

// wait waits up to limit for Run to return by itself.
func (r *asyncRun) wait(limit time.Duration) (error, bool) {
	deadline := time.Now().Add(limit)
	for {
		if err, ok := r.returned(); ok || time.Now().After(deadline) {
			return err, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels Run and waits up to limit for it to return.
func (r *asyncRun) stop(limit time.Duration) (error, bool) {
	r.cancel()
	return r.wait(limit)
}

// aclClient creates a user allowed everything but the given commands
// (rules such as "-xack") and returns a client logged in as that user. It
// skips the test on a shared server (REDIS_URL).
func aclClient(t *testing.T, srv *redistest.Server, user string, rules ...string) *redis.Client {
	t.Helper()
	if srv.Backend == "url" {
		t.Skip("creates an ACL user: needs a server of its own")
	}
	args := []any{"ACL", "SETUSER", user, "reset", "on", ">secret", "~*", "&*", "+@all"}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := srv.Client.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	return srv.NewClient(func(o *redis.Options) { o.Username, o.Password = user, "secret" })
}

// TestLedgerReclaimSkipsRunningHandler: while one consumer's handler runs,
// its entry looks idle to Redis (the test sets its idle time from outside
// with XCLAIM ... IDLE, as a lease extension that comes late would leave it).
// The consumer's own reclaim loop must not take the entry it is handling.
//
// Old behaviour caught: the reclaim loop claimed (XCLAIM to itself) and
// dispatched an entry its own process was still handling; the handler ran
// twice at once for one ID.
func TestLedgerReclaimSkipsRunningHandler(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("running"), "g"
	ids := publishN(t, srv.Client, stream, 0, 1)
	calls := newCallLog()
	started := make(chan struct{}, 10)
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		defer calls.begin(m.ID)()
		select {
		case started <- struct{}{}:
		default:
		}
		time.Sleep(1500 * time.Millisecond)
		return nil
	}), consumer.WithName("solo"), consumer.WithStart(consumer.StartBeginning),
		consumer.WithMinIdle(200*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stop := runConsumer(t, c)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("handler not called")
	}
	// For most of the handler's run, keep making the entry look idle far
	// past the minimum (JUSTID: the delivery count stays).
	until := time.Now().Add(1300 * time.Millisecond)
	for time.Now().Before(until) {
		if err := srv.Client.Do(ctx, "XCLAIM", stream, group, "solo", 0, ids[0], "IDLE", 100000, "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, 20*time.Second, "the entry acknowledged", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	calls.mu.Lock()
	n, most := calls.calls[ids[0]], calls.maxRunning[ids[0]]
	calls.mu.Unlock()
	if n != 1 || most != 1 {
		t.Errorf("entry handled %d times, up to %d at once, by its one live consumer; want once (stats %+v)", n, most, c.Stats())
	}
}

// TestLedgerUnackableEntriesNotRehandled: the consumer's user may not run
// XACK. Entries handled successfully stay pending, idle past the minimum,
// owned by the live consumer that handled them: it must not handle them
// again, must not read more than its in-flight bound while their
// acknowledgements cannot land, and Run must end with an error wrapping
// midstream.ErrMisconfigured.
//
// Old behaviour caught: the in-flight bound was released when the handler
// returned, so the consumer read all 500 entries; its reclaim loop claimed
// its own handled-but-unacknowledged entries and handled them again, over
// and over; the NOPERM of XACK was logged and retried forever. (The batch
// size is 10, so that the read loop, which reserves room for a batch while
// it blocks, leaves the reclaim loop room to claim.)
func TestLedgerUnackableEntriesNotRehandled(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("noack"), "g"
	const n, maxInFlight = 500, 50
	createGroup(t, srv.Client, stream, group)
	publishN(t, srv.Client, stream, 0, n)
	worker := aclClient(t, srv, "noack", "-xack")
	if err := worker.XAck(ctx, stream, group, "0-1").Err(); err == nil || !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("the user may run XACK (%v): the test proves nothing", err)
	}
	calls := newCallLog()
	c := newConsumer(t, worker, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		calls.begin(m.ID)()
		return nil
	}), consumer.WithName("w"), consumer.WithMaxInFlight(maxInFlight), consumer.WithBatchSize(10),
		consumer.WithMinIdle(200*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	run := startRun(t, c)

	// Wait for Run to return; once the test has failed anyway, give it a
	// few more seconds, not the whole bound.
	const limit = 30 * time.Second
	deadline := time.Now().Add(limit)
	var brokenAt time.Time
	var runErr error
	var returned bool
	for {
		if runErr, returned = run.returned(); returned {
			break
		}
		rep, _ := calls.repeated()
		if brokenAt.IsZero() && (calls.total.Load() > maxInFlight || len(rep) > 0) {
			brokenAt = time.Now()
		}
		if time.Now().After(deadline) || !brokenAt.IsZero() && time.Since(brokenAt) > 3*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep, _ := calls.repeated()
	total, distinct := calls.total.Load(), calls.distinct()
	if !returned {
		_, _ = run.stop(time.Minute)
	}
	if len(rep) > 0 {
		t.Errorf("%d entries handled more than once by their live consumer (%d handler calls for %d entries); stats %+v",
			len(rep), total, distinct, c.Stats())
	}
	if total > maxInFlight {
		t.Errorf("%d handler calls while no acknowledgement could land, want at most the in-flight bound %d", total, maxInFlight)
	}
	switch {
	case !returned:
		t.Errorf("Run still running %s after it started, with XACK refused (NOPERM); want an error wrapping ErrMisconfigured",
			time.Since(deadline.Add(-limit)).Round(time.Second))
	case !errors.Is(runErr, midstream.ErrMisconfigured):
		t.Errorf("Run returned %v, want an error wrapping ErrMisconfigured", runErr)
	}
}

// TestLedgerHistoryReadVsReclaimDelayedReplies: a consumer restarted under
// a fixed name finds ten of its own entries pending and idle past the
// minimum. Its history read (XREADGROUP from 0) and its reclaim loop both
// go after them, and every reply takes 300 ms to come back: each entry must
// still be handled once.
//
// Old behaviour caught: the history read checked what the process held
// only when its own replies had arrived, and the reclaim loop never
// checked; a claim whose reply was still on its way delivered the same
// entries a second time (half of them or more, depending on timing).
func TestLedgerHistoryReadVsReclaimDelayedReplies(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("history"), "g"
	const n = 10
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, n)
	// "w" read them and stopped without acknowledging.
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "w", Streams: []string{stream, ">"}, Count: n, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // idle past the minimum
	proxy := srv.StartProxy(t)
	proxy.DelayReplies(300 * time.Millisecond)
	via := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr() })
	calls := newCallLog()
	c := newConsumer(t, via, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		defer calls.begin(m.ID)()
		time.Sleep(50 * time.Millisecond)
		return nil
	}), consumer.WithName("w"), consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(10*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, 20*time.Second, "every entry handled and nothing pending", func() bool {
		return calls.distinct() == n && pendingCount(t, srv.Client, stream, group) == 0
	})
	time.Sleep(time.Second) // a late second delivery would show
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rep, concurrent := calls.repeated()
	if len(rep) > 0 {
		t.Errorf("%d of %d entries handled more than once by the one live consumer (%d concurrently); stats %+v",
			len(rep), n, concurrent, c.Stats())
	}
	for _, id := range ids {
		if calls.count(id) == 0 {
			t.Errorf("entry %s not handled", id)
		}
	}
}

// TestLedgerOutageWithQueuedAcks: the connection to Redis goes away (the
// proxy cuts every connection and refuses new ones) right as a batch of
// handlers return, so their acknowledgements wait to be retried, for longer
// than the minimum idle time. When Redis is back, the live consumer that
// handled them must acknowledge them, not handle them again.
//
// Old behaviour caught: entries waiting for their XACK were not covered by
// lease extension, and the reclaim loop did not skip them: after the outage
// it claimed them, idle past the minimum, before the acknowledger's backoff
// let it retry, and every one was handled a second time.
func TestLedgerOutageWithQueuedAcks(t *testing.T) {
	srv := redistest.Start(t)
	stream, group := srv.Key("outage"), "g"
	const n = 10
	const minIdle = 500 * time.Millisecond
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, n)
	proxy := srv.StartProxy(t)
	// Without go-redis's retries every attempt during the outage fails at
	// once, so the acknowledger's backoff grows as it would over a longer
	// outage (with the default retries each attempt takes about half a
	// second; it takes a failover of a minute to get there). After the
	// outage, what was queued then waits up to that backoff.
	via := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr(); o.MaxRetries = -1 })
	calls := newCallLog()
	var arrived atomic.Int64
	release := make(chan struct{})
	c := newConsumer(t, via, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		calls.begin(m.ID)()
		if arrived.Add(1) == n {
			// The whole batch is in its handlers: Redis goes away just
			// before they return and their acknowledgements are sent.
			proxy.Pause()
			close(release)
		}
		if arrived.Load() <= n {
			<-release
		}
		return nil
	}), consumer.WithName("live"), consumer.WithConcurrency(n),
		consumer.WithMinIdle(minIdle), consumer.WithClaimInterval(20*time.Millisecond))
	stop := runConsumer(t, c)
	select {
	case <-release:
	case <-time.After(20 * time.Second):
		t.Fatal("the batch never reached its handlers")
	}
	time.Sleep(4 * minIdle) // the outage
	proxy.Resume()
	waitFor(t, 20*time.Second, "nothing pending after the outage", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
	time.Sleep(time.Second) // a late second delivery would show
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rep, _ := calls.repeated()
	if len(rep) > 0 {
		t.Errorf("%d of %d entries handled again by the live consumer that handled them before the outage; stats %+v", len(rep), n, c.Stats())
	}
	for _, id := range ids {
		if calls.count(id) == 0 {
			t.Errorf("entry %s not handled", id)
		}
	}
}

// TestLedgerLostReplyRecovered: Redis runs an XREADGROUP whose reply never
// reaches the consumer (the connection dies on the way back), so an entry
// is pending for it, unseen. With go-redis's default options the client
// retries the read by itself and the consumer never sees an error; the
// entry must still be handled long before the minimum idle time (here a
// minute), by the consumer's audit of its own pending entries.
//
// Old behaviour caught (default options): only a failed read made the
// consumer look at its own pending entries; a read retried inside go-redis
// left the entry to the reclaim loop, after the minimum idle time.
func TestLedgerLostReplyRecovered(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxRetries int
	}{
		{"default options", 0},
		{"no retries", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			ctx := context.Background()
			stream, group := srv.Key("lost"), "g"
			proxy := srv.StartProxy(t)
			via := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: tc.maxRetries})
			t.Cleanup(func() { _ = via.Close() })
			calls := newCallLog()
			c := newConsumer(t, via, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
				calls.begin(m.Field("n"))()
				return nil
			}), consumer.WithBlock(time.Second), consumer.WithMinIdle(time.Minute))
			stop := runConsumer(t, c)
			waitFor(t, 20*time.Second, "group created", func() bool {
				g, err := srv.Client.XInfoGroups(ctx, stream).Result()
				return err == nil && len(g) == 1
			})
			publishN(t, srv.Client, stream, 0, 1)
			waitFor(t, 20*time.Second, "first entry handled and acked", func() bool { return c.Stats().Acked == 1 })
			time.Sleep(100 * time.Millisecond) // the consumer is blocked in XREADGROUP >

			proxy.LoseNextReply()
			publishN(t, srv.Client, stream, 1, 1) // delivered by the blocked read; its reply is lost
			time.Sleep(200 * time.Millisecond)
			publishN(t, srv.Client, stream, 2, 1)
			waitFor(t, 20*time.Second, "a later entry handled", func() bool { return calls.count("2") == 1 })
			deadline := time.Now().Add(20 * time.Second)
			for calls.count("1") == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if calls.count("1") == 0 {
				p := pendingOf(t, srv.Client, stream, group, "")
				t.Fatalf("the entry whose reply was lost not handled within 20s (minimum idle time 1m); pending %+v; stats %+v", p, c.Stats())
			}
			waitFor(t, 20*time.Second, "nothing pending", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"0", "1", "2"} {
				if calls.count(n) != 1 {
					t.Errorf("entry n=%s handled %d times, want 1", n, calls.count(n))
				}
			}
		})
	}
}

// TestLedgerDeadLetterMoveRefusedXAck: the consumer's user may not run
// XACK, and its handler fails permanently. Dead-lettering must leave no
// partial effect (the dead-letter stream gets no copy while the source
// entry cannot be acknowledged), and Run must end with an error wrapping
// midstream.ErrMisconfigured.
//
// Old behaviour caught: the move script's XADD stayed when its XACK failed
// with NOPERM (a script is not rolled back), the entry stayed pending, was
// reclaimed, failed again and was dead-lettered again: one more copy in
// the DLQ at every turn, and Run never returned.
func TestLedgerDeadLetterMoveRefusedXAck(t *testing.T) {
	srv := redistest.Start(t)
	stream, group := srv.Key("{dlnoack}"), "g"
	const n = 3
	createGroup(t, srv.Client, stream, group)
	publishN(t, srv.Client, stream, 0, n)
	worker := aclClient(t, srv, "dlnoack", "-xack")
	calls := newCallLog()
	c := newConsumer(t, worker, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		calls.begin(m.ID)()
		return consumer.Permanent(errors.New("unknown customer"))
	}), consumer.WithName("w"), consumer.WithMaxDeliveries(3),
		consumer.WithMinIdle(100*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	dlq := deadletter.Key(stream)
	run := startRun(t, c)
	const limit = 30 * time.Second
	deadline := time.Now().Add(limit)
	var copiesAt time.Time
	var most int64
	var runErr error
	var returned bool
	for {
		if runErr, returned = run.returned(); returned {
			break
		}
		if k := xlenOf(t, srv.Client, dlq); k > most {
			most = k
			if copiesAt.IsZero() {
				copiesAt = time.Now()
			}
		}
		if time.Now().After(deadline) || !copiesAt.IsZero() && time.Since(copiesAt) > 3*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	most = max(most, xlenOf(t, srv.Client, dlq))
	if !returned {
		_, _ = run.stop(time.Minute)
	}
	if most > 0 {
		t.Errorf("%d dead-letter entries for %d entries whose XACK is refused, want none (handler calls %d; stats %+v)",
			most, n, calls.total.Load(), c.Stats())
	}
	switch {
	case !returned:
		t.Errorf("Run still running %s after it started, with XACK refused (NOPERM); want an error wrapping ErrMisconfigured",
			time.Since(deadline.Add(-limit)).Round(time.Second))
	case !errors.Is(runErr, midstream.ErrMisconfigured):
		t.Errorf("Run returned %v, want an error wrapping ErrMisconfigured", runErr)
	}
	if p := pendingCount(t, srv.Client, stream, group); p != n {
		t.Errorf("%d entries pending, want the %d that could not be dead-lettered", p, n)
	}
}

// cpuTime returns this process's user plus system CPU time.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// commandsProcessed returns the server's total_commands_processed.
func commandsProcessed(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO stats without total_commands_processed")
	return 0
}

// TestLedgerWrongTypeWhileRunning: the stream of a running consumer is
// replaced by a string. Run must end with an error wrapping
// midstream.ErrMisconfigured, without a hot loop meanwhile: over the two
// seconds after the swap, the process uses less than half a CPU-second and
// the server sees fewer than 200 commands (the reclaim loop alone, every
// 20 ms, would send 100).
//
// Old behaviour caught: a WRONGTYPE after the start was logged and retried
// forever (reads with backoff, the reclaim loop at every interval); Run
// never returned.
func TestLedgerWrongTypeWhileRunning(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("wrongtype"), "g"
	calls := newCallLog()
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		calls.begin(m.ID)()
		return nil
	}), consumer.WithMinIdle(100*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	run := startRun(t, c)
	waitFor(t, 20*time.Second, "group created", func() bool {
		g, err := srv.Client.XInfoGroups(ctx, stream).Result()
		return err == nil && len(g) == 1
	})
	publishN(t, srv.Client, stream, 0, 1)
	waitFor(t, 20*time.Second, "an entry handled and acked", func() bool { return c.Stats().Acked == 1 })

	swapped := time.Now()
	tx := srv.Client.TxPipeline()
	tx.Del(ctx, stream)
	tx.Set(ctx, stream, "not a stream", 0)
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	cpu0, cmds0 := cpuTime(t), commandsProcessed(t, srv.Client)
	time.Sleep(2 * time.Second)
	cpu, cmds := cpuTime(t)-cpu0, commandsProcessed(t, srv.Client)-cmds0-1 // less our INFO
	t.Logf("over 2s after the swap: %v CPU, %d commands", cpu, cmds)
	if cpu > 500*time.Millisecond {
		t.Errorf("%v of CPU in the 2s after the stream became a string: a hot loop", cpu)
	}
	if cmds >= 200 {
		t.Errorf("%d commands in the 2s after the stream became a string: a hot loop", cmds)
	}
	err, returned := run.wait(30*time.Second - time.Since(swapped))
	switch {
	case !returned:
		t.Errorf("Run still running %s after the stream became a string; want an error wrapping ErrMisconfigured",
			time.Since(swapped).Round(time.Second))
	case !errors.Is(err, midstream.ErrMisconfigured):
		t.Errorf("Run returned %v, want an error wrapping ErrMisconfigured", err)
	}
}

// TestLedgerFailingTenPercentSustained: a producer adds about 2000 entries
// a second for 15 s (60 s with MIDSTREAM_LONG=1); the handler fails every
// entry whose number is a multiple of ten, always (a plain error). Each
// failing entry must be retried after its backoff and dead-lettered after
// its third delivery, steadily: the group's pending count, sampled every
// 500 ms, stays within
//
//	3 × failing rate × retry time + in-flight bound + ack batch
//	= 3 × 200/s × (100 ms + 200 ms + 2 × 20 ms) + 200 + 100 ≈ 500
//
// (the retry time is the two backoffs, MinIdle then RetryBackoff, plus a
// claim interval each). At the end every failing entry is in the DLQ
// exactly once with 3 deliveries, every good entry was handled, and
// nothing is pending.
//
// Old behaviour guarded against: a reclaim pass took at most a batch of
// entries per claim interval from a window of the pending list and resumed
// past its cursor, so retries could fall behind the failures and the
// pending list grow. At this rate the old consumer keeps up (a pass may
// claim 100 entries every 20 ms, the pending list stays well inside the
// 1000-entry window): the test passes on it and guards the rewrite.
func TestLedgerFailingTenPercentSustained(t *testing.T) {
	produceFor := 15 * time.Second
	if os.Getenv(envLong) == "1" {
		produceFor = time.Minute
	}
	const (
		rate          = 2000 // entries a second
		failEvery     = 10
		maxDeliveries = 3
		minIdle       = 100 * time.Millisecond
		retryBackoff  = 200 * time.Millisecond
		claimInterval = 20 * time.Millisecond
		inFlight      = 2 * consumer.DefaultBatchSize
	)
	retryTime := minIdle + retryBackoff + 2*claimInterval
	bound := int64(3*rate/failEvery*retryTime.Seconds()) + inFlight + consumer.DefaultAckBatch
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("{tenpercent}"), "g"
	createGroup(t, srv.Client, stream, group)

	var handled sync.Map // good entry ID -> calls
	var handledCount, failedCalls atomic.Int64
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		n, err := strconv.Atoi(m.Field("n"))
		if err != nil {
			return consumer.Permanent(err)
		}
		if n%failEvery == 0 {
			failedCalls.Add(1)
			return fmt.Errorf("entry %d always fails", n)
		}
		if v, loaded := handled.LoadOrStore(m.ID, new(atomic.Int64)); !loaded {
			handledCount.Add(1)
			v.(*atomic.Int64).Add(1)
		} else {
			v.(*atomic.Int64).Add(1)
		}
		return nil
	}), consumer.WithName("w"), consumer.WithMaxDeliveries(maxDeliveries), consumer.WithMinIdle(minIdle),
		consumer.WithRetryBackoff(retryBackoff), consumer.WithClaimInterval(claimInterval),
		consumer.WithRetryDelay(minIdle, minIdle))
	stop := runConsumer(t, c)

	// Produce at the rate, catching up after a late tick.
	var good, failing []string
	var mu sync.Mutex
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		next := 0
		for range tick.C {
			elapsed := time.Since(start)
			if elapsed >= produceFor {
				return
			}
			target := min(int(elapsed.Seconds()*rate), next+500)
			if target <= next {
				continue
			}
			pipe := srv.Client.Pipeline()
			var cmds []*redis.StringCmd
			for i := next; i < target; i++ {
				cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", strconv.Itoa(i)}}))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("publishing: %v", err)
				return
			}
			mu.Lock()
			for i, cmd := range cmds {
				if (next+i)%failEvery == 0 {
					failing = append(failing, cmd.Val())
				} else {
					good = append(good, cmd.Val())
				}
			}
			mu.Unlock()
			next = target
		}
	}()

	// Sample the pending count until the work is done.
	var samples []int64
	var most int64
	producing := true
	sample := time.NewTicker(500 * time.Millisecond)
	defer sample.Stop()
	finishBy := time.Now().Add(produceFor + time.Minute)
	for {
		<-sample.C
		p := pendingCount(t, srv.Client, stream, group)
		samples = append(samples, p)
		most = max(most, p)
		if producing {
			select {
			case <-prodDone:
				producing = false
			default:
			}
			continue
		}
		mu.Lock()
		ng, nf := len(good), len(failing)
		mu.Unlock()
		if handledCount.Load() >= int64(ng) && xlenOf(t, srv.Client, deadletter.Key(stream)) >= int64(nf) && p == 0 {
			break
		}
		if time.Now().After(finishBy) {
			t.Errorf("not done a minute after the producer stopped: %d of %d good entries handled, %d of %d failing ones dead-lettered, %d pending",
				handledCount.Load(), ng, xlenOf(t, srv.Client, deadletter.Key(stream)), nf, p)
			break
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d entries (%d failing) in %s; pending samples every 500ms: %v; stats %+v", len(good)+len(failing), len(failing), produceFor, samples, c.Stats())
	if most > bound {
		t.Errorf("pending count reached %d, above the bound %d (3 × %d/s failing × %v retry time + in-flight %d + ack batch %d)",
			most, bound, rate/failEvery, retryTime, inFlight, consumer.DefaultAckBatch)
	}
	missing := 0
	for _, id := range good {
		v, ok := handled.Load(id)
		if !ok {
			missing++
			continue
		}
		if k := v.(*atomic.Int64).Load(); k != 1 {
			t.Errorf("good entry %s handled %d times", id, k)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d good entries never handled", missing, len(good))
	}
	inDLQ := map[string][]int64{}
	for _, e := range dlqAll(t, srv.Client, stream) {
		inDLQ[e.OriginalID] = append(inDLQ[e.OriginalID], e.Deliveries)
	}
	bad := 0
	for _, id := range failing {
		if d := inDLQ[id]; !slices.Equal(d, []int64{maxDeliveries}) {
			if bad++; bad <= 10 {
				t.Errorf("failing entry %s: dead-letter deliveries %v, want [%d]", id, d, maxDeliveries)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d failing entries not dead-lettered exactly once after %d deliveries", bad, len(failing), maxDeliveries)
	}
	if len(inDLQ) != len(failing) {
		t.Errorf("%d distinct entries dead-lettered, want the %d failing ones", len(inDLQ), len(failing))
	}
}

// TestLedgerLeaseOfDeletedEntry: an entry is deleted (XDEL, as a trim
// would) while its handler runs past the minimum idle time. The lease
// extension finds it gone: it must be counted in Stats.Deleted, and never
// reclaimed or handled again.
//
// Old behaviour caught: the lease loop's XCLAIM dropped the deleted entry
// from the pending list and the next extension logged it as "lost"
// (no longer pending for this consumer); Stats.Deleted stayed 0.
func TestLedgerLeaseOfDeletedEntry(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("leasedel"), "g"
	ids := publishN(t, srv.Client, stream, 0, 1)
	calls := newCallLog()
	started := make(chan struct{}, 10)
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		defer calls.begin(m.ID)()
		select {
		case started <- struct{}{}:
		default:
		}
		time.Sleep(1200 * time.Millisecond)
		return nil
	}), consumer.WithName("w"), consumer.WithStart(consumer.StartBeginning),
		consumer.WithMinIdle(300*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stop := runConsumer(t, c)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("handler not called")
	}
	time.Sleep(400 * time.Millisecond) // past the minimum idle time: the lease was extended
	if err := srv.Client.XDel(ctx, stream, ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Deleted == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Deleted != 1 {
		t.Errorf("Stats.Deleted = %d after the entry in progress was deleted, want 1 (stats %+v)", s.Deleted, s)
	}
	if n := calls.count(ids[0]); n != 1 || s.Reclaimed != 0 {
		t.Errorf("entry handled %d times, %d reclaimed; want once, none reclaimed", n, s.Reclaimed)
	}
	if p := pendingCount(t, srv.Client, stream, group); p != 0 {
		t.Errorf("%d pending", p)
	}
}

// TestLedgerCleanupKeepsRunningConsumers: four running consumers, with the
// idle-consumer cleanup at one second, drain a burst and then sit idle,
// blocked in XREADGROUP (default block time, 2 s), for 10 s. None may
// disappear from the group: a running consumer is not idle.
//
// Old behaviour caught (if it fails): the cleanup judged consumers by the
// server's idle time alone, which a consumer blocked in XREADGROUP for
// longer than the cleanup time exceeds; running consumers were deleted
// and recreated by their next read.
func TestLedgerCleanupKeepsRunningConsumers(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("cleanup"), "g"
	createGroup(t, srv.Client, stream, group)
	const consumers = 4
	var handled atomic.Int64
	h := consumer.HandlerFunc(func(context.Context, *consumer.Message) error { handled.Add(1); return nil })
	var names []string
	var stops []func() error
	for i := range consumers {
		name := fmt.Sprintf("c%d", i)
		names = append(names, name)
		c := newConsumer(t, srv.Client, stream, group, h, consumer.WithName(name), consumer.WithBlock(consumer.DefaultBlock),
			consumer.WithConsumerCleanup(time.Second), consumer.WithClaimInterval(200*time.Millisecond))
		stops = append(stops, runConsumer(t, c))
	}
	publishN(t, srv.Client, stream, 0, 400)
	waitFor(t, 20*time.Second, "the burst drained", func() bool {
		return handled.Load() == 400 && pendingCount(t, srv.Client, stream, group) == 0
	})
	missing := map[string]int{}
	var maxIdle time.Duration
	samples := 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		infos, err := srv.Client.XInfoConsumers(ctx, stream, group).Result()
		if err != nil {
			t.Fatal(err)
		}
		samples++
		present := map[string]bool{}
		for _, ci := range infos {
			present[ci.Name] = true
			maxIdle = max(maxIdle, ci.Idle)
		}
		for _, name := range names {
			if !present[name] {
				missing[name]++
			}
		}
	}
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d samples over 10s; largest idle time seen %v", samples, maxIdle)
	for _, name := range names {
		if missing[name] > 0 {
			t.Errorf("running consumer %s missing from the group in %d of %d samples", name, missing[name], samples)
		}
	}
}
