package consumer

import (
	"context"

	"github.com/midstream-go/midstream/deadletter"
)

// Entries redriven to a group.
//
// deadletter.Queue.Redrive sends a dead letter back to the group it was
// dead-lettered from, and only to it: to the group's redrive stream
// (deadletter.RedriveKey), a stream in the source's cluster slot that no
// other group reads. Every Consumer runs a second consumer of the same
// group, under the same name, with the same handler and options, on that
// stream: the side consumer. It creates its group at the start of the
// redrive stream (with the stream), and has the whole machinery of a
// consumer (ledger, acknowledgements, retries, reclaim of crashed
// consumers, leases, dead letters, to the same dead-letter stream), so a
// redriven entry is delivered at least once, to this group only, with the
// guarantees of any other entry. Handlers see it with Message.Stream set
// to the redrive stream.
//
// It costs one more XREADGROUP blocked per consumer and the side's
// background passes (audit, reclaim, heartbeat) over a stream that is
// empty most of the time. A side consumer that cannot run (a Redis user
// not allowed on the redrive stream, for example) is logged and leaves the
// main consumer running: redriven entries then wait in the redrive stream.

// newSide returns the side consumer of c.
func newSide(c *Consumer) *Consumer {
	cfg := c.cfg
	cfg.start = StartBeginning
	stream := deadletter.RedriveKey(c.stream, c.group)
	cfg.dlq = c.dlq.RedriveQueue(c.group)
	return build(c.client, stream, c.group, c.handler, cfg)
}

// runSide starts the side consumer, if any, until ctx ends; the channel it
// returns is closed once it has stopped.
func (c *Consumer) runSide(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if c.side == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if err := c.side.Run(ctx); err != nil {
			c.log.Error("entries redriven to the group cannot be consumed", "redrive_stream", c.side.stream, "error", err)
		}
	}()
	return done
}
