package consumer

import (
	"context"
	"strconv"
	"time"

	"github.com/midstream-go/midstream/internal/keys"
)

// Redis 7.0 resets a consumer's idle time (XINFO CONSUMERS) only when it
// delivers entries to it: a live consumer of a quiet stream looks idle. So
// that idle-consumer cleanup never deletes a running consumer, each running
// consumer records a heartbeat in a hash beside the stream (AliveKey), every
// heartbeatEvery; cleanup leaves alone any consumer whose heartbeat is
// younger than aliveFor.
const (
	heartbeatEvery = 10 * time.Second
	aliveFor       = 3 * heartbeatEvery
)

// AliveKey is the hash in which the running consumers of group on stream
// record their heartbeats (field: consumer name, value: Unix time in
// milliseconds); it shares the stream's cluster slot when it can, and
// expires when no consumer of the group has run for a while.
func AliveKey(stream, group string) string {
	return keys.Beside(stream, ":midstream:alive:"+group)
}

// heartbeat records that this consumer runs. It is optional: a failure
// (for example a user allowed only stream commands) is logged at debug
// level, and only exposes the consumer to other consumers' cleanup while it
// has nothing pending.
func (c *Consumer) heartbeat(ctx context.Context) {
	key := AliveKey(c.stream, c.group)
	pipe := c.client.Pipeline()
	pipe.HSet(ctx, key, c.cfg.name, strconv.FormatInt(time.Now().UnixMilli(), 10))
	pipe.PExpire(ctx, key, 2*aliveFor)
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		c.log.Debug("heartbeat failed", "key", key, "error", err)
	}
}

// farewell removes this consumer's heartbeat when it stops.
func (c *Consumer) farewell(ctx context.Context) {
	_ = c.client.HDel(ctx, AliveKey(c.stream, c.group), c.cfg.name).Err()
}

// alive returns the consumers of the group whose heartbeat is recent.
func (c *Consumer) alive(ctx context.Context) (map[string]bool, error) {
	beats, err := c.client.HGetAll(ctx, AliveKey(c.stream, c.group)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(beats))
	now := time.Now().UnixMilli()
	for name, v := range beats {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && now-ms < aliveFor.Milliseconds() {
			out[name] = true
		}
	}
	return out, nil
}
