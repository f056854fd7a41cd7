package consumer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
)

// reclaimScanFactor bounds the pending entries one reclaim pass examines, as
// a multiple of the batch size.
const reclaimScanFactor = 10

// claimScript claims idle entries for a consumer, one by one, each only if
// it has stayed idle for its own minimum (XCLAIM's min-idle-time, so an
// entry another consumer just took or extended is left alone). An entry
// deleted from the stream while pending is acknowledged instead and
// reported. It returns {claimed, deleted}: claimed holds {id, fields,
// delivery count after the claim}.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, then id, min-idle-ms pairs.
var claimScript = redis.NewScript(`
local claimed, deleted = {}, {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if #e == 0 then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    if #p > 0 then
      redis.call('XACK', KEYS[1], ARGV[1], id)
      table.insert(deleted, id)
    end
  else
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[i + 1], id)
    if #c > 0 then
      local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
      table.insert(claimed, {c[1][1], c[1][2], p[1][4]})
    end
  end
end
return {claimed, deleted}
`)

// retryIdle is how long an entry delivered n times must sit idle before it
// is delivered again: the minimum idle time doubled for each delivery after
// the first, capped.
func (c *Consumer) retryIdle(n int64) time.Duration {
	d := c.cfg.minIdle
	for i := int64(1); i < n && d < c.cfg.maxBackoff; i++ {
		d *= 2
	}
	return min(d, max(c.cfg.maxBackoff, c.cfg.minIdle))
}

// reclaimLoop, every claim interval (with jitter), takes over idle entries
// of the group whose retry backoff has passed (its own failed ones, and
// those of crashed or hung consumers), hands them to the workers, and
// dead-letters those past the delivery limit. It also cleans up idle
// consumers. It returns when ctx ends.
func (c *Consumer) reclaimLoop(ctx context.Context, d *dispatcher) {
	t := time.NewTimer(jitter(c.cfg.claimInterval))
	defer t.Stop()
	cleanupEvery := max(c.cfg.claimInterval, min(time.Minute, c.cfg.consumerIdle))
	var lastCleanup time.Time // the first pass cleans up
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.reclaim(ctx, d); err != nil && ctx.Err() == nil {
			if isNoGroup(err) {
				c.log.Debug("reclaim: group missing; the read loop recreates it", "error", err)
			} else {
				c.log.Warn("reclaim failed; retrying at the next interval", "error", err)
			}
		}
		if c.cfg.consumerIdle > 0 && time.Since(lastCleanup) >= cleanupEvery {
			lastCleanup = time.Now()
			if err := c.cleanupConsumers(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("consumer cleanup failed", "error", err)
			}
		}
		t.Reset(jitter(c.cfg.claimInterval))
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

// reclaim runs one pass.
func (c *Consumer) reclaim(ctx context.Context, d *dispatcher) (err error) {
	// Each pass looks at the next window of the pending list, wrapping
	// around at its end, so that entries waiting out a long retry backoff
	// never hide those of a crashed consumer behind them.
	window := int64(reclaimScanFactor * c.cfg.batchSize)
	start := "-"
	if c.reclaimFrom != "" {
		start = "(" + c.reclaimFrom
	}
	pend, err := c.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: c.stream, Group: c.group, Idle: c.cfg.minIdle,
		Start: start, End: "+", Count: window,
	}).Result()
	if err != nil {
		return err
	}
	if int64(len(pend)) < window {
		c.reclaimFrom = "" // the end: start over next time
	} else {
		c.reclaimFrom = pend[len(pend)-1].ID
	}
	if len(pend) == 0 {
		return nil
	}
	room := d.tryAcquire(c.cfg.batchSize)
	var claim []any
	var expired []redis.XPendingExt
	for _, p := range pend {
		need := c.retryIdle(p.RetryCount)
		if p.Idle < need {
			continue
		}
		if p.RetryCount >= int64(c.cfg.maxDeliveries) {
			expired = append(expired, p)
			continue
		}
		if len(claim)/2 < room {
			claim = append(claim, p.ID, need.Milliseconds())
		}
	}
	var claimed int
	ctx, span := c.obs.startReclaim(ctx, c.stream, c.group, len(claim)/2, len(expired))
	defer func() { c.obs.endReclaim(span, claimed, err) }()
	if len(claim) > 0 {
		claimed, err = c.claim(ctx, d, claim)
	}
	d.release(room - claimed)
	if err != nil {
		return err
	}
	for _, p := range expired {
		if ctx.Err() != nil {
			break
		}
		c.expire(ctx, p)
	}
	return nil
}

