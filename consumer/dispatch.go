package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
)

// dispatcher runs handlers on a fixed set of workers.
//
// A read or a claim hands over a whole batch at once; the workers that pick
// it up take its messages one at a time through a shared cursor. While
// handlers are slow (their average time above spreadAbove), a worker that
// takes a message while others remain offers the batch to one more worker,
// so handlers run concurrently, message by message. While they are fast, a
// worker drains the batch alone: waking another worker would cost more
// than the handler. A message that then stalls the batch for longer than
// stallAfter has its batch offered by the worker's stall timer, so the
// messages behind it wait at most that long for a worker.
type dispatcher struct {
	c      *Consumer
	ctx    context.Context // handlers' ctx
	ledger *ledger
	acks   *acker
	mover  *mover
	work   chan *batch
	quit   chan struct{} // closed when workers should exit
	wg     sync.WaitGroup
	done   chan struct{} // closed when every worker has exited

	// running[i] is the message worker i is handling.
	running   []atomic.Pointer[Message]
	abandoned atomic.Bool
	// gate runs reclaimed entries alone (see isolate.go).
	gate sync.RWMutex
	// handleNs is the moving average of handler durations (nanoseconds),
	// including acknowledgement queueing.
	handleNs atomic.Int64
}

const (
	// spreadAbove is the average handler time above which batches are
	// spread over workers message by message: about what waking a worker
	// costs.
	spreadAbove = 20 * time.Microsecond
	// stallAfter is how long a worker draining a batch alone may spend on
	// one message before the rest of the batch is offered to another
	// worker.
	stallAfter = 2 * time.Millisecond
)

// batch is what one read or claim returned, shared by the workers that take
// from it. The ledger maps each held entry to its batch.
type batch struct {
	msgs    []Message
	touched atomic.Int64 // when it was read or its lease last extended (UnixNano)
	next    atomic.Int64 // index of the next message to take
	offered atomic.Bool  // the batch waits in the work channel
}

func newBatch() *batch {
	b := &batch{}
	b.touched.Store(time.Now().UnixNano())
	return b
}

func newDispatcher(c *Consumer, ctx context.Context, l *ledger, acks *acker, mv *mover) *dispatcher {
	d := &dispatcher{
		c:      c,
		ctx:    ctx,
		ledger: l,
		acks:   acks,
		mover:  mv,
		// A batch waits in the channel at most once at a time and holds at
		// least one unfinished message then; batches hold ledger room, so
		// there are never more than the in-flight bound of them. The room
		// to spare covers batches finished while they waited. Sends thus
		// never block.
		work:    make(chan *batch, c.cfg.maxInFlight+c.cfg.concurrency),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		running: make([]atomic.Pointer[Message], c.cfg.concurrency),
	}
	d.handleNs.Store(int64(spreadAbove)) // spread until handlers prove fast
	for i := range c.cfg.concurrency {
		d.wg.Add(1)
		go d.worker(i)
	}
	go func() {
		d.wg.Wait()
		close(d.done)
	}()
	return d
}

// submit hands b's messages, held in the ledger, to the workers.
func (d *dispatcher) submit(b *batch) {
	if len(b.msgs) == 0 {
		return
	}
	d.ledger.submitted(len(b.msgs))
	b.offered.Store(true)
	d.work <- b
}

// stop makes idle workers exit.
func (d *dispatcher) stop() { close(d.quit) }

// abandon makes workers skip the messages they have not started.
func (d *dispatcher) abandon() { d.abandoned.Store(true) }

// solo is what a worker's stall timer looks at: the batch the worker
// drains alone, and when it started its message.
type solo struct {
	batch   atomic.Pointer[batch]
	started atomic.Int64 // time.Since(epoch) in nanoseconds
	epoch   time.Time
	timer   *time.Timer
}

func (d *dispatcher) worker(i int) {
	defer d.wg.Done()
	w := &solo{epoch: time.Now()}
	w.timer = time.AfterFunc(time.Hour, func() { d.stalled(w) })
	w.timer.Stop()
	defer w.timer.Stop()
	for {
		select {
		case b := <-d.work:
			d.run(b, &d.running[i], w)
		case <-d.quit:
			return
		}
	}
}

// stalled runs when w's timer fires: it offers w's batch if its message has
// run for stallAfter, or waits for the rest of that time.
func (d *dispatcher) stalled(w *solo) {
	b := w.batch.Load()
	if b == nil {
		return
	}
	if left := stallAfter - (time.Since(w.epoch) - time.Duration(w.started.Load())); left > 0 {
		w.timer.Reset(left)
		return
	}
	d.offer(b)
}

// offer offers b, unless it is drained or already offered, to one more
// worker.
func (d *dispatcher) offer(b *batch) {
	if b.next.Load() >= int64(len(b.msgs)) || !b.offered.CompareAndSwap(false, true) {
		return
	}
	select {
	case d.work <- b: // one more worker may join
	default:
		b.offered.Store(false)
	}
}

// run handles messages of b until none is left to take, publishing the one
// in hand in slot. While it drains b alone, w's timer watches for a stall.
func (d *dispatcher) run(b *batch, slot *atomic.Pointer[Message], w *solo) {
	b.offered.Store(false)
	defer func() {
		if w.batch.Load() != nil {
			w.batch.Store(nil)
			w.timer.Stop()
		}
	}()
	for {
		i := int(b.next.Add(1)) - 1
		if i >= len(b.msgs) {
			return
		}
		if i+1 < len(b.msgs) {
			if time.Duration(d.handleNs.Load()) >= spreadAbove {
				d.offer(b)
			} else {
				w.started.Store(int64(time.Since(w.epoch)))
				if w.batch.Load() == nil {
					w.batch.Store(b)
					w.timer.Reset(stallAfter)
				}
			}
		}
		m := &b.msgs[i]
		switch {
		case d.abandoned.Load():
			// Shutdown ran out of time: the entry stays pending.
		case m.isGone():
			// Lease extension found it acknowledged, deleted or claimed by
			// another consumer before a worker took it.
			d.ledger.release(m.ID)
		default:
			slot.Store(m)
			start := time.Since(w.epoch)
			d.handle(m)
			d.timed(time.Since(w.epoch) - start)
			slot.Store(nil)
		}
		d.ledger.finished()
	}
}

