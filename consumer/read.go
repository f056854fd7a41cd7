package consumer

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// readLoop first handles the consumer's own pending entries (XREADGROUP
// from 0), then new ones (XREADGROUP >), until ctx is cancelled. Errors are
// logged and retried with backoff.
//
// A failed read of new entries may have been executed by Redis with its
// reply lost, leaving entries pending for this consumer that it never saw:
// all have IDs above the last one it read. So after such a failure the loop
// reads its own pending entries after that ID (never blocking) before it
// reads new ones again.
func (c *Consumer) readLoop(ctx context.Context, d *dispatcher) {
	// Reads use a ctx that is never cancelled: a read interrupted after
	// Redis delivered its entries would leave them pending, unseen. A read
	// returns within the block time (or the client's read timeout on a
	// broken connection).
	readCtx := context.WithoutCancel(ctx)
	var b backoff
	history := "0" // read own pending entries after this ID; "" reads new ones
	for ctx.Err() == nil {
		n := d.acquire(ctx, c.cfg.batchSize)
		if n == 0 {
			break
		}
		id := ">"
		if history != "" {
			id = history
		}
		msgs, err := c.read(readCtx, id, n)
		if err != nil {
			d.release(n)
			switch {
			case isNoGroup(err):
				c.log.Warn("group missing (NOGROUP)", "error", err)
				if rerr := c.recoverGroup(readCtx); rerr != nil {
					c.log.Warn("cannot recreate group; retrying", "error", rerr)
				}
				history = "" // the new group holds nothing pending
			case isConfigError(err):
				c.log.Error("cannot read stream", "error", err)
			default:
				c.log.Warn("read failed; retrying", "error", err)
				if history == "" {
					history = "0"
					if last := c.lastRead.Load(); last != nil {
						history = *last
					}
				}
			}
			if !b.wait(ctx) {
				break
			}
			continue
		}
		b.reset()
		if len(msgs) < n {
			d.release(n - len(msgs))
		}
		if history == "" {
			d.submit(c.messages(msgs, nil))
			continue
		}
		if len(msgs) == 0 {
			history = ""
			continue
		}
		history = msgs[len(msgs)-1].ID
		c.dispatchPending(readCtx, d, msgs)
	}
}

// read runs one XREADGROUP for up to count entries after id (">" for new
// entries, blocking up to the block time; an ID for the consumer's own
// pending entries, never blocking).
func (c *Consumer) read(ctx context.Context, id string, count int) ([]redis.XMessage, error) {
	args := &redis.XReadGroupArgs{
		Group:    c.group,
		Consumer: c.cfg.name,
		Streams:  []string{c.stream, id},
		Count:    int64(count),
		Block:    c.cfg.block,
	}
	if id != ">" {
		args.Block = -1
	}
	res, err := c.client.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, nil
	}
	msgs := res[0].Messages
	if len(msgs) > 0 {
		c.noteRead(msgs[len(msgs)-1].ID)
	}
	return msgs, nil
}

// noteRead raises lastRead to id (reading pending entries after a restart
// reads IDs below it).
func (c *Consumer) noteRead(id string) {
	parsed, err := midstream.ParseID(id)
	if err != nil {
		return
	}
	for {
		cur := c.lastRead.Load()
		if cur != nil {
			if prev, err := midstream.ParseID(*cur); err == nil && prev.Compare(parsed) >= 0 {
				return
			}
		}
		if c.lastRead.CompareAndSwap(cur, &id) {
			return
		}
	}
}

// dispatchPending hands the consumer's own pending entries to the workers
// with their delivery counts (XPENDING). Entries deleted or trimmed while
// pending come back without fields: they are acknowledged and counted.
func (c *Consumer) dispatchPending(ctx context.Context, d *dispatcher, msgs []redis.XMessage) {
	pend, err := c.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   c.stream,
		Group:    c.group,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)),
		Consumer: c.cfg.name,
	}).Result()
	if err != nil {
		// Without the server's counts the delivery limit cannot be
		// applied: leave the entries pending for the reclaim loop.
		c.log.Warn("cannot read delivery counts of pending entries; leaving them to the reclaim loop", "count", len(msgs), "error", err)
		d.release(len(msgs))
		return
	}
	counts := make(map[string]int64, len(pend))
	for _, p := range pend {
		counts[p.ID] = p.RetryCount
	}
	// Entries this process already holds (claimed by the reclaim loop, or
	// handled and waiting for their XACK) come back from a history read
	// too: they must not be handled twice.
	held := d.holding()
	live := msgs[:0:0]
	for i := range msgs {
		switch {
		case held[msgs[i].ID]:
			d.release(1)
		case msgs[i].Values == nil:
			c.stats.deleted.Add(1)
			c.log.Warn("pending entry was deleted or trimmed; acknowledging it", "id", msgs[i].ID)
			d.acks.add(msgs[i].ID)
			d.release(1)
		default:
			live = append(live, msgs[i])
		}
	}
	d.submit(c.messages(live, counts))
}

// messages converts go-redis entries. Deliveries come from counts, or are 1
// (first delivery) for entries counts does not hold.
func (c *Consumer) messages(xs []redis.XMessage, counts map[string]int64) []Message {
	out := make([]Message, len(xs))
	for i := range xs {
		x := &xs[i]
		fields := make(map[string]string, len(x.Values))
		for k, v := range x.Values {
			s, _ := v.(string)
			fields[k] = s
		}
		out[i] = Message{
			Entry:      midstream.Entry{Stream: c.stream, ID: x.ID, Fields: fields},
			Group:      c.group,
			Consumer:   c.cfg.name,
			Deliveries: max(counts[x.ID], 1),
			c:          c,
			oversized:  entrySize(fields) > c.cfg.maxEntrySize,
		}
	}
	return out
}

// entrySize is the size the producer's limit counts: field names and values.
func entrySize(fields map[string]string) int {
	n := 0
	for k, v := range fields {
		n += len(k) + len(v)
	}
	return n
}
