package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxIDsPerXAck bounds one XACK command; more IDs go in further commands of
// the same pipeline.
const maxIDsPerXAck = 1000

// flushTimeout bounds one flush, and finalFlushTimeout all attempts of the
// last one at shutdown. go-redis honours a ctx deadline when it waits for a
// connection or dials; a write or read already under way is bounded by the
// client's own timeouts.
const (
	flushTimeout      = 5 * time.Second
	finalFlushTimeout = 5 * time.Second
)

// acker coalesces acknowledgements: handlers add IDs, one goroutine sends
// them in XACKs once ackBatch are waiting or ackInterval after the first one,
// and at shutdown. An entry leaves the ledger only once Redis confirmed its
// XACK: until then it keeps its room (a failing acker stops the reading)
// and its lease. IDs whose XACK fails are kept and sent again; IDs that
// never make it (Redis unreachable through the shutdown) stay pending in the
// group and are delivered again: nothing is lost.
type acker struct {
	c      *Consumer
	ledger *ledger
	mu     sync.Mutex
	ids    []string
	spare  []string // the last flushed slice, reused for the next IDs
	// parked are the failed entries to hand to RetryOwner.
	parked []parkedEntry
	// waiters are closed once the IDs queued with them are confirmed (or
	// the acker stops): workers of a consumer with synchronous acks wait.
	waiters []chan struct{}
	closed  bool
	wake    chan struct{} // first ID added, or batch reached
	quit    context.Context
	stop    context.CancelFunc // makes run flush what is queued and return
}

func newAcker(c *Consumer, l *ledger) *acker {
	quit, stop := context.WithCancel(context.Background())
	return &acker{c: c, ledger: l, wake: make(chan struct{}, 1), quit: quit, stop: stop}
}

// add queues id for acknowledgement. After stop it does nothing: the entry
// stays pending.
func (a *acker) add(id string) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.ids = append(a.ids, id)
	n := len(a.ids)
	a.mu.Unlock()
	if n == 1 || n == a.c.cfg.ackBatch {
		a.poke()
	}
}

// parkedEntry is a failed entry to hand over to RetryOwner, due for its
// retry after delay.
type parkedEntry struct {
	id    string
	delay time.Duration
}

// giveBack queues id, whose handler failed, to be handed over to
// RetryOwner and scheduled for a retry after delay: it leaves the ledger
// once that is done. After stop it does nothing: the entry stays pending
// for this consumer.
func (a *acker) giveBack(id string, delay time.Duration) {
	a.queue(func() { a.parked = append(a.parked, parkedEntry{id, delay}) })
}

// queue runs add under the lock, unless the acker has stopped, and wakes
// the acknowledging goroutine.
func (a *acker) queue(add func()) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	add()
	a.mu.Unlock()
	a.poke()
}

// addWait queues id and waits until its XACK is confirmed, the acker stops
// (the entry then stays pending), or ctx ends.
func (a *acker) addWait(ctx context.Context, id string) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.ids = append(a.ids, id)
	// One channel serves every waiter of the IDs queued since the last
	// flush started.
	if len(a.waiters) == 0 || len(a.ids) == 1 {
		a.waiters = append(a.waiters, make(chan struct{}))
	}
	w := a.waiters[len(a.waiters)-1]
	a.mu.Unlock()
	a.poke()
	select {
	case <-w:
	case <-ctx.Done():
	}
}

func (a *acker) run() {
	c := a.c
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var b backoff
	for {
		select {
		case <-a.wake:
		case <-a.quit.Done():
			a.finalFlush()
			return
		}
		// Linger for more IDs unless a batch is already waiting, or a
		// worker waits for its acknowledgement.
		if a.queued() < c.cfg.ackBatch && !c.cfg.syncAck && !a.awaited() {
			linger.Reset(c.cfg.ackInterval)
		wait:
			for a.queued() < c.cfg.ackBatch {
				select {
				case <-linger.C:
					break wait
				case <-a.wake:
				case <-a.quit.Done():
					break wait
				}
			}
			linger.Stop()
		}
		fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		err := a.flush(fctx)
		cancel()
		class := c.faults.observe(opAck, err)
		if err != nil {
			c.log.Warn("acknowledging failed; retrying", "error", err)
			if class == classTopology {
				c.refresh(a.quit)
			}
			if !b.Wait(a.quit) {
				continue // quitting: the next loop turn flushes a last time
			}
			a.poke()
			continue
		}
		b.Reset()
		if a.queued() > 0 {
			a.poke()
		}
	}
}

func (a *acker) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// awaited reports whether a worker waits for an acknowledgement (addWait).
func (a *acker) awaited() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.waiters) > 0
}

func (a *acker) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ids) + len(a.parked)
}

// flush sends every queued ID: acknowledgements, and failed entries to
// hand to RetryOwner. On success they leave the ledger; on failure they are
// queued again.
func (a *acker) flush(ctx context.Context) error {
	err := a.flushAcks(ctx)
	if e := a.flushParked(ctx); e != nil && err == nil {
		err = e
	}
	return err
}

