package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// envLong selects the long versions of the fault tests.
const envLong = "MIDSTREAM_LONG"

// proc is a worker process started by startWorker.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	ready  chan struct{} // closed when the worker printed "ready"
	done   chan struct{} // closed when the process has exited and been reaped
	err    error         // cmd.Wait's result, once done is closed
	stderr *lockedBuffer

	mu       sync.Mutex
	killedAt time.Time  // when Kill sent SIGKILL
	stops    []stopSpan // SIGSTOP (Stop) to SIGCONT (Cont or Term)
}

// stopSpan is a time a worker was frozen; end is zero while it still is.
type stopSpan struct{ start, end time.Time }

// instance names the worker process as it logs its calls (instanceName).
func (p *proc) instance() string { return instanceName(p.cmd.Process.Pid, p.name) }

// lostOwnership reports whether, after from, the worker was killed or
// frozen for longer than minIdle: then other consumers may take over what
// it held, and a second handling of its entries is expected.
func (p *proc) lostOwnership(from time.Time, minIdle time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.killedAt.IsZero() && p.killedAt.After(from) {
		return true
	}
	for _, s := range p.stops {
		end := s.end
		if end.IsZero() {
			end = time.Now()
		}
		if end.After(from) && end.Sub(s.start) > minIdle {
			return true
		}
	}
	return false
}

// lockedBuffer is a bytes.Buffer safe for a writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// readyWriter closes ready when it sees the line "ready".
type readyWriter struct {
	mu    sync.Mutex
	line  []byte
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c != '\n' {
			w.line = append(w.line, c)
			continue
		}
		if string(w.line) == workerReadyLine {
			w.once.Do(func() { close(w.ready) })
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

// startWorker starts a worker process (see workerMain) named name in the
// group, on srv, with env (STREAM, GROUP, LEDGER and options) added to this
// process's environment, and waits until it is ready. It is killed when the
// test ends, if it still runs; its stderr is logged if the test failed.
func startWorker(t *testing.T, srv *redistest.Server, name string, env map[string]string) *proc {
	t.Helper()
	p := spawnWorker(t, srv, name, env)
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("worker %s exited before it was ready: %v\n%s", name, p.err, tail(p.stderr.String(), 4096))
	case <-time.After(workerReadyTimeout):
		t.Fatalf("worker %s not ready after %s\n%s", name, workerReadyTimeout, tail(p.stderr.String(), 4096))
	}
	return p
}

// spawnWorker is startWorker without waiting until the worker is ready.
func spawnWorker(t *testing.T, srv *redistest.Server, name string, env map[string]string) *proc {
	t.Helper()
	addr := srv.Addr()
	if srv.Backend == "url" {
		addr = os.Getenv(redistest.EnvURL) // keeps the password and database
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"=1", envWorkerAddr+"="+addr, envWorkerName+"="+name)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	p := &proc{t: t, name: name, cmd: cmd, ready: make(chan struct{}), done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stdout = &readyWriter{ready: p.ready}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting worker %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			if s := p.stderr.String(); s != "" {
				t.Logf("worker %s (pid %d) stderr, last 4kB:\n%s", name, cmd.Process.Pid, tail(s, 4096))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// signal sends sig unless the process has exited.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
}

// Kill kills the worker with SIGKILL, as in a crash, and waits until it is
// gone.
func (p *proc) Kill() {
	p.t.Helper()
	p.mu.Lock()
	p.killedAt = time.Now()
	p.mu.Unlock()
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("worker %s not gone 30s after SIGKILL", p.name)
	}
}

// Stop freezes the worker (SIGSTOP): it holds its connections and its
// entries but does nothing, like a process stuck in a long GC pause or a VM
// that was suspended.
func (p *proc) Stop() {
	p.mu.Lock()
	p.stops = append(p.stops, stopSpan{start: time.Now()})
	p.mu.Unlock()
	p.signal(syscall.SIGSTOP)
}

// Cont resumes a worker frozen by Stop (SIGCONT).
func (p *proc) Cont() {
	p.signal(syscall.SIGCONT)
	p.mu.Lock()
	if n := len(p.stops); n > 0 && p.stops[n-1].end.IsZero() {
		p.stops[n-1].end = time.Now()
	}
	p.mu.Unlock()
}

// Term asks the worker to shut down (SIGTERM) and waits for it; the test
// fails unless it exits with status 0 within a generous bound.
func (p *proc) Term() {
	p.t.Helper()
	p.Cont() // a frozen process would not act on SIGTERM
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.signal(syscall.SIGKILL)
		<-p.done
		p.t.Fatalf("worker %s did not stop within a minute of SIGTERM", p.name)
	}
	if p.err != nil {
		p.t.Fatalf("worker %s: %v\n%s", p.name, p.err, tail(p.stderr.String(), 4096))
	}
}

// createGroup creates group on stream (and the stream) from its beginning.
func createGroup(t *testing.T, rdb redis.UniversalClient, stream, group string) {
	t.Helper()
	if err := rdb.XGroupCreateMkStream(context.Background(), stream, group, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
}

// hashCounts returns a hash of counters (a ledger) as a map.
func hashCounts(t *testing.T, rdb redis.UniversalClient, key string) map[string]int {
	t.Helper()
	raw, err := rdb.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("HGETALL %s: %v", key, err)
	}
	m := make(map[string]int, len(raw))
	for k, v := range raw {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("HGETALL %s: %s=%q", key, k, v)
		}
		m[k] = n
	}
	return m
}

