package consumer

import (
	"context"
	"sync"
	"time"
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
// and at shutdown. IDs whose XACK fails are kept and sent again; IDs that
// never make it (Redis unreachable through the shutdown) stay pending in the
// group and are delivered again: nothing is lost.
type acker struct {
	c      *Consumer
	mu     sync.Mutex
	ids    []string
	spare  []string // the last flushed slice, reused for the next IDs
	inXAck []string // the IDs of the XACK under way
	closed bool
	wake   chan struct{} // first ID added, or batch reached
	quit   context.Context
	stop   context.CancelFunc // makes run flush what is queued and return
}

func newAcker(c *Consumer) *acker {
	quit, stop := context.WithCancel(context.Background())
	return &acker{c: c, wake: make(chan struct{}, 1), quit: quit, stop: stop}
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
		select {
		case a.wake <- struct{}{}:
		default:
		}
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
		// Linger for more IDs unless a batch is already waiting.
		if a.queued() < c.cfg.ackBatch {
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
		if err != nil {
			c.log.Warn("acknowledging failed; retrying", "error", err)
			if !b.wait(a.quit) {
				continue // quitting: the next loop turn flushes a last time
			}
			a.poke()
			continue
		}
		b.reset()
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

func (a *acker) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ids)
}

// flush sends every queued ID. On failure the IDs are queued again.
func (a *acker) flush(ctx context.Context) error {
	a.mu.Lock()
	ids := a.ids
	a.ids, a.spare = a.spare[:0], nil
	a.inXAck = ids
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inXAck = nil
		a.mu.Unlock()
	}()
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
	if err != nil {
		if isNoGroup(err) {
			// The group and its pending entries are gone: nothing to ack.
			c.log.Warn("group missing while acknowledging; dropping acks", "count", len(ids))
			return nil
		}
		a.mu.Lock()
		a.ids = append(ids, a.ids...)
		a.mu.Unlock()
		return err
	}
	c.stats.acked.Add(int64(len(ids)))
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
		if !b.wait(ctx) {
			a.c.log.Error("could not acknowledge at shutdown; the entries stay pending", "count", a.queued(), "error", err)
			break
		}
	}
	a.mu.Lock()
	a.closed = true
	a.ids = nil
	a.mu.Unlock()
}
