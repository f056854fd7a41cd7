package consumer

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// reclaimWindow is how many pending entries one XPENDING of a reclaim pass
// or an audit looks at.
const reclaimWindow = 1000

// readMargin widens the audit's view of the read under way (see audit), for
// the rounding of idle times to milliseconds.
const readMargin = 10 * time.Millisecond

// reclaimWindows bounds the windows one reclaim pass looks at before it
// lets the loop do its other work; the next pass resumes where it stopped.
const reclaimWindows = 10

// AuditInterval is how often a running consumer compares its own pending
// entries (XPENDING for its name, idle for at least AuditIdle) with what it
// holds, and takes those it does not hold: entries a read delivered whose
// reply never arrived (even when go-redis retried the read itself), and
// those a predecessor under the same name left. It costs one XPENDING per
// interval, over the consumer's own pending entries (at most the in-flight
// bound while healthy), plus a claim when it finds something.
const (
	AuditInterval = time.Second
	AuditIdle     = time.Second
)

// reclaimLoop takes entries this consumer should handle and nobody holds:
// every AuditInterval its own pending entries that it does not hold (the
// audit), and every claim interval (with jitter) idle entries of the group
// whose retry backoff has passed (failed ones, and those of crashed or hung
// consumers); it dead-letters those past the delivery limit. It also cleans
// up idle consumers. It returns when ctx ends.
func (c *Consumer) reclaimLoop(ctx context.Context, d *dispatcher, poke <-chan struct{}) {
	audit := time.NewTimer(AuditInterval) // Run audited with no idle minimum first
	defer audit.Stop()
	claim := time.NewTimer(jitter(c.cfg.claimInterval))
	defer claim.Stop()
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	cleanupEvery := max(c.cfg.claimInterval, min(time.Minute, c.cfg.consumerIdle))
	var lastCleanup time.Time // the first pass cleans up
	auditIdle := AuditIdle
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			c.heartbeat(ctx)
			continue
		case <-poke: // a read failed: its reply may have been lost
			auditIdle = 0
			if !audit.Stop() {
				select {
				case <-audit.C:
				default:
				}
			}
		case <-audit.C:
		case <-claim.C:
			c.reclaimPass(ctx, d)
			if c.cfg.consumerIdle > 0 && time.Since(lastCleanup) >= cleanupEvery {
				lastCleanup = time.Now()
				// Cleanup is housekeeping: its errors are logged, never
				// fatal (a least-privilege user may lack the commands).
				if err := c.cleanupConsumers(ctx); err != nil && ctx.Err() == nil {
					c.log.Warn("consumer cleanup failed", "error", err)
				}
			}
			claim.Reset(jitter(c.cfg.claimInterval))
			continue
		}
		more, err := c.audit(ctx, d, auditIdle)
		c.report(ctx, opAudit, err)
		auditIdle = AuditIdle
		next := AuditInterval
		if more && err == nil {
			next = 0 // it took some and more are waiting: go on
		}
		audit.Reset(next)
	}
}

// report logs a failed pass of a background path and refreshes the
// client's view of the cluster after a topology error.
func (c *Consumer) report(ctx context.Context, op string, err error) {
	class := c.faults.observe(op, err)
	if err == nil || ctx.Err() != nil {
		return
	}
	switch class {
	case classNoGroup:
		c.log.Debug(op+": group missing; the read loop recreates it", "error", err)
	case classTopology:
		c.refresh(ctx)
		fallthrough
	default:
		c.log.Warn(op+" failed; retrying", "error", err)
	}
}

// jitter returns d ± 10%.
func jitter(d time.Duration) time.Duration {
	span := int64(d) / 5
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span))
}

