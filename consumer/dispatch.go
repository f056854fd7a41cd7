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

// dispatcher runs handlers for the read loop on a fixed set of workers,
// bounding the entries in flight (read, not yet handled).
//
// The read loop hands over a whole batch at once; the workers that pick it
// up take its messages one at a time through a shared cursor. A worker that
// takes a message while others remain offers the batch to one more worker,
// so slow handlers still run concurrently, message by message, while fast
// ones drain a batch with a channel operation or two rather than one per
// message.
type dispatcher struct {
	c    *Consumer
	ctx  context.Context // handlers' ctx
	acks *acker
	work chan *batch
	quit chan struct{} // closed when workers should exit
	wg   sync.WaitGroup
	done chan struct{} // closed when every worker has exited

	draining  atomic.Bool
	drained   chan struct{} // closed when draining and nothing is in flight
	drainOnce sync.Once

	// running[i] is the message worker i is handling, and live the batches
	// with messages not yet handled: what lease extension covers.
	running []atomic.Pointer[Message]
	liveMu  sync.Mutex
	live    map[*batch]struct{}

	max       int64
	inflight  atomic.Int64
	waiting   atomic.Bool   // the read loop waits for room
	room      chan struct{} // wakes the read loop
	abandoned atomic.Bool
}

// batch is what one read returned, shared by the workers that take from it.
type batch struct {
	msgs    []Message
	since   time.Time    // when it was read
	next    atomic.Int64 // index of the next message to take
	left    atomic.Int64 // messages not yet finished
	offered atomic.Bool  // the batch waits in the work channel
}

