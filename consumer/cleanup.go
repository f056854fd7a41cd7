package consumer

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// deleteIdleConsumerScript deletes a consumer from a group only if it owns
// no pending entry, checked in the same script, so that no entry loses its
// owner. It returns 1 if it deleted the consumer.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer.
var deleteIdleConsumerScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// cleanupConsumers deletes the group's consumers idle past the configured
// time that own nothing pending and have no recent heartbeat (see
// AliveKey): a running midstream consumer is never deleted.
func (c *Consumer) cleanupConsumers(ctx context.Context) error {
	infos, err := c.client.XInfoConsumers(ctx, c.stream, c.group).Result()
	if err != nil {
		return err
	}
	var alive map[string]bool
	for _, ci := range infos {
		if ci.Name == c.cfg.name || ci.Pending > 0 || ci.Idle < c.cfg.consumerIdle {
			continue
		}
		if alive == nil {
			if alive, err = c.alive(ctx); err != nil {
				return err
			}
		}
		if alive[ci.Name] {
			continue
		}
		n, err := deleteIdleConsumerScript.Run(ctx, c.client, []string{c.stream}, c.group, ci.Name).Int()
		if err != nil {
			return err
		}
		if n == 1 {
			c.log.Info("deleted idle consumer with nothing pending", "idle_consumer", ci.Name, "idle", ci.Idle)
		}
	}
	return nil
}