// timed adds a handler's duration to the moving average (weight 1/8).
func (d *dispatcher) timed(took time.Duration) {
	old := d.handleNs.Load()
	d.handleNs.Store(old + (int64(took)-old)/8) // a lost update among workers only blurs it
}

// inFlight is the number of handlers running.
func (d *dispatcher) inFlight() int64 {
	var n int64
	for i := range d.running {
		if d.running[i].Load() != nil {
			n++
		}
	}
	return n
}

func (d *dispatcher) handle(m *Message) {
	c := d.c
	mctx, obs := c.obs.begin(d.ctx, m) // carries m's span, if tracing
	defer c.obs.end(&obs)
	if m.oversized {
		reason := fmt.Sprintf("%v: %d bytes > limit %d", midstream.ErrTooLarge, m.size(), c.cfg.maxEntrySize)
		c.obs.rejected(&obs, errors.New(reason))
		d.deadLetter(mctx, m, reason)
		return
	}
	if m.Deliveries > int64(c.cfg.maxDeliveries) {
		// Claims hand entries past the limit to the dead-letter path
		// without delivering them; this only guards against a server count
		// raised meanwhile by someone else. The handlers had the entry one
		// time fewer: that is what the dead-letter entry records.
		m.Deliveries--
		reason := fmt.Sprintf("delivered %d times without success (limit %d)", m.Deliveries, c.cfg.maxDeliveries)
		c.obs.rejected(&obs, errors.New(reason))
		d.deadLetter(mctx, m, reason)
		return
	}
	leave, ok := d.enter(m)
	if !ok {
		return
	}
	defer leave()
	ctx := mctx
	if c.cfg.handlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.handlerTimeout)
		defer cancel()
	}
	err := safeHandle(ctx, c.handler, m)
	if err != nil && c.cfg.handlerTimeout > 0 && ctx.Err() == context.DeadlineExceeded && d.ctx.Err() == nil {
		err = &TimeoutError{After: c.cfg.handlerTimeout, Err: err}
	}
	c.obs.handled(&obs, m, err)
	if err == nil {
		c.stats.handled.Add(1)
		if c.cfg.syncAck || m.reclaimed {
			d.acks.addWait(d.ctx, m.ID)
		} else {
			d.acks.add(m.ID)
		}
		return
	}
	c.stats.failed.Add(1)
	if misconfiguredHandler(err) {
		// A configuration error, not the entry's: it stays pending, and
		// Run stops with the error.
		c.log.Error("the handler cannot work; stopping", "id", m.ID, "error", err)
		d.abandon() // the entries not started stay pending too
		c.faults.handlerFatal(err)
		d.ledger.release(m.ID)
		return
	}
	if d.ctx.Err() != nil {
		// Cancelled by a shutdown that ran out of time: not an attempt
		// that should count towards the limit. It stays pending.
		c.log.Warn("handler stopped by shutdown; entry stays pending", "id", m.ID, "deliveries", m.Deliveries, "error", err)
		d.ledger.release(m.ID)
		return
	}
	permanent := isPermanent(err)
	if permanent || m.Deliveries >= int64(c.cfg.maxDeliveries) {
		c.log.Warn("handler failed; dead-lettering the entry", "id", m.ID, "deliveries", m.Deliveries, "permanent", permanent, "error", err)
		reason := err.Error()
		if !permanent {
			reason = fmt.Sprintf("handler failed %d times (limit %d): %v", m.Deliveries, c.cfg.maxDeliveries, err)
		}
		d.deadLetter(mctx, m, reason)
		return
	}
	// Given back: the entry stays pending in the group, owned by
	// RetryOwner and scheduled in the retry schedule, and the retry loop
	// of a consumer of the group delivers it again after its delay.
	d.acks.giveBack(m.ID, c.retryDelay(m, err))
	c.stats.retried.Add(1)
	attrs := []any{"id", m.ID, "deliveries", m.Deliveries, "error", err}
	if pe, ok := err.(*PanicError); ok {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	c.log.Warn("handler failed; entry stays pending", attrs...)
}

// deadLetter moves m, which this consumer owns, to the dead-letter stream
// (with parent's values: m's span). m leaves the ledger once the move is
// confirmed (or Redis says m is no longer pending for this consumer); if
// the move fails, m stays held and the acker tries the move again with
// backoff.
func (d *dispatcher) deadLetter(parent context.Context, m *Message, reason string) {
	c := d.c
	r := deadletter.MoveRequest{
		ID: m.ID, Fields: m.Fields(), Group: c.group, Consumer: c.cfg.name, Deliveries: m.Deliveries, Reason: reason,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), flushTimeout)
	defer cancel()
	moved, err := c.dlq.Move(ctx, r)
	c.faults.observe(opMove, err)
	if err != nil {
		c.log.Error("dead-lettering failed; retrying", "id", m.ID, "error", err)
		d.mover.add(r)
		return
	}
	c.moved(r.ID, moved)
	d.ledger.release(m.ID)
}

// moved counts and logs a confirmed dead-letter move.
func (c *Consumer) moved(id string, moved bool) {
	if moved {
		c.stats.deadLettered.Add(1)
		return
	}
	c.log.Info("entry not dead-lettered: no longer pending for this consumer", "id", id)
}
