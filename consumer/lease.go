package consumer

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// extendScript resets the idle time of entries still pending for a
// consumer (XCLAIM to itself, JUSTID: the delivery count is unchanged) and
// returns how many it extended. An entry another consumer took over, or
// that was acknowledged, is left alone.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] IDs.
var extendScript = redis.NewScript(`
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
`)

// extend extends this consumer's lease on ids and returns how many it
// still owned.
func (c *Consumer) extend(ctx context.Context, ids []string) (int, error) {
	args := make([]any, 0, 2+len(ids))
	args = append(args, c.group, c.cfg.name)
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := extendScript.Run(ctx, c.client, []string{c.stream}, args...).Int()
	return n, err
}

// leaseLoop extends, every third of the minimum idle time, the lease of the
// messages in flight (running, or read and waiting for a worker) for longer
// than that, so that no reclaim loop takes them from this consumer. It
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
		ids := d.inFlightOlder(every)
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := c.extend(ctx, ids)
		cancel()
		if err != nil {
			c.log.Warn("extending leases failed", "count", len(ids), "error", err)
		} else if n < len(ids) {
			c.log.Warn("some entries in progress are no longer pending for this consumer", "lost", len(ids)-n)
		}
	}
}
