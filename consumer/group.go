package consumer

import (
	"context"
	"fmt"
	"github.com/redis/go-redis/v9"
	"strings"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// ensureGroup creates the group (and the stream, MKSTREAM) at the configured
// start, unless it exists. Connection errors are retried with backoff until
// ctx ends; configuration errors are returned.
func (c *Consumer) ensureGroup(ctx context.Context) error {
	var b backoff
	for {
		err := c.createGroup(ctx, c.cfg.start)
		if err == nil {
			c.createConsumer(ctx)
			return nil
		}
		if redis.HasErrorPrefix(err, "NOPERM") && strings.Contains(err.Error(), "command") {
			// A least-privilege user may read an existing group without the
			// right to run XGROUP CREATE; reading reports NOGROUP if it is
			// missing. (No access to the key is a NOPERM about keys: that
			// one is returned.)
			c.log.Warn("not allowed to create the group; assuming it exists", "error", err)
			return nil
		}
		if isConfigError(err) {
			return fmt.Errorf("%w: consumer: creating group %q on %q: %w", midstream.ErrMisconfigured, c.group, c.stream, err)
		}
		c.log.Warn("cannot create group; retrying", "error", err)
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// createConsumer registers the consumer in its group (XGROUP
// CREATECONSUMER), so that it shows in XINFO CONSUMERS from the start:
// Redis creates a consumer on its first delivery otherwise. A failure is
// only logged: the first delivery creates it.
func (c *Consumer) createConsumer(ctx context.Context) {
	if err := c.client.XGroupCreateConsumer(ctx, c.stream, c.group, c.cfg.name).Err(); err != nil && ctx.Err() == nil {
		c.log.Warn("cannot register the consumer in its group; its first delivery will", "error", err)
	}
}

// createGroup runs XGROUP CREATE ... MKSTREAM; an existing group is success.
func (c *Consumer) createGroup(ctx context.Context, start string) error {
	err := c.client.XGroupCreateMkStream(ctx, c.stream, c.group, start).Err()
	if err != nil && redis.HasErrorPrefix(err, "BUSYGROUP") {
		return nil
	}
	return err
}

// recoverGroup recreates a group that disappeared (NOGROUP: the group or the
// whole stream was deleted, or Redis lost its data). If the stream is gone,
// the group starts from its beginning: every entry in a new stream is new.
// Otherwise it starts after the last entry this consumer read, or at the
// configured start if it read none, so entries added since are not skipped.
// Entries other consumers held pending in the old group cannot be recovered.
func (c *Consumer) recoverGroup(ctx context.Context) error {
	start := c.cfg.start
	n, err := c.client.Exists(ctx, c.stream).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		start = StartBeginning
	} else if last := c.lastRead.Load(); last != nil {
		start = *last
	}
	if err := c.createGroup(ctx, start); err != nil {
		return err
	}
	c.log.Error("group was missing: recreated it", "start", start)
	return nil
}

// isConfigError reports errors that retrying cannot fix.
func isConfigError(err error) bool { return classify(err) == classConfig }

// backoff waits exponentially longer between retries, with jitter.
type backoff = rediserr.Backoff