// claim runs claimScript for the given id, min-idle pairs and hands what it
// claimed to the workers; it returns how many it claimed.
func (c *Consumer) claim(ctx context.Context, d *dispatcher, pairs []any) (int, error) {
	res, err := claimScript.Run(ctx, c.client, []string{c.stream}, append([]any{c.group, c.cfg.name}, pairs...)...).Slice()
	if err != nil {
		return 0, err
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("consumer: unexpected claim reply %v", res)
	}
	claimedRaw, _ := res[0].([]any)
	deletedRaw, _ := res[1].([]any)
	for _, id := range deletedRaw {
		c.stats.deleted.Add(1)
		c.log.Warn("pending entry was deleted or trimmed; acknowledged it", "id", id)
	}
	xs := make([]redis.XMessage, 0, len(claimedRaw))
	counts := make(map[string]int64, len(claimedRaw))
	for _, raw := range claimedRaw {
		e, _ := raw.([]any)
		if len(e) != 3 {
			continue
		}
		id, _ := e[0].(string)
		flat, _ := e[1].([]any)
		n, _ := e[2].(int64)
		values := make(map[string]any, len(flat)/2)
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].(string)
			values[k] = flat[i+1]
		}
		xs = append(xs, redis.XMessage{ID: id, Values: values})
		counts[id] = n
	}
	if len(xs) > 0 {
		c.stats.reclaimed.Add(int64(len(xs)))
		c.log.Info("reclaimed idle entries", "count", len(xs))
		d.submit(c.messages(xs, counts))
	}
	return len(xs), nil
}

// expire dead-letters an idle entry past the delivery limit, whoever owns
// it, if it is still pending for that owner and still idle.
func (c *Consumer) expire(ctx context.Context, p redis.XPendingExt) {
	msgs, err := c.client.XRangeN(ctx, c.stream, p.ID, p.ID, 1).Result()
	if err != nil {
		c.log.Warn("reading an entry to dead-letter", "id", p.ID, "error", err)
		return
	}
	if len(msgs) == 0 {
		// Deleted while pending: nothing left to dead-letter.
		if err := c.client.XAck(ctx, c.stream, c.group, p.ID).Err(); err == nil {
			c.stats.deleted.Add(1)
			c.log.Warn("pending entry was deleted or trimmed; acknowledged it", "id", p.ID)
		}
		return
	}
	fields := make(map[string]string, len(msgs[0].Values))
	for k, v := range msgs[0].Values {
		fields[k], _ = v.(string)
	}
	moved, err := c.dlq.Move(ctx, deadletter.MoveRequest{
		ID: p.ID, Fields: fields, Group: c.group, Consumer: p.Consumer, Deliveries: p.RetryCount,
		MinIdle: c.retryIdle(p.RetryCount),
		Reason:  fmt.Sprintf("delivered %d times without success (limit %d)", p.RetryCount, c.cfg.maxDeliveries),
	})
	switch {
	case err != nil:
		c.log.Warn("dead-lettering failed; retrying at the next interval", "id", p.ID, "error", err)
	case moved:
		c.stats.deadLettered.Add(1)
		c.log.Warn("entry past the delivery limit dead-lettered", "id", p.ID, "deliveries", p.RetryCount, "owner", p.Consumer)
	}
}