func hlen(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.HLen(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("HLEN %s: %v", key, err)
	}
	return n
}

// pendingOf returns the pending entries of group (of one consumer unless
// owner is "").
func pendingOf(t *testing.T, rdb redis.UniversalClient, stream, group, owner string) []redis.XPendingExt {
	t.Helper()
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: stream, Group: group, Start: "-", End: "+", Count: 100000, Consumer: owner,
	}).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return p
}

// dlqAll returns every entry of the dead-letter queue of stream.
func dlqAll(t *testing.T, rdb redis.UniversalClient, stream string) []deadletter.Entry {
	t.Helper()
	q, err := deadletter.New(rdb, stream)
	if err != nil {
		t.Fatal(err)
	}
	var all []deadletter.Entry
	opts := deadletter.ListOptions{Limit: deadletter.MaxListLimit}
	for {
		es, next, err := q.List(context.Background(), opts)
		if err != nil {
			t.Fatalf("listing the DLQ: %v", err)
		}
		all = append(all, es...)
		if next == "" {
			return all
		}
		opts.After = next
	}
}

func xlenOf(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("XLEN %s: %v", key, err)
	}
	return n
}

// workerEnv returns the environment of a worker of group on stream
// recording in ledger, with extra settings on top.
func workerEnv(stream, group, ledger string, extra map[string]string) map[string]string {
	env := map[string]string{envWorkerStream: stream, envWorkerGroup: group, envWorkerLedger: ledger}
	maps.Copy(env, extra)
	return env
}

// deliveryLog records the delivery counts handlers saw, by entry ID.
type deliveryLog struct {
	mu sync.Mutex
	m  map[string][]int64
}

func (d *deliveryLog) record(m *consumer.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string][]int64{}
	}
	d.m[m.ID] = append(d.m[m.ID], m.Deliveries)
}

func (d *deliveryLog) get(id string) []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.m[id])
}