// flushAcks sends the queued IDs in XACKs.
func (a *acker) flushAcks(ctx context.Context) error {
	a.mu.Lock()
	ids, waiters := a.ids, a.waiters
	a.ids, a.spare, a.waiters = a.spare[:0], nil, nil
	a.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	c := a.c
	var err error
	if len(ids) <= maxIDsPerXAck {
		err = c.client.XAck(ctx, c.stream, c.group, ids...).Err()
	} else {
		pipe := c.client.Pipeline()
		for i := 0; i < len(ids); i += maxIDsPerXAck {
			pipe.XAck(ctx, c.stream, c.group, ids[i:min(i+maxIDsPerXAck, len(ids))]...)
		}
		_, err = pipe.Exec(ctx)
	}
	if err != nil && classify(err) == classNoGroup {
		// The group and its pending entries are gone: nothing to ack.
		c.log.Warn("group missing while acknowledging; dropping acks", "count", len(ids))
		err = nil
	} else if err != nil {
		a.mu.Lock()
		a.ids = append(ids, a.ids...)
		a.waiters = append(waiters, a.waiters...)
		a.mu.Unlock()
		return err
	} else {
		c.stats.acked.Add(int64(len(ids)))
		a.callOnAck(ids)
	}
	a.ledger.release(ids...)
	for _, w := range waiters {
		close(w)
	}
	a.mu.Lock()
	if a.spare == nil {
		a.spare = ids[:0]
	}
	a.mu.Unlock()
	return nil
}

// finalFlush sends what is queued, trying for a bounded time, and refuses
// further IDs.
func (a *acker) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), finalFlushTimeout)
	defer cancel()
	var b backoff
	for {
		err := a.flush(ctx)
		if err == nil {
			break
		}
		if classify(err) == classConfig || !b.Wait(ctx) {
			a.c.log.Error("could not acknowledge at shutdown; the entries stay pending", "count", a.queued(), "error", err)
			break
		}
	}
	a.mu.Lock()
	a.closed = true
	a.ids = nil
	for _, w := range a.waiters {
		close(w)
	}
	a.waiters = nil
	a.mu.Unlock()
}

// parkScript hands entries still pending for a consumer to another
// (XCLAIM … JUSTID: the delivery count is unchanged, the idle time
// restarts) and schedules each for its retry in the retry schedule (see
// RetryKey), in one step: a crash or a lost reply leaves the entry either
// still this consumer's or parked and scheduled. An entry deleted from the
// stream meanwhile is acknowledged instead (XCLAIM would drop it silently)
// and its ID returned.
//
// KEYS[1] stream, KEYS[2] retry schedule; ARGV[1] group, ARGV[2] consumer,
// ARGV[3] new owner, ARGV[4..] pairs of ID and delay in milliseconds.
var parkScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deleted = {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    if #redis.call('XRANGE', KEYS[1], id, id) == 0 then
      redis.call('XACK', KEYS[1], ARGV[1], id)
      redis.call('ZREM', KEYS[2], id)
      table.insert(deleted, id)
    else
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, id, 'RETRYCOUNT', p[1][4], 'JUSTID')
      redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i + 1]), id)
    end
  end
end
return deleted
`)

// flushParked hands the failed entries queued with giveBack to RetryOwner,
// scheduled for their retry, and lets them go from the ledger.
func (a *acker) flushParked(ctx context.Context) error {
	a.mu.Lock()
	parked := a.parked
	a.parked = nil
	a.mu.Unlock()
	if len(parked) == 0 {
		return nil
	}
	c := a.c
	keys := []string{c.stream, RetryKey(c.stream, c.group)}
	for i := 0; i < len(parked); i += maxIDsPerExtend {
		chunk := parked[i:min(i+maxIDsPerExtend, len(parked))]
		args := make([]any, 0, 3+2*len(chunk))
		args = append(args, c.group, c.cfg.name, RetryOwner)
		ids := make([]string, len(chunk))
		for j, p := range chunk {
			args = append(args, p.id, p.delay.Milliseconds())
			ids[j] = p.id
		}
		deleted, err := parkScript.Run(ctx, c.client, keys, args...).StringSlice()
		if err != nil && classify(err) != classNoGroup {
			a.mu.Lock()
			a.parked = append(parked[i:], a.parked...)
			a.mu.Unlock()
			return err
		}
		for _, id := range deleted {
			c.stats.deleted.Add(1)
			c.stats.acked.Add(1)
			c.log.Warn("failed entry was deleted or trimmed from the stream; acknowledged it", "id", id)
		}
		a.ledger.release(ids...)
	}
	c.wakeRetries()
	return nil
}

// callOnAck calls the WithOnAck hook, recovering and logging a panic.
func (a *acker) callOnAck(ids []string) {
	if a.c.cfg.onAck == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			a.c.log.Error("ack hook panicked", "panic", r)
		}
	}()
	a.c.cfg.onAck(ids)
}
