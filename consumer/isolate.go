package consumer

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Crash-pill isolation.
//
// An entry whose handler makes the process exit (os.Exit, an OOM kill, a
// crash in C code) takes down with it every entry the process held: those
// running beside it, those read and not started yet, and those handled
// whose acknowledgement was still coalescing. Another consumer (or the
// restarted one, by its audit) claims them all again, the pill with them.
// Counted per claim, every such round would bring the innocent neighbours
// one delivery closer to the dead-letter stream.
//
// The first time an entry is claimed from an owner that stopped, it is
// claimed as a new delivery and runs beside the others: a single crash
// costs nothing more than before. Claimed again (it was delivered twice
// already), or when one more delivery would reach the limit, it is
// "reclaimed":
//   - claimed keeping its delivery count (claimScript), and counted one
//     delivery more only when a handler starts on it (startScript), in
//     Redis, before the handler runs;
//   - run alone in the process: no other handler runs at the same time
//     (gate), so that if the process dies now, the entry that killed it is
//     the only one whose count went up;
//   - acknowledged before the next handler starts (as WithSyncAck).
//
// A pill thus reaches the delivery limit after MaxDeliveries deliveries,
// the last ones starts of its own, and is dead-lettered, with a reason
// saying its owner crashed; a neighbour is counted at most twice (its read,
// the first claim) before it runs alone, so with a limit of three or more
// it is handled again (at least once) and never dead-lettered for the
// pill's crashes (with a lower limit, every claim runs alone). The cost is
// paid only after repeated crashes: one round trip more per reclaimed
// entry, and reclaimed entries run one at a time.

// startScript counts one more delivery of an entry a handler is about to
// start, if it is still pending for the consumer (XCLAIM to itself,
// JUSTID, RETRYCOUNT one more). An entry deleted from the stream
// meanwhile is acknowledged instead.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] ID. It returns
// the new delivery count, -1 when the entry is no longer pending for the
// consumer, -2 when it was deleted (and acknowledged).
var startScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then
  return -1
end
if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  return -2
end
local n = p[1][4] + 1
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'RETRYCOUNT', n, 'JUSTID')
return n
`)

// enter waits until m may run: a reclaimed entry alone in the process, any
// other beside other ones but not beside a reclaimed entry. For a
// reclaimed entry it then counts the delivery in Redis. ok is false when m
// must not run (no longer this consumer's, deleted, or the count could not
// be written): m has then left the ledger, or stays held for the audit.
// leave must be called once the handler's outcome is recorded.
func (d *dispatcher) enter(m *Message) (leave func(), ok bool) {
	if !m.reclaimed {
		d.gate.RLock()
		return d.gate.RUnlock, true
	}
	d.gate.Lock()
	if err := d.countStart(m); err != nil {
		d.gate.Unlock()
		return nil, false
	}
	return d.gate.Unlock, true
}

// errNotStarted means a reclaimed entry's start could not be counted.
var errNotStarted = fmt.Errorf("consumer: entry not started")

// countStart runs startScript for m and sets m.Deliveries to the new count.
func (d *dispatcher) countStart(m *Message) error {
	c := d.c
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), flushTimeout)
	n, err := startScript.Run(ctx, c.client, []string{c.stream}, c.group, c.cfg.name, m.ID).Int64()
	cancel()
	c.faults.observe(opStart, err)
	switch {
	case err != nil:
		// Whether it ran or not, the entry is still this consumer's: let
		// it go from the ledger, and the audit takes it again.
		c.log.Warn("cannot count the start of a reclaimed entry; leaving it to the audit", "id", m.ID, "error", err)
	case n == -1:
		c.log.Info("reclaimed entry no longer pending for this consumer", "id", m.ID)
	case n == -2:
		c.stats.deleted.Add(1)
		c.stats.acked.Add(1)
		c.log.Warn("pending entry was deleted or trimmed; acknowledged it", "id", m.ID)
	default:
		m.Deliveries = n
		return nil
	}
	d.ledger.release(m.ID)
	return errNotStarted
}
