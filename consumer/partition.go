package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// Partitioned streams.
//
// A consumer of a partitioned stream (WithPartitions) is one consumer per
// partition, all under the consumer's name in the same group (a group per
// partition stream, of the same name), each with the whole machinery of a
// consumer of one stream: its ledger, reads, acknowledgements, retries,
// reclaim of crashed consumers, leases, dead letters to the partition's own
// dead-letter stream (in the partition's slot), entries redriven to the
// group, delayed entries. Every consumer reads every partition: the group
// of each partition spreads that partition's entries over the consumers that
// run, so consumers come and go without any assignment to rebalance, and a
// consumer that stops leaves its pending entries, in every partition, to the
// reclaim of the others.

// WithPartitions makes the consumer consume a partitioned stream (see
// midstream.Partitions and producer.WithPartitions): the stream named in New
// is the logical name, and the consumer reads every one of its p.Count
// partitions as a member of the group, with the handler and options given to
// New. The options apply per partition: WithConcurrency, WithMaxInFlight and
// WithBatchSize bound each partition's consumer, so up to Count ×
// concurrency handlers run at once, and the client's pool needs a
// connection for each blocked read beside the others: two per partition,
// one for its entries and one for those redriven to the group (New fails
// when a *redis.Client's PoolSize is below 2 × partitions + 4, and Run
// when a cluster client's pool, per node, is below twice the partitions on
// the busiest master, plus 4). Handlers see Message.Stream set to the entry's partition, and
// Stats sum the partitions'. WithOnAck's function is called per partition:
// the IDs of one call belong to one partition, which it does not name (the
// same ID can exist in two partitions).
//
// Order: each partition is read in order, so entries published with one
// partition key (which all go to one partition) are delivered in the order
// they were published. But every consumer reads every partition, and a
// group hands a partition's successive entries to whichever consumer reads
// next: handlers of several consumers (or of one consumer with
// WithConcurrency above 1) run one key's entries concurrently. For handling
// in order, each partition needs one reader at concurrency 1: one consumer
// with WithConcurrency(1), or consumers that split the partitions between
// them with WithAssignedPartitions, each at WithConcurrency(1). Retries and
// reclaims deliver an entry again after later ones in any case. Entries of
// different partitions have no order between them.
//
// Before its first read Run stores the layout in Redis or checks it against
// the stored one (midstream.EnsurePartitions): a different count or naming
// makes Run fail with an error wrapping midstream.ErrPartitionLayout; Run
// checks it again every 10 s, storing it again if it was lost, and stops
// with that error if another layout took its place. When one partition's
// consumer stops with an error, Run stops the others and returns it. A bad
// layout fails New with an error wrapping midstream.ErrInvalidOption, as does
// WithDeadLetter, which names the dead-letter queue of one stream: each
// partition has its own (deadletter.Key of the partition).
func WithPartitions(p midstream.Partitions) Option {
	return func(c *config) { c.partitions = &p }
}

// WithAssignedPartitions makes a consumer of a partitioned stream
// (WithPartitions) read only the partitions with the given indexes (0 to
// Count-1) instead of all of them: a static assignment, for deployments
// that give each partition exactly one consumer (a StatefulSet's ordinal
// picking its share, say) so that each key's entries are handled in order
// (see WithPartitions). Nothing rebalances: a partition whose consumer is
// stopped waits for it to come back, since no other consumer reads or
// reclaims its entries; two consumers assigned one partition share it as
// any two consumers of a group do. New fails with an error wrapping
// midstream.ErrInvalidOption on no index, an index out of range, a repeated
// one, or without WithPartitions.
func WithAssignedPartitions(indexes ...int) Option {
	return func(c *config) {
		if len(indexes) == 0 {
			c.fail("WithAssignedPartitions without partitions")
			return
		}
		c.assigned = append([]int(nil), indexes...)
	}
}

// newPartitioned returns a consumer of every partition of stream.
func newPartitioned(client redis.UniversalClient, stream, group string, handler Handler, cfg config) (*Consumer, error) {
	keys, err := cfg.partitions.Keys(stream)
	if err != nil {
		return nil, err
	}
	// The layout checks while running name the partitions from keys: the
	// default names cost a search each (milliseconds for a few hundred).
	cfg.partitions = &midstream.Partitions{Count: len(keys), Key: func(_ string, i int) string { return keys[i] }}
	if cfg.dlq != nil {
		return nil, fmt.Errorf("%w: WithDeadLetter with WithPartitions: each partition has its own dead-letter stream", midstream.ErrInvalidOption)
	}
	indexes := cfg.assigned
	if indexes == nil {
		for i := range keys {
			indexes = append(indexes, i)
		}
	}
	seen := make(map[int]bool, len(indexes))
	for _, i := range indexes {
		if i < 0 || i >= len(keys) || seen[i] {
			return nil, fmt.Errorf("%w: assigned partition %d: out of [0, %d) or repeated", midstream.ErrInvalidOption, i, len(keys))
		}
		seen[i] = true
	}
	if err := checkPoolSize(client, len(indexes)); err != nil {
		return nil, err
	}
	c := build(client, stream, group, handler, cfg)
	one := cfg
	one.partitions, one.assigned = nil, nil
	for _, i := range indexes {
		p, err := newOne(client, keys[i], group, handler, one)
		if err != nil {
			return nil, err
		}
		c.parts = append(c.parts, p)
	}
	return c, nil
}

