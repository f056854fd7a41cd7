package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// readLoop reads new entries (XREADGROUP >) until ctx is cancelled, as
// many at a time as the ledger has room for. Errors are classified:
// transient ones are retried with backoff, a missing group is recreated, a
// topology error refreshes the client's view first, and a configuration
// error that persists stops Run (see faults).
//
// A failed read may have been executed by Redis with its reply lost,
// leaving entries pending for this consumer that it never saw; go-redis may
// also retry a read itself, hiding the loss. The audit (see reclaimLoop)
// finds such entries among the consumer's own pending ones; after a failed
// read, the loop asks it to look at once.
func (c *Consumer) readLoop(ctx context.Context, d *dispatcher, pokeAudit chan<- struct{}) {
	// Reads use a ctx that is never cancelled: a read interrupted after
	// Redis delivered its entries would leave them pending, unseen. A read
	// returns within the block time (or the client's read timeout on a
	// broken connection).
	readCtx := context.WithoutCancel(ctx)
	var b backoff
	for ctx.Err() == nil {
		n := d.ledger.acquireRead(ctx, c.cfg.batchSize)
		if n == 0 {
			break
		}
		c.readStarted()
		msgs, err := c.read(readCtx, n)
		class := c.faults.observe(opRead, err)
		if err != nil {
			c.readDone()
			d.ledger.unreserve(n)
			switch class {
			case classNoGroup:
				c.log.Warn("group missing (NOGROUP)", "error", err)
				rerr := c.recoverGroup(readCtx)
				if c.faults.observe(opRecover, rerr); rerr != nil {
					c.log.Warn("cannot recreate group; retrying", "error", rerr)
				}
			case classConfig:
				c.log.Error("cannot read stream", "error", err)
			case classTopology:
				c.refresh(readCtx)
				fallthrough
			default:
				c.log.Warn("read failed; retrying", "error", err)
				select {
				case pokeAudit <- struct{}{}:
				default:
				}
			}
			if !b.Wait(ctx) {
				break
			}
			continue
		}
		b.Reset()
		if len(msgs) < n {
			d.ledger.unreserve(n - len(msgs))
		}
		if len(msgs) == 0 {
			c.readDone()
			continue
		}
		bt := newBatch()
		d.ledger.take(bt, c.messages(msgs, nil))
		c.readDone() // held now
		d.submit(bt)
	}
}

// read runs one XREADGROUP for up to count new entries, blocking up to the
// block time.
func (c *Consumer) read(ctx context.Context, count int) ([]redis.XMessage, error) {
	args := &redis.XReadGroupArgs{
		Group:    c.group,
		Consumer: c.cfg.name,
		Streams:  []string{c.stream, ">"},
		Count:    int64(count),
		Block:    c.cfg.block,
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

// messages converts go-redis entries, their fields read in place.
// Deliveries come from counts, or are 1 (first delivery) for entries counts
// does not hold.
func (c *Consumer) messages(xs []redis.XMessage, counts map[string]int64) []Message {
	out := make([]Message, len(xs))
	for i := range xs {
		x := &xs[i]
		m := &out[i]
		m.Stream, m.ID, m.Group, m.Consumer = c.stream, x.ID, c.group, c.cfg.name
		m.Deliveries = max(counts[x.ID], 1)
		m.values = x.Values
		if m.values == nil {
			m.values = midstream.Values{}
		}
		m.c = c
		m.oversized = m.values.Size() > c.cfg.maxEntrySize
	}
	return out
}

// readStarted records that a read starts; readDone that its entries, if
// any, are held.
func (c *Consumer) readStarted() { c.readSince.Store(int64(time.Since(c.epoch)) + 1) }
func (c *Consumer) readDone()    { c.readSince.Store(0) }

// ownCutoff returns the idle time an entry pending for this consumer must
// exceed to be claimed by it without risk of belonging to the read under
// way (-1: no read is under way). Called after the XPENDING that listed the
// entry returned: a read under way then started before that XPENDING ran,
// or delivers entries it did not list.
func (c *Consumer) ownCutoff() time.Duration {
	since := c.readSince.Load()
	if since == 0 {
		return -1
	}
	return time.Since(c.epoch) - time.Duration(since-1) + readMargin
}
