package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
)

// Consumer is one member of a consumer group, reading a stream with
// XREADGROUP and handing entries to a Handler. Create it with New and start
// it with Run.
type Consumer struct {
	client  redis.UniversalClient
	stream  string
	group   string
	handler Handler
	cfg     config
	log     *slog.Logger
	dlq     *deadletter.Queue
	obs     *observer

	running atomic.Bool
	stats   stats
	faults  faults
	// lastRead is the highest entry ID this consumer has read (as a string),
	// used to recreate a deleted group without skipping entries.
	lastRead atomic.Pointer[string]
	// readSince is when the read under way started, as 1 + nanoseconds
	// since epoch (a monotonic clock), 0 when no read is under way: claims
	// of the consumer's own entries leave that read's entries alone.
	readSince atomic.Int64
	epoch     time.Time
	// workersDone is closed once every worker of the last Run has exited
	// (handlers it abandoned included).
	workersDone chan struct{}
	// reclaimFrom is where the next reclaim pass resumes in the pending
	// list ("" for its start); only the reclaim loop uses it.
	reclaimFrom string
	// retryWake tells the retry loop that entries were scheduled.
	retryWake chan struct{}
	// side consumes the entries redriven to the group (see redrive.go);
	// nil for a side consumer itself.
	side *Consumer
	// parts are the consumers of the partitions, WithPartitions; nil
	// otherwise (see partition.go).
	parts []*Consumer
	// checkPlain makes Run refuse a stream that is the logical name of a
	// partitioned one: set on consumers New returns without partitions.
	checkPlain bool
}

