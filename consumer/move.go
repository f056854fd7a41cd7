package consumer

import (
	"context"
	"sync"

	"github.com/midstream-go/midstream/deadletter"
)

// maxMoveAttempts bounds how many times in a row the mover tries one
// dead-letter move that keeps failing with a transient error before it lets
// the entry go from the ledger: it stays pending for this consumer, and the
// audit finds it again (past the delivery limit, the claim script hands it
// back to the dead-letter path without a delivery).
const maxMoveAttempts = 10

// mover tries again, with backoff and apart from the acknowledgements, the
// dead-letter moves that failed. Their entries stay held (leased, counted
// in the in-flight bound) meanwhile.
type mover struct {
	c      *Consumer
	ledger *ledger
	mu     sync.Mutex
	queue  []pendingMove
	wake   chan struct{}
	quit   context.Context
	stop   context.CancelFunc
}

type pendingMove struct {
	r        deadletter.MoveRequest
	attempts int
}

func newMover(c *Consumer, l *ledger) *mover {
	quit, stop := context.WithCancel(context.Background())
	return &mover{c: c, ledger: l, wake: make(chan struct{}, 1), quit: quit, stop: stop}
}

// add queues a move that failed once.
func (m *mover) add(r deadletter.MoveRequest) {
	m.mu.Lock()
	m.queue = append(m.queue, pendingMove{r: r, attempts: 1})
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run tries the queued moves until stop; what is left then stays pending
// for this consumer.
func (m *mover) run() {
	var b backoff
	for {
		select {
		case <-m.wake:
		case <-m.quit.Done():
			return
		}
		for m.tryAll() {
			if !b.Wait(m.quit) {
				return
			}
		}
		b.Reset()
	}
}

// tryAll tries every queued move once, each on its own; it reports whether
// some are left to try again.
func (m *mover) tryAll() (left bool) {
	c := m.c
	m.mu.Lock()
	queue := m.queue
	m.queue = nil
	m.mu.Unlock()
	var again []pendingMove
	for _, p := range queue {
		ctx, cancel := context.WithTimeout(m.quit, flushTimeout)
		moved, err := c.dlq.Move(ctx, p.r)
		cancel()
		class := c.faults.observe(opMove, err)
		switch {
		case err == nil:
			c.moved(p.r.ID, moved)
			m.ledger.release(p.r.ID)
		case m.quit.Err() != nil:
			// Stopping: the entry stays pending for this consumer.
		case class != classConfig && p.attempts+1 >= maxMoveAttempts:
			c.log.Error("dead-lettering keeps failing; leaving the entry pending for a later attempt", "id", p.r.ID, "attempts", p.attempts+1, "error", err)
			m.ledger.release(p.r.ID)
		default:
			if class == classTopology {
				c.refresh(m.quit)
			}
			p.attempts++
			again = append(again, p)
		}
	}
	if len(again) == 0 {
		return false
	}
	m.mu.Lock()
	m.queue = append(again, m.queue...)
	m.mu.Unlock()
	return true
}