// TestFaultKilledMidHandler: a worker process is killed (SIGKILL) while its
// handlers run and with more entries read ahead; another consumer's reclaim
// loop takes over every entry it held, once idle past the minimum, and
// handles each exactly once (the dead worker finished none), with the
// server's delivery count (2). Nothing stays pending.
func TestFaultKilledMidHandler(t *testing.T) {
	srv := redistest.Start(t)
	stream, group, ledger := srv.Key("orders"), "workers", srv.Key("ledger")
	createGroup(t, srv.Client, stream, group)
	const n = 10
	ids := publishN(t, srv.Client, stream, 0, n)

	// A takes all ten, runs two handlers that would take a minute, and
	// dies in the middle of them.
	a := startWorker(t, srv, "A", workerEnv(stream, group, ledger, map[string]string{
		envWorkerSleep: "1m", envWorkerConc: "2", envWorkerMinIdle: "500ms",
	}))
	waitFor(t, time.Minute, "A handling two entries and holding all", func() bool {
		return hlen(t, srv.Client, callsKey(ledger)) == 2 && len(pendingOf(t, srv.Client, stream, group, "A")) == n
	})
	a.Kill()
	startedByA := hashCounts(t, srv.Client, callsKey(ledger))
	if l := hlen(t, srv.Client, ledger); l != 0 {
		t.Fatalf("A finished %d handler calls; want it killed in the middle", l)
	}

	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var seen deliveryLog
	b := newConsumer(t, srv.Client, stream, group,
		&faultHandler{rdb: srv.Client, ledger: ledger, onCall: seen.record},
		consumer.WithName("B"), consumer.WithMinIdle(500*time.Millisecond), consumer.WithClaimInterval(100*time.Millisecond))
	stop := runConsumer(t, b)
	waitFor(t, time.Minute, "B handling every entry", func() bool {
		return hlen(t, srv.Client, ledger) == n && len(pendingOf(t, srv.Client, stream, group, "")) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	handled := hashCounts(t, srv.Client, ledger)
	for _, id := range ids {
		if handled[id] != 1 {
			t.Errorf("entry %s handled %d times, want once", id, handled[id])
		}
		if d := seen.get(id); !slices.Equal(d, []int64{2}) {
			t.Errorf("entry %s: B saw deliveries %v, want [2] (A's, then B's)", id, d)
		}
	}
	for id := range startedByA {
		if !slices.Contains(ids, id) {
			t.Errorf("A started unknown entry %s", id)
		}
	}
	if s := b.Stats(); s.Reclaimed != n || s.Handled != n || s.Acked != n || s.DeadLettered != 0 {
		t.Errorf("B stats %+v, want %d reclaimed, handled and acked", s, n)
	}
	if p := pendingOf(t, srv.Client, stream, group, ""); len(p) != 0 {
		t.Errorf("%d entries still pending: %+v", len(p), p)
	}
}

// TestFaultZombieConsumer: a worker process is frozen (SIGSTOP) in the
// middle of its handlers, past the minimum idle time; another consumer
// reclaims its entries and starts them; then the zombie resumes (SIGCONT)
// and finishes its stale calls while the new owner is still at work. Its
// late acknowledgement loses nothing; its late failure, with a delivery
// limit of 1 that makes it dead-letter, does not take the entry from its new
// owner: nothing reaches the DLQ.
func TestFaultZombieConsumer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		zombieOK bool // the zombie's handlers succeed (late ack) or fail (late dead-letter)
	}{
		{"late ack", true},
		{"late dead-letter", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			stream, group, ledger := srv.Key("orders"), "workers", srv.Key("ledger")
			createGroup(t, srv.Client, stream, group)
			const n = 5
			ids := publishN(t, srv.Client, stream, 0, n)

			env := map[string]string{envWorkerSleep: "1500ms", envWorkerConc: strconv.Itoa(n), envWorkerMinIdle: "500ms"}
			if !tc.zombieOK {
				env[envWorkerFail] = "1"
				env[envWorkerMaxDeliv] = "1"
			}
			a := startWorker(t, srv, "A", workerEnv(stream, group, ledger, env))
			waitFor(t, time.Minute, "A handling every entry", func() bool {
				return hlen(t, srv.Client, callsKey(ledger)) == n
			})
			a.Stop()

			// B takes the entries over once idle and works on them for a
			// while, extending its lease.
			var seen deliveryLog
			b := newConsumer(t, srv.Client, stream, group,
				&faultHandler{rdb: srv.Client, ledger: ledger, sleep: 1500 * time.Millisecond, onCall: seen.record},
				consumer.WithName("B"), consumer.WithConcurrency(n),
				consumer.WithMinIdle(500*time.Millisecond), consumer.WithClaimInterval(100*time.Millisecond))
			stop := runConsumer(t, b)
			waitFor(t, time.Minute, "B handling every entry", func() bool {
				for _, id := range ids {
					if len(seen.get(id)) == 0 {
						return false
					}
				}
				return true
			})
			owners := pendingOf(t, srv.Client, stream, group, "")
			// The zombie wakes up while B still works on them.
			a.Cont()
			a.Term() // a graceful shutdown: its late calls (and any dead-lettering) are over
			waitFor(t, time.Minute, "every entry handled by B and nothing pending", func() bool {
				return b.Stats().Handled == n && len(pendingOf(t, srv.Client, stream, group, "")) == 0
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			for _, p := range owners {
				if p.Consumer != "B" {
					t.Errorf("entry %s owned by %s while B handled it", p.ID, p.Consumer)
				}
			}
			handled := hashCounts(t, srv.Client, ledger)
			calls := hashCounts(t, srv.Client, callsKey(ledger))
			for _, id := range ids {
				want := 1 // B
				if tc.zombieOK {
					want = 2 // A late, and B
				}
				if handled[id] != want {
					t.Errorf("entry %s in the ledger %d times, want %d", id, handled[id], want)
				}
				if calls[id] != 2 {
					t.Errorf("entry %s: %d handler calls, want 2 (A, then B)", id, calls[id])
				}
				if d := seen.get(id); !slices.Equal(d, []int64{2}) {
					t.Errorf("entry %s: B saw deliveries %v, want [2]", id, d)
				}
			}
			if s := b.Stats(); s.Reclaimed != n || s.DeadLettered != 0 {
				t.Errorf("B stats %+v, want %d reclaimed, none dead-lettered", s, n)
			}
			if dl := dlqAll(t, srv.Client, stream); len(dl) != 0 {
				t.Errorf("%d entries dead-lettered, want none: %+v", len(dl), dl)
			}
			if p := pendingOf(t, srv.Client, stream, group, ""); len(p) != 0 {
				t.Errorf("%d entries still pending: %+v", len(p), p)
			}
		})
	}
}

// faultJob is the typed payload of TestDeliveryLimitDeadLetters.
type faultJob struct {
	N    int    `redis:"n"`
	Kind string `redis:"kind"`
}

// TestDeliveryLimitDeadLetters: an entry whose handler always fails is
// handed to the handler exactly MaxDeliveries times (by the read, then the
// reclaim loop after its backoff), then dead-lettered with complete
// provenance; a permanent error, an entry that does not decode and an
// oversized entry are dead-lettered on their first delivery (the oversized
// one without a handler call). Good entries are handled once; nothing stays
// pending.
func TestDeliveryLimitDeadLetters(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group := srv.Key("jobs"), "g"
	const maxDeliveries, maxSize = 3, 128
	testStart := time.Now()

	add := func(fields ...string) string {
		id, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	var good []string
	for i := range 5 {
		good = append(good, add("n", strconv.Itoa(i), "kind", "ok"))
	}
	poison := add("n", "100", "kind", "poison")
	permanent := add("n", "101", "kind", "permanent")
	undecodable := add("n", "x", "kind", "ok")
	oversized := add("n", "102", "kind", "ok", "blob", strings.Repeat("b", 2*maxSize))
	for i := range 5 {
		good = append(good, add("n", strconv.Itoa(10+i), "kind", "ok"))
	}

	var mu sync.Mutex
	raw := map[string]int{}     // calls of the handler (before decoding)
	decoded := map[string]int{} // calls of the typed function
	var seen deliveryLog
	h := consumer.Typed(func(ctx context.Context, j faultJob, m *consumer.Message) error {
		mu.Lock()
		decoded[m.ID]++
		mu.Unlock()
		switch j.Kind {
		case "poison":
			return errPoison
		case "permanent":
			return consumer.Permanent(errors.New("unknown customer"))
		}
		return nil
	})
	count := func(next consumer.Handler) consumer.Handler {
		return consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
			mu.Lock()
			raw[m.ID]++
			mu.Unlock()
			seen.record(m)
			return next.Handle(ctx, m)
		})
	}
	c := newConsumer(t, srv.Client, stream, group, h,
		consumer.WithName("worker"), consumer.WithStart(consumer.StartBeginning), consumer.WithMiddleware(count),
		consumer.WithMaxDeliveries(maxDeliveries), consumer.WithMinIdle(50*time.Millisecond),
		consumer.WithClaimInterval(20*time.Millisecond), consumer.WithRetryBackoff(100*time.Millisecond),
		consumer.WithMaxEntrySize(maxSize))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "good entries handled, four dead-lettered, nothing pending", func() bool {
		s := c.Stats()
		return s.Handled == int64(len(good)) && s.DeadLettered == 4 && pendingCount(t, srv.Client, stream, group) == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, id := range good {
		if raw[id] != 1 || decoded[id] != 1 {
			t.Errorf("good entry %s: %d calls, %d decoded; want 1", id, raw[id], decoded[id])
		}
	}
	if d := seen.get(poison); !slices.Equal(d, []int64{1, 2, 3}) {
		t.Errorf("poison entry: handler saw deliveries %v, want [1 2 3]", d)
	}
	for _, tc := range []struct {
		id           string
		raw, decoded int
		original     string
	}{
		{poison, maxDeliveries, maxDeliveries, "100"},
		{permanent, 1, 1, "101"},
		{undecodable, 1, 0, "x"},
		{oversized, 0, 0, "102"},
	} {
		if raw[tc.id] != tc.raw || decoded[tc.id] != tc.decoded {
			t.Errorf("entry %s (n=%s): %d handler calls, %d decoded; want %d, %d", tc.id, tc.original, raw[tc.id], decoded[tc.id], tc.raw, tc.decoded)
		}
	}

	dl := dlqAll(t, srv.Client, stream)
	byID := map[string]deadletter.Entry{}
	for _, e := range dl {
		if _, dup := byID[e.OriginalID]; dup {
			t.Errorf("entry %s dead-lettered twice", e.OriginalID)
		}
		byID[e.OriginalID] = e
	}
	if len(dl) != 4 {
		t.Errorf("%d dead-letter entries, want 4: %+v", len(dl), dl)
	}
	for _, tc := range []struct {
		id         string
		deliveries int64
		errSub, n  string
	}{
		{poison, maxDeliveries, errPoison.Error(), "100"},
		{permanent, 1, "unknown customer", "101"},
		{undecodable, 1, "decode", "x"},
		{oversized, 1, midstream.ErrTooLarge.Error(), "102"},
	} {
		e, ok := byID[tc.id]
		if !ok {
			t.Errorf("entry %s (n=%s) not dead-lettered", tc.id, tc.n)
			continue
		}
		if e.Source != stream || e.Group != group || e.Consumer != "worker" || e.Deliveries != tc.deliveries ||
			!strings.Contains(e.Error, tc.errSub) || e.Fields["n"] != tc.n {
			t.Errorf("dead-letter entry of %s: %+v; want source %s group %s consumer worker deliveries %d, error containing %q, n=%s",
				tc.id, e, stream, group, tc.deliveries, tc.errSub, tc.n)
		}
		if e.Time.Before(testStart.Add(-time.Minute)) || e.Time.After(time.Now().Add(time.Minute)) {
			t.Errorf("dead-letter entry of %s: time %v, not around the test's run", tc.id, e.Time)
		}
	}
	if e := byID[oversized]; len(e.Fields["blob"]) != 2*maxSize {
		t.Errorf("oversized entry dead-lettered without its payload: %d bytes", len(e.Fields["blob"]))
	}
	if s := c.Stats(); s.DeadLettered != 4 || s.Handled != int64(len(good)) || s.Failed != maxDeliveries+2 {
		t.Errorf("stats %+v, want 4 dead-lettered, %d handled, %d failed", s, len(good), maxDeliveries+2)
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Errorf("%d entries pending", n)
	}
}

// TestLeaseExtensionPreventsStealing: a handler that runs three times the
// minimum idle time has its lease extended, so another consumer's reclaim
// loop, looking every 50ms, never takes its entry: it is handled once and
// acknowledged.
func TestLeaseExtensionPreventsStealing(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream, group, ledger := srv.Key("jobs"), "g", srv.Key("ledger")
	const minIdle = 300 * time.Millisecond
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, 1)

	slow := newConsumer(t, srv.Client, stream, group,
		&faultHandler{rdb: srv.Client, ledger: ledger, sleep: 3 * minIdle},
		consumer.WithName("slow"), consumer.WithMinIdle(minIdle))
	stopSlow := runConsumer(t, slow)
	waitFor(t, time.Minute, "the slow handler started", func() bool { return hlen(t, srv.Client, callsKey(ledger)) == 1 })

	thief := newConsumer(t, srv.Client, stream, group,
		&faultHandler{rdb: srv.Client, ledger: ledger},
		consumer.WithName("thief"), consumer.WithMinIdle(minIdle), consumer.WithClaimInterval(50*time.Millisecond))
	stopThief := runConsumer(t, thief)
	waitFor(t, time.Minute, "the entry handled and acknowledged", func() bool {
		return slow.Stats().Acked == 1 && pendingCount(t, srv.Client, stream, group) == 0
	})
	// Give the thief's loop time it could have used to steal; it cannot
	// any more, but a second delivery in flight would show in the ledger.
	time.Sleep(2 * minIdle)
	if err := stopThief(); err != nil {
		t.Fatal(err)
	}
	if err := stopSlow(); err != nil {
		t.Fatal(err)
	}
	if calls := hashCounts(t, srv.Client, callsKey(ledger)); calls[ids[0]] != 1 {
		t.Errorf("entry handed to handlers %d times, want once", calls[ids[0]])
	}
	if handled := hashCounts(t, srv.Client, ledger); handled[ids[0]] != 1 {
		t.Errorf("entry handled %d times, want once", handled[ids[0]])
	}
	if s := thief.Stats(); s.Reclaimed != 0 || s.Handled != 0 {
		t.Errorf("thief stats %+v: it took the entry", s)
	}
	if s := slow.Stats(); s.Handled != 1 || s.Acked != 1 {
		t.Errorf("slow consumer stats %+v, want 1 handled and acked", s)
	}
}

