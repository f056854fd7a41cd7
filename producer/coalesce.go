package producer

import (
	"context"
	"runtime"
	"sync"

	"github.com/redis/go-redis/v9"
)

const (
	// maxCoalesced bounds the commands one coalesced pipeline carries.
	maxCoalesced = 1000
	// coalesceFlights is how many commands or pipelines a Producer keeps in
	// flight before queueing: with two, one batch fills while the other is
	// on the wire.
	coalesceFlights = 2
)

// coalescer merges concurrent Publish calls into pipelines (group commit).
// A call that finds fewer than coalesceFlights commands or pipelines in
// flight sends its command at once, so a lone caller pays no extra latency.
// Calls that arrive while that many are in flight queue up; when a flight
// completes, its sender (in a goroutine) sends everything queued as one
// pipeline, and keeps doing so until the queue is empty, then exits.
//
// Calls that overlap in time have no order between them, so flights may
// complete in any order; a caller's successive calls stay in order.
type coalescer struct {
	send    func(context.Context, ...*redis.StringCmd) // sends one command or a pipeline
	mu      sync.Mutex
	flights int
	queue   []*call
}

type call struct {
	cmd       *redis.StringCmd
	done      chan struct{}
	taken     bool // in a pipeline on its way (guarded by coalescer.mu)
	cancelled bool // its caller gave up before it was taken: never sent
}

// do sends cmd, alone or in a pipeline with others, and reports whether it
// was sent and completed. It returns false if ctx ended while cmd waited
// for a pipeline: then it is never sent. Once its pipeline is on its way, do
// waits for the reply whatever ctx does, so that the caller knows the
// outcome and its next call cannot overtake this one.
func (b *coalescer) do(ctx context.Context, cmd *redis.StringCmd) bool {
	b.mu.Lock()
	if b.flights < coalesceFlights {
		b.flights++
		b.mu.Unlock()
		b.send(ctx, cmd)
		b.handOff()
		return true
	}
	c := &call{cmd: cmd, done: make(chan struct{})}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !c.taken {
		c.cancelled = true
		b.mu.Unlock()
		return false
	}
	b.mu.Unlock()
	<-c.done
	return true
}

// handOff is called by whoever finished sending: it starts a goroutine for
// the calls that queued meanwhile, or ends the flight.
func (b *coalescer) handOff() {
	batch := b.take()
	if batch == nil {
		return
	}
	go func() {
		for batch != nil {
			b.sendBatch(batch)
			// Let the callers just answered queue their next commands, so
			// the next pipeline carries them too (measured: about 1.6 times
			// longer pipelines, a quarter less CPU per entry).
			runtime.Gosched()
			batch = b.take()
		}
	}()
}

// take removes up to maxCoalesced queued calls, dropping those whose caller
// gave up; if none are left it ends the caller's flight and returns nil.
func (b *coalescer) take() []*call {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*call
	for len(b.queue) > 0 && len(batch) < maxCoalesced {
		c := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		if c.cancelled {
			continue
		}
		c.taken = true
		batch = append(batch, c)
	}
	if len(b.queue) == 0 {
		b.queue = nil
	}
	if len(batch) == 0 {
		b.flights--
		return nil
	}
	return batch
}

func (b *coalescer) sendBatch(batch []*call) {
	cmds := make([]*redis.StringCmd, len(batch))
	for i, c := range batch {
		cmds[i] = c.cmd
	}
	b.send(context.Background(), cmds...)
	for _, c := range batch {
		close(c.done)
	}
}