func newDispatcher(c *Consumer, ctx context.Context, acks *acker) *dispatcher {
	d := &dispatcher{
		c:    c,
		ctx:  ctx,
		acks: acks,
		// A batch waits in the channel at most once at a time, and each
		// holds a message in flight when it is sent; the room to spare
		// covers batches finished while they waited. The read loop's send
		// thus never waits for a worker, and workers' offers never block.
		work:    make(chan *batch, 2*c.cfg.maxInFlight+c.cfg.concurrency),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
		max:     int64(c.cfg.maxInFlight),
		room:    make(chan struct{}, 1),
		running: make([]atomic.Pointer[Message], c.cfg.concurrency),
		live:    make(map[*batch]struct{}),
	}
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

// acquire waits until there is room for more entries in flight (for n, or
// for half the bound if that is less), then reserves room for up to n and
// returns how many (0 if ctx ended first). Waiting for some room rather than
// any keeps a saturated consumer reading in batches instead of one entry at
// a time. Only the read loop waits; the reclaim loop uses tryAcquire.
func (d *dispatcher) acquire(ctx context.Context, n int) int {
	low := min(int64(n), max(d.max/2, 1))
	for {
		if k := d.reserve(int64(n), low); k > 0 {
			return int(k)
		}
		d.waiting.Store(true)
		if d.max-d.inflight.Load() >= low { // released meanwhile
			d.waiting.Store(false)
			continue
		}
		select {
		case <-d.room:
		case <-ctx.Done():
			d.waiting.Store(false)
			return 0
		}
		d.waiting.Store(false)
	}
}

// tryAcquire reserves room for up to n entries without waiting.
func (d *dispatcher) tryAcquire(n int) int { return int(d.reserve(int64(n), 1)) }

// reserve takes room for up to n entries if at least low are free.
func (d *dispatcher) reserve(n, low int64) int64 {
	for {
		cur := d.inflight.Load()
		free := d.max - cur
		if free < low {
			return 0
		}
		k := min(free, n)
		if d.inflight.CompareAndSwap(cur, cur+k) {
			return k
		}
	}
}

// release frees room for n entries.
func (d *dispatcher) release(n int) {
	if d.inflight.Add(-int64(n)) == 0 && d.draining.Load() {
		d.drainOnce.Do(func() { close(d.drained) })
	}
	if d.waiting.Load() {
		select {
		case d.room <- struct{}{}:
		default:
		}
	}
}

func (d *dispatcher) inFlight() int64 { return d.inflight.Load() }

// submit hands msgs to the workers; the caller reserved room for them.
func (d *dispatcher) submit(msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	b := &batch{msgs: msgs, since: time.Now()}
	for i := range msgs {
		msgs[i].readAt = b.since
	}
	b.left.Store(int64(len(msgs)))
	b.offered.Store(true)
	d.liveMu.Lock()
	d.live[b] = struct{}{}
	d.liveMu.Unlock()
	d.work <- b
}

// drain is called once nothing more will be submitted; the channel it
// returns is closed when nothing is in flight.
func (d *dispatcher) drain() <-chan struct{} {
	d.draining.Store(true)
	if d.inflight.Load() == 0 {
		d.drainOnce.Do(func() { close(d.drained) })
	}
	return d.drained
}

// stop makes idle workers exit.
func (d *dispatcher) stop() { close(d.quit) }

// abandon makes workers skip the messages they have not started.
func (d *dispatcher) abandon() { d.abandoned.Store(true) }

func (d *dispatcher) worker(i int) {
	defer d.wg.Done()
	for {
		select {
		case b := <-d.work:
			d.run(b, &d.running[i])
		case <-d.quit:
			return
		}
	}
}

// run handles messages of b until none is left to take, publishing the one
// in hand in slot.
func (d *dispatcher) run(b *batch, slot *atomic.Pointer[Message]) {
	b.offered.Store(false)
	for {
		i := int(b.next.Add(1)) - 1
		if i >= len(b.msgs) {
			return
		}
		if i+1 < len(b.msgs) && b.offered.CompareAndSwap(false, true) {
			select {
			case d.work <- b: // one more worker may join
			default:
				b.offered.Store(false)
			}
		}
		if !d.abandoned.Load() {
			m := &b.msgs[i]
			slot.Store(m)
			d.handle(m)
			slot.Store(nil)
		}
		if b.left.Add(-1) == 0 {
			d.liveMu.Lock()
			delete(d.live, b)
			d.liveMu.Unlock()
		}
		d.release(1)
	}
}

// holding returns the IDs of every message of the batches not yet finished
// and of those waiting for their XACK: what this process holds.
func (d *dispatcher) holding() map[string]bool {
	held := make(map[string]bool)
	d.liveMu.Lock()
	for b := range d.live {
		for i := range b.msgs {
			held[b.msgs[i].ID] = true
		}
	}
	d.liveMu.Unlock()
	d.acks.mu.Lock()
	for _, ids := range [][]string{d.acks.ids, d.acks.inXAck} {
		for _, id := range ids {
			held[id] = true
		}
	}
	d.acks.mu.Unlock()
	return held
}

// inFlightOlder returns the IDs of messages read at least age ago and not
// yet handled: running, or waiting for a worker. (A message moving from one
// to the other meanwhile may be listed twice or, for one call, not at all.)
func (d *dispatcher) inFlightOlder(age time.Duration) []string {
	var ids []string
	cutoff := time.Now().Add(-age)
	for i := range d.running {
		if m := d.running[i].Load(); m != nil && !m.readAt.After(cutoff) {
			ids = append(ids, m.ID)
		}
	}
	d.liveMu.Lock()
	defer d.liveMu.Unlock()
	for b := range d.live {
		if b.since.After(cutoff) {
			continue
		}
		for i := int(min(b.next.Load(), int64(len(b.msgs)))); i < len(b.msgs); i++ {
			ids = append(ids, b.msgs[i].ID)
		}
	}
	return ids
}

func (d *dispatcher) handle(m *Message) {
	c := d.c
	mctx, obs := c.obs.begin(d.ctx, m) // carries m's span, if tracing
	defer c.obs.end(&obs)
	if m.oversized {
		reason := fmt.Sprintf("%v: %d bytes > limit %d", midstream.ErrTooLarge, entrySize(m.Fields), c.cfg.maxEntrySize)
		c.obs.rejected(&obs, errors.New(reason))
		d.deadLetter(mctx, m, reason)
		return
	}
	if m.Deliveries > int64(c.cfg.maxDeliveries) {
		// Read again from this consumer's own pending entries (after a
		// restart under the same name, or a failed read): the read itself
		// raised the server's count past the limit. The handlers had it
		// one time fewer; that is what the dead-letter entry records.
		m.Deliveries--
		reason := fmt.Sprintf("delivered %d times without success (limit %d)", m.Deliveries, c.cfg.maxDeliveries)
		c.obs.rejected(&obs, errors.New(reason))
		d.deadLetter(mctx, m, reason)
		return
	}
	ctx := mctx
	if c.cfg.handlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.handlerTimeout)
		defer cancel()
	}
	err := safeHandle(ctx, c.handler, m)
	c.obs.handled(&obs, m, err)
	if err == nil {
		c.stats.handled.Add(1)
		d.acks.add(m.ID)
		return
	}
	c.stats.failed.Add(1)
	if d.ctx.Err() != nil {
		// Cancelled by a shutdown that ran out of time: not an attempt
		// that should count towards the limit. It stays pending.
		c.log.Warn("handler stopped by shutdown; entry stays pending", "id", m.ID, "deliveries", m.Deliveries, "error", err)
		return
	}
	permanent := isPermanent(err)
	if permanent || m.Deliveries >= int64(c.cfg.maxDeliveries) {
		c.log.Warn("handler failed; dead-lettering the entry", "id", m.ID, "deliveries", m.Deliveries, "permanent", permanent, "error", err)
		d.deadLetter(mctx, m, err.Error())
		return
	}
	c.stats.retried.Add(1)
	attrs := []any{"id", m.ID, "deliveries", m.Deliveries, "error", err}
	if pe, ok := err.(*PanicError); ok {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	c.log.Warn("handler failed; entry stays pending", attrs...)
}

// deadLetter moves m, which this consumer owns, to the dead-letter stream
// (with parent's values: m's span). If that fails the entry stays pending
// and is delivered again later (past the delivery limit, the reclaim loop
// tries the move again itself).
func (d *dispatcher) deadLetter(parent context.Context, m *Message, reason string) {
	c := d.c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), flushTimeout)
	defer cancel()
	moved, err := c.dlq.Move(ctx, deadletter.MoveRequest{
		ID: m.ID, Fields: m.Fields, Group: c.group, Consumer: c.cfg.name, Deliveries: m.Deliveries, Reason: reason,
	})
	switch {
	case err != nil:
		c.log.Error("dead-lettering failed; entry stays pending", "id", m.ID, "error", err)
	case moved:
		c.stats.deadLettered.Add(1)
	default:
		c.log.Info("entry not dead-lettered: no longer pending for this consumer", "id", m.ID)
	}
}