// TestReclaimDeletedWhilePending: entries pending for a consumer that died
// are reclaimed by a running one; those deleted meanwhile (XDEL) are
// acknowledged and counted instead of handled, whether the reclaim loop
// claims them (under the delivery limit) or expires them (at it), and none
// is dead-lettered.
func TestReclaimDeletedWhilePending(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group, ledger := srv.Key("jobs"), "g", srv.Key("ledger")
	const maxDeliveries = 3
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, 10)
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead", Streams: []string{stream, ">"}, Count: 10, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	// ids[1] and ids[2] at the delivery limit: the reclaim loop expires
	// rather than claims them.
	if err := srv.Client.Do(ctx, "XCLAIM", stream, group, "dead", 0, ids[1], ids[2], "RETRYCOUNT", maxDeliveries).Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pendingOf(t, srv.Client, stream, group, "dead") {
		want := int64(1)
		if p.ID == ids[1] || p.ID == ids[2] {
			want = maxDeliveries
		}
		if p.RetryCount != want {
			t.Fatalf("entry %s delivered %d times, want %d", p.ID, p.RetryCount, want)
		}
	}
	deleted := []string{ids[1], ids[2], ids[4], ids[7], ids[9]}
	if err := srv.Client.XDel(ctx, stream, deleted...).Err(); err != nil {
		t.Fatal(err)
	}

	c := newConsumer(t, srv.Client, stream, group, &faultHandler{rdb: srv.Client, ledger: ledger},
		consumer.WithName("alive"), consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond),
		consumer.WithMaxDeliveries(maxDeliveries))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "every pending entry reclaimed or acknowledged", func() bool {
		return pendingCount(t, srv.Client, stream, group) == 0 && c.Stats().Handled == 5
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Deleted != int64(len(deleted)) || s.Handled != 5 || s.Reclaimed != 5 || s.DeadLettered != 0 {
		t.Errorf("stats %+v, want %d deleted, 5 reclaimed and handled, none dead-lettered", s, len(deleted))
	}
	handled := hashCounts(t, srv.Client, ledger)
	calls := hashCounts(t, srv.Client, callsKey(ledger))
	for _, id := range ids {
		want := 1
		if slices.Contains(deleted, id) {
			want = 0
		}
		if handled[id] != want || calls[id] != want {
			t.Errorf("entry %s: %d calls, %d handled; want %d", id, calls[id], handled[id], want)
		}
	}
	if n := xlenOf(t, srv.Client, deadletter.Key(stream)); n != 0 {
		t.Errorf("%d entries dead-lettered", n)
	}
}