// Partitions returns the keys of the partitions the consumer reads, in
// order (those WithAssignedPartitions gives, in its order), or nil for a
// consumer without WithPartitions.
func (c *Consumer) Partitions() []string {
	if c.parts == nil {
		return nil
	}
	out := make([]string, len(c.parts))
	for i, p := range c.parts {
		out[i] = p.stream
	}
	return out
}

// runPartitions is Run of a partitioned consumer: it checks the layout, then
// runs every partition's consumer until ctx ends or one of them fails, which
// stops the others.
func (c *Consumer) runPartitions(ctx context.Context) error {
	if err := c.ensureLayout(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := c.checkClusterPoolSize(ctx); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, len(c.parts)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if errs[len(c.parts)] = c.watchLayout(runCtx); errs[len(c.parts)] != nil {
			stop()
		}
	}()
	for i, p := range c.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = p.Run(runCtx); errs[i] != nil {
				stop()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ensureLayout stores or checks the partition layout, retrying while Redis
// cannot be reached.
func (c *Consumer) ensureLayout(ctx context.Context) error {
	var b backoff
	for {
		_, err := midstream.EnsurePartitions(ctx, c.client, c.stream, *c.cfg.partitions)
		switch {
		case err == nil || errors.Is(err, midstream.ErrInvalidOption):
			return err
		case isConfigError(err):
			return fmt.Errorf("%w: consumer: %w", midstream.ErrMisconfigured, err)
		}
		c.log.Warn("cannot check the partition layout; retrying", "error", err)
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// layoutRecheck is how often a running partitioned consumer checks the
// stored layout again (and stores it again if it was lost).
const layoutRecheck = 10 * time.Second

// watchLayout checks the layout every layoutRecheck until ctx ends, and
// returns the error of a check that found it different; other failures
// are logged and retried at the next check.
func (c *Consumer) watchLayout(ctx context.Context) error {
	t := time.NewTicker(layoutRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, err := midstream.EnsurePartitions(ctx, c.client, c.stream, *c.cfg.partitions)
		if errors.Is(err, midstream.ErrInvalidOption) {
			return err
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("cannot check the partition layout", "error", err)
		}
	}
}

// checkPoolSize fails when client is one go-redis client whose pool cannot
// hold the consumer's blocked reads (two per partition) and a few more
// connections for the rest of its work, which would otherwise wait for
// connections until reads return. A cluster client's pool is per node, and
// the partitions spread over nodes: it is not checked.
func checkPoolSize(client redis.UniversalClient, partitions int) error {
	rc, ok := client.(*redis.Client)
	if !ok {
		return nil
	}
	if need := 2*partitions + poolHeadroom; rc.Options().PoolSize < need {
		return fmt.Errorf("%w: a consumer of %d partitions keeps %d reads blocked; the client's pool holds %d connections: set PoolSize to at least %d",
			midstream.ErrInvalidOption, partitions, 2*partitions, rc.Options().PoolSize, need)
	}
	return nil
}

// checkClusterPoolSize is checkPoolSize for a cluster client, whose pools
// are per node: it fails when a master's pool cannot hold the blocked
// reads of the partitions it serves now (as the client's view of the
// cluster says) and a few more connections. A view it cannot get is left
// to the consumers, which retry.
func (c *Consumer) checkClusterPoolSize(ctx context.Context) error {
	cc, ok := c.client.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	perNode := map[string]int{}
	pool := 0
	for _, p := range c.parts {
		node, err := cc.MasterForKey(ctx, p.stream)
		if err != nil {
			return nil
		}
		perNode[node.Options().Addr]++
		pool = node.Options().PoolSize
	}
	for addr, n := range perNode {
		if need := 2*n + poolHeadroom; pool < need {
			return fmt.Errorf("%w: consumer: %d of the partitions are on %s and keep %d reads blocked there; the cluster client's pool holds %d connections per node: set PoolSize to at least %d",
				midstream.ErrInvalidOption, n, addr, 2*n, pool, need)
		}
	}
	return nil
}

// poolHeadroom is how many pooled connections a partitioned consumer
// needs beyond its blocked reads.
const poolHeadroom = 4