// audit takes this consumer's own pending entries idle for at least idle
// that the process does not hold, as many as there is room for. more
// reports that it took some and left others for lack of room.
//
// Entries a read delivered are pending for this consumer before the read's
// reply reaches the ledger, however slow that reply is: the audit leaves
// alone every entry delivered since the read under way started (its idle
// time is shorter than the time since then), so that such an entry is
// taken by the read alone.
func (c *Consumer) audit(ctx context.Context, d *dispatcher, idle time.Duration) (more bool, err error) {
	start := "-"
	for {
		pend, err := c.client.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: c.stream, Group: c.group, Idle: idle, Consumer: c.cfg.name,
			Start: start, End: "+", Count: reclaimWindow,
		}).Result()
		if err != nil {
			return false, err
		}
		cutoff := c.ownCutoff()
		var ids []string
		for _, p := range pend {
			if p.Idle > cutoff && !d.ledger.holds(p.ID) {
				ids = append(ids, p.ID)
			}
		}
		if len(ids) > 0 {
			room := d.ledger.reserve(int64(len(ids)), 1, 0)
			if room == 0 {
				return false, nil // the next audit comes back to them
			}
			kept, err := c.claim(ctx, d, ids[:room])
			if err != nil {
				return false, err
			}
			if int(room) < len(ids) {
				// Go on at once only if this round took entries: expired
				// ones that cannot be moved would make it spin.
				return kept > 0, nil
			}
		}
		if len(pend) < reclaimWindow {
			return false, nil
		}
		start = "(" + pend[len(pend)-1].ID
	}
}

// reclaimPass looks through the group's pending entries idle for at least
// the minimum idle time, from where the last pass stopped, and claims those
// whose retry backoff has passed, as long as there is room for them,
// waiting for room (reads leave it free meanwhile) for up to a claim
// interval. An eligible entry it has no room for is where the next pass
// starts: none is skipped.
func (c *Consumer) reclaimPass(ctx context.Context, d *dispatcher) {
	// A pass waits for room a claim interval at most, in all: the audit
	// and the heartbeat share this loop.
	waitCtx, cancel := context.WithTimeout(ctx, c.cfg.claimInterval)
	defer cancel()
	for range reclaimWindows {
		start := "-"
		if c.reclaimFrom != "" {
			start = "(" + c.reclaimFrom
		}
		pend, err := c.client.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: c.stream, Group: c.group, Idle: c.cfg.minIdle,
			Start: start, End: "+", Count: reclaimWindow,
		}).Result()
		if err != nil {
			c.report(ctx, opClaim, err)
			return
		}
		cutoff := c.ownCutoff() // see audit
		var eligible []redis.XPendingExt
		for _, p := range pend {
			if p.Consumer == c.cfg.name && p.Idle <= cutoff {
				continue
			}
			if p.Idle >= c.retryIdle(p.RetryCount) && !d.ledger.holds(p.ID) {
				eligible = append(eligible, p)
			}
		}
		taken, err := c.claimEligible(ctx, waitCtx, d, eligible)
		c.report(ctx, opClaim, err)
		switch {
		case err != nil || taken < len(eligible):
			// Resume at the first eligible entry not taken.
			if i := taken; i > 0 {
				c.reclaimFrom = eligible[i-1].ID
			}
			return
		case len(pend) < reclaimWindow:
			c.reclaimFrom = "" // the end: start over next time
			return
		default:
			c.reclaimFrom = pend[len(pend)-1].ID
		}
	}
}

// claimEligible claims eligible entries, in order, in chunks of the batch
// size, waiting for room until waitCtx ends; it returns how many of them it
// dealt with (claimed or found no longer eligible).
func (c *Consumer) claimEligible(ctx, waitCtx context.Context, d *dispatcher, eligible []redis.XPendingExt) (int, error) {
	var claimedTotal, done int
	ctx, span := c.obs.startReclaim(ctx, c.stream, c.group, len(eligible), 0)
	var err error
	defer func() { c.obs.endReclaim(span, claimedTotal, err) }()
	for done < len(eligible) {
		room := d.ledger.acquireClaim(waitCtx, min(c.cfg.batchSize, len(eligible)-done))
		if room == 0 {
			return done, nil
		}
		ids := make([]string, room)
		for i := range ids {
			ids[i] = eligible[done+i].ID
		}
		var n int
		n, err = c.claim(ctx, d, ids)
		if err != nil {
			return done, err
		}
		claimedTotal += n
		done += room
		if n > 0 {
			c.log.Info("reclaimed idle entries", "count", n)
		}
	}
	return done, nil
}
