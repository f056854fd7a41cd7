package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
)

// claimScript takes pending entries of the group for a consumer, each only
// if, when the script runs:
//   - it is still pending;
//   - it is this consumer's own (an entry the process does not hold: its
//     read reply was lost, or a predecessor under the same name left it);
//     or it waits for a retry (owned by RetryOwner) that is due by the
//     server's clock (see RetryKey); or, otherwise, it has been idle for
//     its crash backoff (the minimum idle time doubled for each delivery
//     after the first, capped), so an entry another consumer just took, or
//     whose lease it just extended, is left alone. A RetryOwner entry
//     missing from the retry schedule (parked by an earlier version) takes
//     that last rule.
//
// An entry deleted from the stream while pending is acknowledged instead
// and reported; one delivered the maximum number of times already is not
// claimed but reported as expired, for the dead-letter stream.
//
// A due retry is claimed as a new delivery (the count goes up), and so is
// an entry of a stopped owner that was delivered once, unless one more
// delivery reaches the limit. Any other entry of a stopped owner is claimed
// keeping its count, and reported as reclaimed: it was in a process that
// stopped for the second time at least, maybe because of a crash pill
// beside it; its count goes up only when a handler starts on it
// (startScript), and it runs alone (see isolate.go), so that entries that
// were only read, or waited for their acknowledgement, when a crash pill
// took the process down are not counted as delivered once more.
//
// KEYS[1] stream, KEYS[2] retry schedule; ARGV[1] group, ARGV[2] consumer,
// ARGV[3] minimum idle time (ms), ARGV[4] maximum backoff (ms), ARGV[5]
// maximum deliveries, ARGV[6..] IDs. It returns {claimed, deleted,
// expired}: claimed holds {id, fields, delivery count after the claim,
// reclaimed (0 or 1)}, expired {id, owner, delivery count}.
var claimScript = redis.NewScript(`
local minIdle, maxBackoff, maxDeliveries = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed, deleted, expired = {}, {}, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 0 then
    redis.call('ZREM', KEYS[2], id)
  else
    local owner, idle, count = p[1][2], p[1][3], p[1][4]
    local retry = owner == '` + RetryOwner + `'
    local due = nil
    if retry then
      local s = redis.call('ZSCORE', KEYS[2], id)
      if s then
        due = tonumber(s) <= now
      end
    else
      -- Only entries RetryOwner holds wait for a retry.
      redis.call('ZREM', KEYS[2], id)
    end
    local need = minIdle
    for _ = 2, count do
      if need >= maxBackoff then break end
      need = need * 2
    end
    need = math.min(need, math.max(maxBackoff, minIdle))
    local take = owner == ARGV[2]
    if not take then
      if due ~= nil then
        take = due
      else
        take = idle >= need
      end
    end
    if take then
      if #redis.call('XRANGE', KEYS[1], id, id) == 0 then
        redis.call('XACK', KEYS[1], ARGV[1], id)
        redis.call('ZREM', KEYS[2], id)
        table.insert(deleted, id)
      elseif count >= maxDeliveries then
        table.insert(expired, {id, owner, count})
      elseif retry or (count < 2 and count + 1 < maxDeliveries) then
        local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
        redis.call('ZREM', KEYS[2], id)
        if #c > 0 and c[1] then
          table.insert(claimed, {c[1][1], c[1][2], count + 1, 0})
        end
      else
        local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'RETRYCOUNT', count)
        if #c > 0 and c[1] then
          table.insert(claimed, {c[1][1], c[1][2], count, 1})
        end
      end
    end
  end
end
return {claimed, deleted, expired}
`)

// RetryOwner is the consumer of the group that owns the entries whose
// handler failed while they wait for their retry: a consumer hands a
// failed entry to it (XCLAIM … JUSTID, keeping its delivery count) and
// schedules it (RetryKey) in one script, and the retry loop of any
// consumer of the group claims it from there once its delay has passed. It shows in XINFO CONSUMERS and XPENDING with the
// number of entries waiting for a retry. No consumer may take this name.
const RetryOwner = "midstream.retry"

// retryIdle is how long an entry delivered n times must sit idle before it
// is delivered again: the minimum idle time doubled for each delivery after
// the first, capped. claimScript computes the same.
func (c *Consumer) retryIdle(n int64) time.Duration {
	d := c.cfg.minIdle
	for i := int64(1); i < n && d < c.cfg.maxBackoff; i++ {
		d *= 2
	}
	return min(d, max(c.cfg.maxBackoff, c.cfg.minIdle))
}

