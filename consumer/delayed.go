package consumer

import (
	"context"

	"github.com/midstream-go/midstream/internal/delay"
)

// WithoutScheduler stops Run from moving the stream's delayed entries
// (producer.PublishIn, PublishAt) to the stream when they are due. By
// default Run moves them, as a producer.Scheduler with its default
// settings does: one pass (one script) every 50 ms at most while nothing
// is due, sooner when an entry falls due. Any number of consumers and
// Schedulers may do so together; each entry is moved exactly once. Turn it
// off when a Scheduler runs elsewhere or nothing publishes delayed
// entries, to save the passes.
func WithoutScheduler() Option {
	return func(c *config) { c.noScheduler = true }
}

// runScheduler moves the stream's due delayed entries in a goroutine until
// ctx ends or the returned stop is called; stop waits for it. A mover that
// Redis refuses for good (a missing permission for scripts) stops with a
// warning; the consumer runs on.
func (c *Consumer) runScheduler(ctx context.Context) (stop func()) {
	if c.cfg.noScheduler {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := delay.Mover{Client: c.client, Stream: c.stream, Batch: delay.DefaultBatch, Poll: delay.DefaultPoll}
		m.OnPass = func(_ int, err error) {
			if err != nil && ctx.Err() == nil {
				c.log.Debug("moving delayed entries failed", "error", err)
			}
		}
		if err := m.Run(ctx); err != nil {
			c.log.Warn("delayed entries are not moved: the mover stopped", "error", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
