package consumer

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxIDsPerExtend bounds the entries one extension script handles, so that
// a large in-flight bound never blocks Redis for long.
const maxIDsPerExtend = 500

// extendScript resets the idle time of entries still pending for a
// consumer (XCLAIM to itself, JUSTID: the delivery count is unchanged). An
// entry no longer pending for it (acknowledged, or taken over by another
// consumer) is reported gone; one whose stream entry was deleted or trimmed
// is acknowledged and reported deleted (XCLAIM would drop it silently).
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] IDs. It returns
// {extended, gone, deleted}: a count and two lists of IDs.
var extendScript = redis.NewScript(`
local n, gone, deleted = 0, {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 0 or p[1][2] ~= ARGV[2] then
    table.insert(gone, id)
  elseif #redis.call('XRANGE', KEYS[1], id, id) == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    table.insert(deleted, id)
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'RETRYCOUNT', p[1][4], 'JUSTID')
    n = n + 1
  end
end
return {n, gone, deleted}
`)

// extended is what one run of extendScript found.
type extended struct {
	n             int
	gone, deleted []string
}

// extend extends this consumer's lease on ids.
func (c *Consumer) extend(ctx context.Context, ids []string) (extended, error) {
	var out extended
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxIDsPerExtend)]
		ids = ids[len(chunk):]
		args := make([]any, 0, 2+len(chunk))
		args = append(args, c.group, c.cfg.name)
		for _, id := range chunk {
			args = append(args, id)
		}
		res, err := extendScript.Run(ctx, c.client, []string{c.stream}, args...).Slice()
		if err != nil {
			return out, err
		}
		if len(res) == 3 {
			n, _ := res[0].(int64)
			out.n += int(n)
			out.gone = appendIDs(out.gone, res[1])
			out.deleted = appendIDs(out.deleted, res[2])
		}
	}
	return out, nil
}

func appendIDs(dst []string, raw any) []string {
	list, _ := raw.([]any)
	for _, v := range list {
		if id, ok := v.(string); ok {
			dst = append(dst, id)
		}
	}
	return dst
}

// leaseLoop extends, every third of the minimum idle time, the lease of
// every entry the process has held for longer than that (running, waiting
// for a worker, or handled and waiting for its XACK), so that no reclaim
// loop takes them from this consumer. Entries it finds no longer this
// consumer's, or deleted, are marked so that no worker starts them. It
// returns when stop is closed.
func (c *Consumer) leaseLoop(stop <-chan struct{}, d *dispatcher) {
	every := max(c.cfg.minIdle/3, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c.extendHeld(d, every)
	}
}

// extendHeld extends the lease of held entries last touched more than age
// ago.
func (c *Consumer) extendHeld(d *dispatcher, age time.Duration) {
	now := time.Now()
	byBatch := d.ledger.older(now.Add(-age))
	if len(byBatch) == 0 {
		return
	}
	var ids []string
	for _, batchIDs := range byBatch {
		ids = append(ids, batchIDs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(age, time.Second))
	res, err := c.extend(ctx, ids)
	cancel()
	c.report(context.Background(), opLease, err)
	if err != nil {
		return
	}
	for b := range byBatch {
		b.touched.Store(now.UnixNano())
	}
	if len(res.gone)+len(res.deleted) == 0 {
		return
	}
	gone := make(map[string]bool, len(res.gone)+len(res.deleted))
	for _, id := range res.gone {
		gone[id] = true
	}
	for _, id := range res.deleted {
		gone[id] = true
		c.stats.deleted.Add(1)
		c.stats.acked.Add(1)
		c.log.Warn("entry in progress was deleted or trimmed from the stream; acknowledged it", "id", id)
	}
	if len(res.gone) > 0 {
		c.log.Warn("entries held are no longer pending for this consumer (acknowledged, or taken over after a lease ran out)", "count", len(res.gone))
	}
	d.ledger.markGone(gone)
}