// claim takes the pending entries ids for this consumer and hands them to
// the workers; the caller reserved ledger room for len(ids). IDs the process
// already holds are skipped; so are entries the script does not claim.
// Entries past the delivery limit are dead-lettered. It returns how many
// entries it handed over.
func (c *Consumer) claim(ctx context.Context, d *dispatcher, ids []string) (int, error) {
	b := newBatch()
	ids = d.ledger.takeIDs(b, ids)
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 5+len(ids))
	args = append(args, c.group, c.cfg.name, c.cfg.minIdle.Milliseconds(), c.cfg.maxBackoff.Milliseconds(), c.cfg.maxDeliveries)
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := claimScript.Run(ctx, c.client, []string{c.stream, RetryKey(c.stream, c.group)}, args...).Slice()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("consumer: unexpected claim reply %v", res)
	}
	if err != nil {
		// Whatever the script did (a lost reply), entries it claimed are
		// pending for this consumer and not held: the audit takes them.
		d.ledger.release(ids...)
		return 0, err
	}
	claimedRaw, _ := res[0].([]any)
	deletedRaw, _ := res[1].([]any)
	expiredRaw, _ := res[2].([]any)
	xs := make([]redis.XMessage, 0, len(claimedRaw))
	counts := make(map[string]int64, len(claimedRaw))
	keep := make(map[string]bool, len(claimedRaw))
	var reclaimed map[string]bool
	for _, raw := range claimedRaw {
		e, _ := raw.([]any)
		if len(e) != 4 {
			continue
		}
		id, _ := e[0].(string)
		if r, _ := e[3].(int64); r == 1 {
			if reclaimed == nil {
				reclaimed = make(map[string]bool)
			}
			reclaimed[id] = true
		}
		flat, _ := e[1].([]any)
		n, _ := e[2].(int64)
		values := make(map[string]any, len(flat)/2)
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].(string)
			values[k] = flat[i+1]
		}
		xs = append(xs, redis.XMessage{ID: id, Values: values})
		counts[id] = n
		keep[id] = true
	}
	for _, id := range deletedRaw {
		c.stats.deleted.Add(1)
		c.stats.acked.Add(1)
		c.log.Warn("pending entry was deleted or trimmed; acknowledged it", "id", id)
	}
	for _, raw := range expiredRaw {
		e, _ := raw.([]any)
		if len(e) != 3 {
			continue
		}
		id, _ := e[0].(string)
		owner, _ := e[1].(string)
		n, _ := e[2].(int64)
		if r, ok := c.expire(ctx, id, owner, n); !ok {
			// Held until the mover gets it through.
			keep[id] = true
			d.mover.add(r)
		}
	}
	// Everything not claimed leaves the ledger: deleted, expired (moved or
	// not), or no longer eligible.
	var drop []string
	for _, id := range ids {
		if !keep[id] {
			drop = append(drop, id)
		}
	}
	d.ledger.release(drop...)
	if len(xs) > 0 {
		c.stats.reclaimed.Add(int64(len(xs)))
		msgs := c.messages(xs, counts)
		for i := range msgs {
			msgs[i].reclaimed = reclaimed[msgs[i].ID]
		}
		d.ledger.setMsgs(b, msgs)
		d.submit(b)
	}
	return len(xs), nil
}

// expire dead-letters an entry past the delivery limit, whoever owns it, if
// it is still pending for that owner and, unless this consumer owns it,
// still idle for its backoff. ok is false when the move failed: r is the
// move to try again.
func (c *Consumer) expire(ctx context.Context, id, owner string, deliveries int64) (r deadletter.MoveRequest, ok bool) {
	msgs, err := c.client.XRangeN(ctx, c.stream, id, id, 1).Result()
	if err != nil || len(msgs) == 0 {
		if err != nil {
			c.log.Warn("reading an entry to dead-letter", "id", id, "error", err)
		}
		return r, true // deleted meanwhile, or unreadable: a later claim deals with it
	}
	fields := midstream.Values(msgs[0].Values).Map()
	minIdle := c.retryIdle(deliveries)
	reason := fmt.Sprintf("owner crashed or hung while handling it, after %d deliveries (limit %d)", deliveries, c.cfg.maxDeliveries)
	switch owner {
	case c.cfg.name:
		minIdle = 0
	case RetryOwner:
		reason = fmt.Sprintf("handler failed %d times (limit %d)", deliveries, c.cfg.maxDeliveries)
	}
	r = deadletter.MoveRequest{
		ID: id, Fields: fields, Group: c.group, Consumer: owner, Deliveries: deliveries,
		MinIdle: minIdle,
		Reason:  reason,
	}
	moved, err := c.dlq.Move(ctx, r)
	c.faults.observe(opMove, err)
	if err != nil {
		c.log.Warn("dead-lettering failed; retrying", "id", id, "error", err)
		return r, false
	}
	if moved {
		c.stats.deadLettered.Add(1)
		c.log.Warn("entry past the delivery limit dead-lettered", "id", id, "deliveries", deliveries, "owner", owner)
	}
	return r, true
}