// TestCleanupKeepsConsumersWithPending: the idle-consumer cleanup deletes an
// idle consumer with nothing pending and keeps one that still owns entries,
// which stay pending and are later reclaimed.
func TestCleanupKeepsConsumersWithPending(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group, ledger := srv.Key("jobs"), "g", srv.Key("ledger")
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, 3)
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "ghost-pending", Streams: []string{stream, ">"}, Count: 3, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.XGroupCreateConsumer(ctx, stream, group, "ghost-empty").Err(); err != nil {
		t.Fatal(err)
	}
	consumers := func() map[string]redis.XInfoConsumer {
		infos, err := srv.Client.XInfoConsumers(ctx, stream, group).Result()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]redis.XInfoConsumer{}
		for _, ci := range infos {
			m[ci.Name] = ci
		}
		return m
	}

	// A long minimum idle time: the cleaner must not reclaim ghost-pending's
	// entries, which would leave it with nothing pending.
	cleaner := newConsumer(t, srv.Client, stream, group, &faultHandler{rdb: srv.Client, ledger: ledger},
		consumer.WithName("cleaner"), consumer.WithConsumerCleanup(time.Second),
		consumer.WithMinIdle(10*time.Minute), consumer.WithClaimInterval(100*time.Millisecond))
	stop := runConsumer(t, cleaner)
	waitFor(t, 3*time.Minute, "ghost-empty deleted", func() bool {
		cs := consumers()
		if gp, ok := cs["ghost-pending"]; !ok || gp.Pending != 3 {
			t.Fatalf("ghost-pending deleted or robbed while it owns entries: %+v", cs)
		}
		_, ok := cs["ghost-empty"]
		return !ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cs := consumers()
	if _, ok := cs["cleaner"]; !ok {
		t.Errorf("the cleaner deleted itself: %+v", cs)
	}
	if p := pendingOf(t, srv.Client, stream, group, "ghost-pending"); len(p) != 3 {
		t.Fatalf("ghost-pending owns %d entries, want 3", len(p))
	}

	// They are still reclaimable.
	r := newConsumer(t, srv.Client, stream, group, &faultHandler{rdb: srv.Client, ledger: ledger},
		consumer.WithName("reclaimer"), consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stopR := runConsumer(t, r)
	waitFor(t, time.Minute, "ghost-pending's entries reclaimed", func() bool {
		return pendingCount(t, srv.Client, stream, group) == 0 && r.Stats().Handled == 3
	})
	if err := stopR(); err != nil {
		t.Fatal(err)
	}
	handled := hashCounts(t, srv.Client, ledger)
	for _, id := range ids {
		if handled[id] != 1 {
			t.Errorf("entry %s handled %d times, want once", id, handled[id])
		}
	}
	if s := r.Stats(); s.Reclaimed != 3 {
		t.Errorf("reclaimer stats %+v, want 3 reclaimed", s)
	}
}

// duplicateSplit classifies the repeated handlings in a call log.
type duplicateSplit struct {
	afterKill int      // an earlier handling was by a worker later killed or frozen past MinIdle
	live      int      // anything else: a live consumer handled the entry again
	liveIDs   []string // entries with such a duplicate, sorted
}

// splitDuplicates classifies every handling of an entry after its first
// (handled calls of the log, in start order): "after a kill" when an
// earlier handling of the entry was by a worker that was then killed, or
// frozen for longer than minIdle (its acknowledgement may never have been
// sent, or came after another consumer took the entry over); "by a live
// consumer" otherwise.
func splitDuplicates(t *testing.T, calls []loggedCall, procs []*proc, minIdle time.Duration) duplicateSplit {
	t.Helper()
	byInstance := map[string]*proc{}
	for _, p := range procs {
		byInstance[p.instance()] = p
	}
	byID := map[string][]loggedCall{}
	for _, c := range calls {
		if c.outcome == callHandled {
			byID[c.id] = append(byID[c.id], c)
		}
	}
	var d duplicateSplit
	for id, hs := range byID {
		slices.SortFunc(hs, func(a, b loggedCall) int { return a.start.Compare(b.start) })
		live := false
		for i := 1; i < len(hs); i++ {
			explained := false
			for _, earlier := range hs[:i] {
				p, ok := byInstance[earlier.instance]
				if !ok {
					t.Errorf("call log: unknown worker %s", earlier.instance)
					continue
				}
				if p.lostOwnership(earlier.start, minIdle) {
					explained = true
					break
				}
			}
			if explained {
				d.afterKill++
			} else {
				d.live++
				live = true
			}
		}
		if live {
			d.liveIDs = append(d.liveIDs, id)
		}
	}
	slices.Sort(d.liveIDs)
	return d
}

// TestFaultRun: four worker processes share a stream of entries, 1% of them
// poison (their handler always fails); every interval one worker, chosen at
// random, is killed with SIGKILL and replaced by a new process. At the end
// no entry is lost (each is in the ledger or the DLQ), every poison entry is
// in the DLQ exactly once after MaxDeliveries deliveries, no good entry is,
// and nothing is pending. Duplicates (entries handled more than once) are
// reported, split by cause from the workers' call log and the times the
// test killed them: "after a kill" (an earlier handling of the entry was by
// a worker that was then killed, so its acknowledgement may never have been
// sent) and "by a live consumer" (anything else), which must be none.
//
// The short version (default) runs 2000 entries with a kill every second for
// five seconds; with MIDSTREAM_LONG=1, 20000 entries with a kill every two
// seconds until the work is done.
//
// A replacement reuses the killed worker's name half of the time (it then
// first reads what its predecessor left pending, XREADGROUP from 0) and
// takes a new name otherwise (the entries wait for another worker's reclaim
// loop): both recovery paths are exercised. The seed is logged.
func TestFaultRun(t *testing.T) {
	long := os.Getenv(envLong) == "1"
	n, every, kills, limit := 2000, time.Second, 5, 3*time.Minute
	if long {
		n, every, kills, limit = 20000, 2*time.Second, -1, 20*time.Minute
	}
	const (
		workers       = 4
		poisonEvery   = 100 // 1%
		maxDeliveries = 3
		minIdle       = 500 * time.Millisecond
	)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)

	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group, ledger := srv.Key("orders"), "workers", srv.Key("ledger")
	createGroup(t, srv.Client, stream, group)

	// Publish: n entries, every poisonEvery-th poison.
	var ids []string
	poison := map[string]bool{}
	for start := 0; start < n; start += 500 {
		pipe := srv.Client.Pipeline()
		var cmds []*redis.StringCmd
		for i := start; i < min(start+500, n); i++ {
			v := []string{"n", strconv.Itoa(i)}
			if i%poisonEvery == poisonEvery/2 {
				v = append(v, "poison", "1")
			}
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v}))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i, c := range cmds {
			ids = append(ids, c.Val())
			if (start+i)%poisonEvery == poisonEvery/2 {
				poison[c.Val()] = true
			}
		}
	}
	goodCount := int64(n - len(poison))

	env := workerEnv(stream, group, ledger, map[string]string{
		envWorkerSleep: "40ms", envWorkerConc: "4", envWorkerBatch: "10",
		envWorkerMinIdle: minIdle.String(), envWorkerClaim: "100ms", envWorkerBackoff: "1s",
		envWorkerMaxDeliv: strconv.Itoa(maxDeliveries),
	})
	procs := make([]*proc, workers)
	names := make([]string, workers)
	var everyProc []*proc // every worker started, for the call log
	for i := range procs {
		names[i] = fmt.Sprintf("w%d", i)
		procs[i] = startWorker(t, srv, names[i], env)
		everyProc = append(everyProc, procs[i])
	}

	// Run until every good entry is handled, every poison one dead-lettered
	// and nothing is pending; stop early, and check what is missing, if
	// nothing progresses for a long while (entries lost).
	const stall = 30 * time.Second
	deadline := time.Now().Add(limit)
	killed, reused := 0, 0
	next := time.Now().Add(every)
	progress, progressAt := int64(-1), time.Now()
	for {
		h, d, p := hlen(t, srv.Client, ledger), xlenOf(t, srv.Client, deadletter.Key(stream)), pendingCount(t, srv.Client, stream, group)
		if h >= goodCount && d >= int64(len(poison)) && p == 0 {
			break
		}
		if h+d != progress {
			progress, progressAt = h+d, time.Now()
		} else if time.Since(progressAt) > stall {
			t.Errorf("no progress for %s: %d of %d good entries handled, %d of %d poison dead-lettered, %d pending, %d kills",
				stall, h, goodCount, d, len(poison), p, killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not done after %s: %d of %d good entries handled, %d of %d poison dead-lettered, %d pending, %d kills",
				limit, h, goodCount, d, len(poison), p, killed)
		}
		if (kills < 0 || killed < kills) && !time.Now().Before(next) {
			i := rng.IntN(workers)
			procs[i].Kill()
			killed++
			if rng.IntN(2) == 0 {
				reused++
			} else {
				names[i] = fmt.Sprintf("w%d.%d", i, killed)
			}
			procs[i] = startWorker(t, srv, names[i], env)
			everyProc = append(everyProc, procs[i])
			next = time.Now().Add(every)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range procs {
		p.Term()
	}

	handled := hashCounts(t, srv.Client, ledger)
	dl := dlqAll(t, srv.Client, stream)
	inDLQ := map[string]int{}
	for _, e := range dl {
		inDLQ[e.OriginalID]++
		switch {
		case !poison[e.OriginalID]:
			t.Errorf("good entry %s dead-lettered: %+v (handled %d times)", e.OriginalID, e, handled[e.OriginalID])
		case e.Deliveries != maxDeliveries:
			t.Errorf("poison entry %s dead-lettered after %d deliveries, want %d: %+v", e.OriginalID, e.Deliveries, maxDeliveries, e)
		case e.Source != stream || e.Group != group || e.Consumer == "" || e.Error == "":
			t.Errorf("poison entry %s: incomplete provenance %+v", e.OriginalID, e)
		}
	}
	lost, sum := 0, 0
	for _, id := range ids {
		if handled[id] == 0 && inDLQ[id] == 0 {
			lost++
			if lost <= 10 {
				t.Errorf("entry %s lost (poison %v)", id, poison[id])
			}
		}
		if poison[id] && inDLQ[id] != 1 {
			t.Errorf("poison entry %s in the DLQ %d times, want once", id, inDLQ[id])
		}
		if poison[id] && handled[id] != 0 {
			t.Errorf("poison entry %s in the ledger", id)
		}
	}
	for _, c := range handled {
		sum += c
	}
	duplicates := sum - len(handled)
	if p := pendingCount(t, srv.Client, stream, group); p != 0 {
		t.Errorf("%d entries still pending", p)
	}
	records, err := srv.Client.LRange(ctx, callLogKey(ledger), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	calls, err := parseCallLog(records)
	if err != nil {
		t.Fatal(err)
	}
	logged := 0
	for _, c := range calls {
		if c.outcome == callHandled {
			logged++
		}
	}
	if logged != sum {
		t.Errorf("call log holds %d handlings, the ledger %d", logged, sum)
	}
	split := splitDuplicates(t, calls, everyProc, minIdle)
	t.Logf("entries %d (%d poison), workers %d, kills %d (%d restarts reused the name), lost %d, duplicates %d (after a kill %d, by a live consumer %d), dead-lettered %d",
		n, len(poison), workers, killed, reused, lost, duplicates, split.afterKill, split.live, len(dl))
	if lost != 0 {
		t.Errorf("%d entries lost", lost)
	}
	if split.live != 0 {
		t.Errorf("%d duplicates by a live consumer (no earlier handling of the entry was by a worker killed since), in %d entries", split.live, len(split.liveIDs))
		byID := map[string][]string{}
		for _, c := range calls {
			byID[c.id] = append(byID[c.id], fmt.Sprintf("%s at %s: %s", c.instance, c.start.Format("15:04:05.000"), c.outcome))
		}
		for _, id := range split.liveIDs[:min(len(split.liveIDs), 10)] {
			t.Errorf("entry %s: %s", id, strings.Join(byID[id], "; "))
		}
		for _, p := range everyProc {
			p.mu.Lock()
			if !p.killedAt.IsZero() {
				t.Logf("worker %s killed at %s", p.instance(), p.killedAt.Format("15:04:05.000"))
			}
			p.mu.Unlock()
		}
	}
}

// TestRestartedConsumerRespectsDeliveryLimit: a consumer restarted under
// the name of one that died holding an entry already delivered
// MaxDeliveries times must dead-letter it, not hand it to its handler a
// further time.
func TestRestartedConsumerRespectsDeliveryLimit(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group, ledger := srv.Key("jobs"), "g", srv.Key("ledger")
	const maxDeliveries = 3
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, 1)
	// "w" got it maxDeliveries times (the last by a claim) and died.
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "w", Streams: []string{stream, ">"}, Count: 1, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.Do(ctx, "XCLAIM", stream, group, "w", 0, ids[0], "RETRYCOUNT", maxDeliveries).Err(); err != nil {
		t.Fatal(err)
	}
	var seen deliveryLog
	c := newConsumer(t, srv.Client, stream, group, &faultHandler{rdb: srv.Client, ledger: ledger, onCall: seen.record},
		consumer.WithName("w"), consumer.WithMaxDeliveries(maxDeliveries),
		consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "the entry acknowledged", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := seen.get(ids[0]); len(d) != 0 {
		t.Errorf("handler called with deliveries %v, past the limit of %d", d, maxDeliveries)
	}
	dl := dlqAll(t, srv.Client, stream)
	if len(dl) != 1 || dl[0].OriginalID != ids[0] || dl[0].Deliveries != maxDeliveries {
		t.Errorf("DLQ %+v, want the entry once with %d deliveries", dl, maxDeliveries)
	}
}

// TestSplitDuplicates checks the classification of TestFaultRun's
// duplicates on a made-up call log (no server needed).
func TestSplitDuplicates(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	mk := func(pid int, name string) *proc {
		return &proc{name: name, cmd: &exec.Cmd{Process: &os.Process{Pid: pid}}}
	}
	killed, frozen, briefly, alive := mk(1, "k"), mk(2, "f"), mk(3, "b"), mk(4, "a")
	killed.killedAt = at(10 * time.Second)
	frozen.stops = []stopSpan{{at(20 * time.Second), at(22 * time.Second)}}
	briefly.stops = []stopSpan{{at(30 * time.Second), at(30*time.Second + 100*time.Millisecond)}}
	call := func(id string, p *proc, d time.Duration) loggedCall {
		return loggedCall{id: id, instance: p.instance(), start: at(d), outcome: callHandled}
	}
	calls := []loggedCall{
		call("1", killed, 9*time.Second), call("1", alive, 11*time.Second), // after a kill
		call("2", killed, 11*time.Second), call("2", alive, 12*time.Second), // killed before it handled: live
		call("3", frozen, 19*time.Second), call("3", alive, 23*time.Second), // frozen past MinIdle: after a kill
		call("4", briefly, 29*time.Second), call("4", alive, 31*time.Second), // frozen briefly: live
		call("5", alive, time.Second), call("5", alive, 2*time.Second), call("5", alive, 3*time.Second), // live twice
		{id: "6", instance: alive.instance(), start: at(0), outcome: callFailed}, call("6", alive, time.Second), // a failure first: no duplicate
	}
	d := splitDuplicates(t, calls, []*proc{killed, frozen, briefly, alive}, 500*time.Millisecond)
	if d.afterKill != 2 || d.live != 4 || !slices.Equal(d.liveIDs, []string{"2", "4", "5"}) {
		t.Fatalf("split %+v, want 2 after a kill, 4 live in entries 2, 4 and 5", d)
	}
}