// New returns a consumer of stream in group, handing each entry to h. The
// caller keeps ownership of client. Bad arguments fail here with an error
// wrapping midstream.ErrInvalidOption or midstream.ErrInvalidStream: a nil
// client or handler (a nil HandlerFunc included), a group name that is
// empty or holds control characters, a bad option (see Option).
func New(client redis.UniversalClient, stream, group string, h Handler, opts ...Option) (*Consumer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(stream); err != nil {
		return nil, err
	}
	if err := midstream.CheckName("group", group); err != nil {
		return nil, err
	}
	if err := checkHandler(h); err != nil {
		return nil, err
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	handler := Chain(h, cfg.middleware...)
	if err := checkHandler(handler); err != nil {
		return nil, fmt.Errorf("%w (returned by a middleware)", err)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.partitions != nil {
		return newPartitioned(client, stream, group, handler, cfg)
	}
	if cfg.assigned != nil {
		return nil, fmt.Errorf("%w: WithAssignedPartitions without WithPartitions", midstream.ErrInvalidOption)
	}
	c, err := newOne(client, stream, group, handler, cfg)
	if err != nil {
		return nil, err
	}
	c.checkPlain = true
	return c, nil
}

// newOne returns a consumer of one stream, of checked arguments, with its
// side consumer.
func newOne(client redis.UniversalClient, stream, group string, handler Handler, cfg config) (*Consumer, error) {
	if cfg.dlq == nil {
		q, err := deadletter.New(client, stream, deadLetterOptions(cfg.otel)...)
		if err != nil {
			return nil, err
		}
		cfg.dlq = q
	} else if cfg.dlq.Source() != stream {
		return nil, fmt.Errorf("%w: dead-letter queue of %q used for %q", midstream.ErrInvalidOption, cfg.dlq.Source(), stream)
	}
	c := build(client, stream, group, handler, cfg)
	c.side = newSide(c)
	return c, nil
}

// build returns a consumer of checked arguments.
func build(client redis.UniversalClient, stream, group string, handler Handler, cfg config) *Consumer {
	c := &Consumer{
		client:    client,
		stream:    stream,
		group:     group,
		handler:   handler,
		cfg:       cfg,
		dlq:       cfg.dlq,
		retryWake: make(chan struct{}, 1),
	}
	c.epoch = time.Now()
	c.log = cfg.logger.With("stream", stream, "group", group, "consumer", cfg.name)
	c.initObservability()
	return c
}

// defaultName returns "<host>-<pid>-<random>".
func defaultName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Name returns the consumer's name in its group.
func (c *Consumer) Name() string { return c.cfg.name }

// Stats are a consumer's running totals.
type Stats struct {
	Handled      int64 // handler calls that returned nil
	Failed       int64 // handler calls that returned an error or panicked
	Acked        int64 // entries acknowledged with XACK
	Deleted      int64 // pending entries found deleted or trimmed, acknowledged without a handler call
	Reclaimed    int64 // idle entries claimed from the group's pending list to be delivered again
	DeadLettered int64 // entries this consumer moved to the dead-letter stream
	Retried      int64 // failed handler calls that left their entry pending for another delivery
}

// stats are the totals; those with an OpenTelemetry counter (see
// WithMeterProvider) count there too.
type stats struct {
	handled, failed, acked, deleted, reclaimed, deadLettered, retried statCounter
}

// Stats returns the consumer's totals so far, entries redriven to its
// group included.
func (c *Consumer) Stats() Stats {
	if c.parts != nil {
		var s Stats
		for _, p := range c.parts {
			s.add(p.Stats())
		}
		return s
	}
	s := c.ownStats()
	if c.side != nil {
		s.add(c.side.ownStats())
	}
	return s
}

// add adds t's totals to s's.
func (s *Stats) add(t Stats) {
	s.Handled += t.Handled
	s.Failed += t.Failed
	s.Acked += t.Acked
	s.Deleted += t.Deleted
	s.Reclaimed += t.Reclaimed
	s.DeadLettered += t.DeadLettered
	s.Retried += t.Retried
}

func (c *Consumer) ownStats() Stats {
	return Stats{
		Handled:      c.stats.handled.Load(),
		Failed:       c.stats.failed.Load(),
		Acked:        c.stats.acked.Load(),
		Deleted:      c.stats.deleted.Load(),
		Reclaimed:    c.stats.reclaimed.Load(),
		DeadLettered: c.stats.deadLettered.Load(),
		Retried:      c.stats.retried.Load(),
	}
}

// ErrRunning is returned by Run on a Consumer that is already running, or
// whose previous Run abandoned handlers that have not returned yet.
var ErrRunning = errors.New("consumer: already running")

// Run creates the group if needed (with MKSTREAM), takes the consumer's own
// pending entries that a predecessor under the same name left, then reads
// new ones, until ctx is cancelled. Transient errors (connection loss, a
// Redis restart, a failover) are logged and retried with backoff; a deleted
// stream or group is recreated. Run returns nil once ctx is cancelled and
// the shutdown is over, or an error wrapping midstream.ErrMisconfigured (and
// the Redis error) when Redis refuses the work in a way retrying cannot fix:
// at start, creating the group fails with WRONGTYPE or a missing
// permission; while running, one path (reading, acknowledging, claiming,
// extending leases, dead-lettering) meets such an error (NOPERM, WRONGTYPE,
// NOAUTH, WRONGPASS, an unknown command) five times in a row. Run then shuts
// down as on cancellation before it returns.
//
// Shutdown: reading stops (after the current XREADGROUP returns, within the
// block time on a healthy connection), handlers in flight and entries
// already read are given the shutdown timeout to finish, acknowledgements
// are flushed. Run returns once every goroutine it started has exited,
// except the goroutine of a handler that ignored its cancelled ctx past the
// timeout: that handler is abandoned and its entry stays pending.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	if c.parts != nil {
		return c.runPartitions(ctx)
	}
	if c.workersDone != nil {
		select {
		case <-c.workersDone:
		default:
			// Their entries are still pending for this consumer: a new
			// Run would take them again while they run.
			return fmt.Errorf("%w: handlers abandoned by the previous Run are still running", ErrRunning)
		}
	}
	if c.checkPlain {
		// The logical name of a partitioned stream holds no entries. A
		// failure to read the layout key is not held against the stream.
		if err := midstream.CheckUnpartitioned(ctx, c.client, c.stream); errors.Is(err, midstream.ErrPartitionLayout) {
			return fmt.Errorf("consumer: %w", err)
		}
	}
	if err := c.ensureGroup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	c.log.Debug("consumer started")
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	stopScheduler := c.runScheduler(runCtx)
	defer stopScheduler()
	c.faults.start(stopRun)

	// hardCtx is what handlers see: cancelled only when the grace period of
	// a shutdown runs out, so in-flight work can finish.
	hardCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()

	l := newLedger(c.cfg.maxInFlight)
	acks := newAcker(c, l)
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		acks.run()
	}()

	mv := newMover(c, l)
	moveDone := make(chan struct{})
	go func() {
		defer close(moveDone)
		mv.run()
	}()
	d := newDispatcher(c, hardCtx, l, acks, mv)
	c.workersDone = d.done
	stopObserving := c.observeRun(d)
	defer stopObserving()
	leaseStop, leaseDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(leaseDone)
		c.leaseLoop(leaseStop, d)
	}()
	c.heartbeat(runCtx)
	// What a predecessor under the same name left pending, first.
	_, err := c.audit(runCtx, d, 0)
	c.report(runCtx, opAudit, err)
	pokeAudit := make(chan struct{}, 1)
	reclaimDone, retryDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reclaimDone)
		c.reclaimLoop(runCtx, d, pokeAudit)
	}()
	go func() {
		defer close(retryDone)
		c.retryLoop(runCtx, d)
	}()
	sideDone := c.runSide(runCtx)
	c.readLoop(runCtx, d, pokeAudit)
	<-reclaimDone // nothing is submitted after this
	<-retryDone

	// Shutdown: no more reads; let the workers finish what was read.
	drained := l.drain()
	grace := time.NewTimer(c.cfg.shutdownTimeout)
	defer grace.Stop()
	finished := true
	select {
	case <-drained:
	case <-grace.C:
		c.log.Warn("shutdown timeout: cancelling handlers", "in_flight", d.inFlight())
		d.abandon()
		hardStop()
		select {
		case <-drained:
		case <-time.After(abandonWait):
			finished = false
			c.log.Error("handlers ignore their cancelled context: abandoning them; their entries stay pending", "in_flight", d.inFlight())
		}
	}
	d.stop()
	if finished {
		<-d.done // every worker is idle and exits at once
	}
	// Leases run on until the last acknowledgements are flushed: an entry
	// waiting for its XACK must not be taken by another consumer meanwhile.
	mv.stop()
	<-moveDone
	acks.stop()
	<-ackDone
	close(leaseStop)
	<-leaseDone
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	c.farewell(fctx)
	cancel()
	<-sideDone
	c.log.Debug("consumer stopped", "handled", c.stats.handled.Load(), "failed", c.stats.failed.Load())
	if err := context.Cause(runCtx); ctx.Err() == nil && errors.Is(err, midstream.ErrMisconfigured) {
		c.log.Error("consumer stopped: Redis refuses its work", "error", err)
		return err
	}
	return nil
}

// abandonWait is how long a shutdown waits for handlers after cancelling
// their ctx, before abandoning them.
const abandonWait = time.Second
