package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ledger is the one record of what this consumer process holds: every
// entry ID that a read, a claim or an audit returned to it, until Redis
// confirms the entry's XACK or its dead-letter move, or the process gives
// the entry back (its handler failed: it stays pending for a later
// delivery). Every path that takes entries consults it: an ID already held
// is never taken twice, whichever path returns it. Lease extension covers
// every held entry, including those waiting for their XACK, and the
// in-flight bound counts held entries, so an acker that cannot reach Redis
// stops the reading. Its memory is bounded by the in-flight bound.
//
// Room is reserved before a read (the read asks for at most that many
// entries) and freed when an entry leaves the ledger, or when a read
// returns fewer entries than reserved.
type ledger struct {
	mu   sync.Mutex
	held map[string]*batch // the batch each held entry belongs to

	max  int64
	used atomic.Int64 // reserved room plus held entries

	// claimWant is room the claim paths wait for: reads leave it free, so
	// that idle entries are reclaimed even while new entries keep coming.
	claimWant atomic.Int64

	readWaiting, claimWaiting atomic.Bool
	readRoom, claimRoom       chan struct{}

	// drained wakes shutdown when the last submitted message is finished.
	unfinished atomic.Int64
	draining   atomic.Bool
	drained    chan struct{}
	drainOnce  sync.Once
}

func newLedger(max int) *ledger {
	return &ledger{
		held:      make(map[string]*batch, max),
		max:       int64(max),
		readRoom:  make(chan struct{}, 1),
		claimRoom: make(chan struct{}, 1),
		drained:   make(chan struct{}),
	}
}

// reserve takes room for up to n entries if at least low are free, keeping
// keep free; it returns how many it took.
func (l *ledger) reserve(n, low, keep int64) int64 {
	for {
		cur := l.used.Load()
		free := l.max - cur - keep
		if free < low || free <= 0 {
			return 0
		}
		k := min(free, n)
		if l.used.CompareAndSwap(cur, cur+k) {
			return k
		}
	}
}

// acquireRead waits until there is room for n entries (or for half the
// bound if that is less) beside the room claims wait for, then reserves up
// to n and returns how many: 0 if ctx ended first. Waiting for some room
// rather than any keeps a saturated consumer reading in batches.
func (l *ledger) acquireRead(ctx context.Context, n int) int {
	low := min(int64(n), max(l.max/2, 1))
	return int(l.acquire(ctx, int64(n), low, &l.readWaiting, l.readRoom, func() int64 { return l.claimWant.Load() }))
}

// acquireClaim waits until there is room for at least one entry, then
// reserves up to n and returns how many: 0 if ctx ended first. While it
// waits, reads leave room for it.
func (l *ledger) acquireClaim(ctx context.Context, n int) int {
	want := min(int64(n), max(l.max/2, 1))
	l.claimWant.Add(want)
	defer func() {
		l.claimWant.Add(-want)
		l.unreserve(0) // reads may use that room again
	}()
	return int(l.acquire(ctx, int64(n), 1, &l.claimWaiting, l.claimRoom, func() int64 { return 0 }))
}

func (l *ledger) acquire(ctx context.Context, n, low int64, waiting *atomic.Bool, room chan struct{}, keep func() int64) int64 {
	for {
		if k := l.reserve(n, low, keep()); k > 0 {
			return k
		}
		waiting.Store(true)
		if l.max-l.used.Load()-keep() >= low { // freed meanwhile
			waiting.Store(false)
			continue
		}
		select {
		case <-room:
		case <-ctx.Done():
			waiting.Store(false)
			return 0
		}
		waiting.Store(false)
	}
}

// unreserve frees n units of room and wakes whoever waits for room.
func (l *ledger) unreserve(n int) {
	if n != 0 {
		l.used.Add(-int64(n))
	}
	for _, w := range [...]struct {
		waiting *atomic.Bool
		room    chan struct{}
	}{{&l.claimWaiting, l.claimRoom}, {&l.readWaiting, l.readRoom}} {
		if w.waiting.Load() {
			select {
			case w.room <- struct{}{}:
			default:
			}
		}
	}
}

// take records the messages of msgs that are not held yet as held by b,
// and sets them as b's messages; the others are left out (another path
// holds them). The caller reserved room for len(msgs): the room of those
// left out is freed. msgs is reused.
func (l *ledger) take(b *batch, msgs []Message) {
	out := msgs[:0]
	l.mu.Lock()
	for i := range msgs {
		if _, ok := l.held[msgs[i].ID]; ok {
			continue
		}
		l.held[msgs[i].ID] = b
		out = append(out, msgs[i])
	}
	b.msgs = out
	l.mu.Unlock()
	l.unreserve(len(msgs) - len(out))
}

// setMsgs sets the messages of b, whose IDs takeIDs recorded.
func (l *ledger) setMsgs(b *batch, msgs []Message) {
	l.mu.Lock()
	b.msgs = msgs
	l.mu.Unlock()
}

// markGone marks the held messages with the given IDs as no longer this
// consumer's.
func (l *ledger) markGone(gone map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range gone {
		b, ok := l.held[id]
		if !ok {
			continue
		}
		for i := range b.msgs {
			if b.msgs[i].ID == id {
				b.msgs[i].markGone()
			}
		}
	}
}

// takeIDs is take for IDs a claim is about to ask Redis for: it records
// those not held as held by b and returns them.
func (l *ledger) takeIDs(b *batch, ids []string) []string {
	var out []string
	l.mu.Lock()
	for _, id := range ids {
		if _, ok := l.held[id]; ok {
			continue
		}
		l.held[id] = b
		out = append(out, id)
	}
	l.mu.Unlock()
	l.unreserve(len(ids) - len(out))
	return out
}

// holds reports whether id is held.
func (l *ledger) holds(id string) bool {
	l.mu.Lock()
	_, ok := l.held[id]
	l.mu.Unlock()
	return ok
}

// release removes ids from the ledger (confirmed acknowledged or
// dead-lettered, or given back) and frees their room. IDs not held are
// ignored.
func (l *ledger) release(ids ...string) {
	n := 0
	l.mu.Lock()
	for _, id := range ids {
		if _, ok := l.held[id]; ok {
			delete(l.held, id)
			n++
		}
	}
	l.mu.Unlock()
	l.unreserve(n)
}

// older returns, grouped by batch, the held entries whose batch was read or
// last extended before cutoff: what lease extension renews.
func (l *ledger) older(cutoff time.Time) map[*batch][]string {
	c := cutoff.UnixNano()
	out := make(map[*batch][]string)
	l.mu.Lock()
	for id, b := range l.held {
		if b.touched.Load() <= c {
			out[b] = append(out[b], id)
		}
	}
	l.mu.Unlock()
	return out
}

// submitted counts n messages handed to the workers; finished counts one
// done (handled, skipped or given back).
func (l *ledger) submitted(n int) { l.unfinished.Add(int64(n)) }

func (l *ledger) finished() {
	if l.unfinished.Add(-1) == 0 && l.draining.Load() {
		l.drainOnce.Do(func() { close(l.drained) })
	}
}

// drain is called once nothing more will be submitted; the channel it
// returns is closed when every submitted message is finished.
func (l *ledger) drain() <-chan struct{} {
	l.draining.Store(true)
	if l.unfinished.Load() == 0 {
		l.drainOnce.Do(func() { close(l.drained) })
	}
	return l.drained
}
