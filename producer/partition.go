package producer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// errPartitionKey is the error of PartitionKey on a producer without
// partitions.
var errPartitionKey = fmt.Errorf("%w: PartitionKey on a producer without WithPartitions", midstream.ErrInvalidOption)

// WithPartitions makes the producer write to a partitioned stream: the
// stream named in New is the logical name, and each entry goes to one of
// its p.Count partitions (see midstream.Partitions):
//
//   - with a partition key (PartitionKey per call, or WithPartitionKeyFunc),
//     to partition midstream.PartitionOf(key, p.Count): one key's entries
//     stay in one partition, in the order they were published;
//   - without one, to the partition of the idempotency key if the entry has
//     one (so that publishing it again finds the first copy);
//   - otherwise round-robin over the partitions.
//
// Each partition is written as a producer of its own with the producer's
// options (trim on add, durability, coalescing, tracing apply per
// partition). PublishBatch splits the batch by partition and sends each
// share as a batch of its own, all at once: an invalid value keeps only its
// own partition's share from being sent (ErrNotSent), not the others'; a
// panic of the codec or of an ID or idempotency key function is raised in
// the caller's goroutine once the other shares are done (they may have
// been sent).
// Before its first command the producer stores the layout in
// Redis or checks it against the stored one (midstream.EnsurePartitions): a
// different count or naming fails every call with an error wrapping
// midstream.ErrPartitionLayout.
//
// A bad layout (a count out of [1, midstream.MaxPartitions], a stream name
// with a hash tag of its own and the default names, duplicate names) fails
// New with an error wrapping midstream.ErrInvalidOption.
func WithPartitions(p midstream.Partitions) Option {
	return func(c *config) { c.partitions = &p }
}

// WithPartitionKeyFunc gives every value of a partitioned producer
// (WithPartitions) a partition key: entries with the same key go to the same
// partition, in the order they were published. A per-call PartitionKey
// overrides it; an empty key means none (see WithPartitions). New fails if fn
// is nil, does not take the producer's T, or the producer has no partitions.
func WithPartitionKeyFunc[T any](fn func(T) string) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("nil partition key func")
			return
		}
		c.partKeyFunc = fn
	}
}

// partitioned is the state of a producer to a partitioned stream.
type partitioned[T any] struct {
	client  redis.UniversalClient
	stream  string
	layout  midstream.Partitions
	parts   []*Producer[T]
	keyFunc func(T) string // nil for none
	idem    func(T) string // the producer's idempotency key func, nil for none
	next    atomic.Uint64  // round-robin position
	// checkedAt is when the layout was last stored or found equal, as
	// time since epoch (a monotonic clock); 0 before the first time.
	checkedAt atomic.Int64
	epoch     time.Time
	// mismatch is the error of the last check when it found another
	// layout stored, nil otherwise: the calls that do not make the next
	// check fail with it too.
	mismatch atomic.Pointer[error]
	// check holds a token while a layout check runs: one at a time, and a
	// call waiting for the first one can give up when its ctx ends.
	check chan struct{}
}

// newPartitioned returns a producer to the partitioned stream stream.
func newPartitioned[T any](client redis.UniversalClient, stream string, cfg config) (*Producer[T], error) {
	keys, err := cfg.partitions.Keys(stream)
	if err != nil {
		return nil, err
	}
	// The layout checks name the partitions from keys: the default names
	// cost a search each (milliseconds for a few hundred), on the way of a
	// publish.
	layout := midstream.Partitions{Count: len(keys), Key: func(_ string, i int) string { return keys[i] }}
	pp := &partitioned[T]{client: client, stream: stream, layout: layout, epoch: time.Now(), check: make(chan struct{}, 1)}
	switch fn := cfg.partKeyFunc.(type) {
	case nil:
	case func(T) string:
		pp.keyFunc = fn
	default:
		return nil, fmt.Errorf("%w: partition key func %T does not take %s", midstream.ErrInvalidOption, fn, typeName[T]())
	}
	one := cfg
	one.partitions, one.partKeyFunc = nil, nil
	for _, k := range keys {
		p, err := build[T](client, k, one)
		if err != nil {
			return nil, err
		}
		p.isPart = true
		p.plainNext.Store(math.MaxInt64)
		pp.parts = append(pp.parts, p)
	}
	pp.idem = pp.parts[0].idemFunc
	if _, cluster := client.(*redis.ClusterClient); !cluster && !cfg.noCoalesce && cfg.durable == nil {
		// One coalescer for every partition of one server: concurrent
		// publishes to different partitions share pipelines, as they would
		// on one stream. On a cluster each partition keeps its own, so that
		// a node that stops answering holds up only the publishes to its
		// partitions (a pipeline waits for its slowest node); a durable
		// producer too, since WAIT goes on the connection to the
		// partition's master.
		shared := &coalescer{send: pp.parts[0].send.send}
		for _, p := range pp.parts {
			p.coalesce = shared
		}
	}
	return &Producer[T]{client: client, stream: stream, part: pp}, nil
}

// Partitions returns the keys of the producer's partitions, in order, or
// nil for a producer without WithPartitions.
func (p *Producer[T]) Partitions() []string {
	if p.part == nil {
		return nil
	}
	out := make([]string, len(p.part.parts))
	for i, q := range p.part.parts {
		out[i] = q.stream
	}
	return out
}

// layoutRecheck is how often a partitioned producer checks the stored
// layout again, so that a layout key lost (deleted, or with a failover) and
// stored again with another count is noticed.
const layoutRecheck = 30 * time.Second

// layoutRetry is how long after a recheck that could not reach Redis the
// next one is made.
const layoutRetry = 3 * time.Second

// ensure stores or checks the layout before the first publish, and checks
// it again every layoutRecheck, on the way of one publish while the others
// go on: then only a layout found different fails the call, and every call
// after it until a check finds the layout equal again.
func (pp *partitioned[T]) ensure(ctx context.Context) error {
	last := pp.checkedAt.Load()
	if last != 0 && time.Since(pp.epoch) < time.Duration(last)+layoutRecheck {
		return pp.lastMismatch()
	}
	if last != 0 {
		select {
		case pp.check <- struct{}{}:
		default:
			return pp.lastMismatch() // another call checks it
		}
	} else {
		select {
		case pp.check <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("producer: publish to %q: %w", pp.stream, ctx.Err())
		}
	}
	defer func() { <-pp.check }()
	if now := pp.checkedAt.Load(); now != last {
		return pp.lastMismatch() // checked meanwhile by another call
	}
	_, err := midstream.EnsurePartitions(ctx, pp.client, pp.stream, pp.layout)
	switch {
	case err == nil:
		pp.mismatch.Store(nil)
		pp.checkedAt.Store(int64(max(time.Since(pp.epoch), 1)))
	case last != 0 && !errors.Is(err, midstream.ErrInvalidOption):
		// Checked before; a check that could not tell keeps the
		// previous verdict, and is tried again after layoutRetry, not
		// on the way of every publish (the layout's node may be down
		// while the partitions' are not).
		pp.checkedAt.Store(int64(max(time.Since(pp.epoch)-layoutRecheck+layoutRetry, 1)))
		return pp.lastMismatch()
	default:
		err = fmt.Errorf("producer: publish to %q: %w", pp.stream, err)
		if last != 0 {
			pp.mismatch.Store(&err)
		}
		return err
	}
	return nil
}

// lastMismatch returns the error of the last layout check if it found
// another layout stored, nil otherwise.
func (pp *partitioned[T]) lastMismatch() error {
	if e := pp.mismatch.Load(); e != nil {
		return *e
	}
	return nil
}

// route returns the partition of v published with opts.
func (pp *partitioned[T]) route(v T, opts []PublishOption) (int, error) {
	var pc publishConfig
	for _, o := range opts {
		if o == nil {
			return 0, fmt.Errorf("producer: publish to %q: %w: nil publish option", pp.stream, midstream.ErrInvalidOption)
		}
		o(&pc)
	}
	return pp.pick(v, pc.partKey, pc.idemKey)
}

// pick returns the partition of v, given its per-call partition and
// idempotency keys ("" for none). A key function that panics fails the
// call.
func (pp *partitioned[T]) pick(v T, partKey, idemKey string) (_ int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("producer: publish to %q: %w: partition or idempotency key func panicked: %v", pp.stream, midstream.ErrInvalidOption, r)
		}
	}()
	n := len(pp.parts)
	if partKey == "" && pp.keyFunc != nil {
		partKey = pp.keyFunc(v)
	}
	if partKey == "" {
		partKey = idemKey
	}
	if partKey == "" && pp.idem != nil {
		partKey = pp.idem(v)
	}
	if partKey != "" {
		return midstream.PartitionOf(partKey, n), nil
	}
	return int(pp.next.Add(1) % uint64(n)), nil
}

func (pp *partitioned[T]) publish(ctx context.Context, v T, opts []PublishOption) (string, error) {
	i, err := pp.route(v, opts)
	if err != nil {
		return "", err
	}
	if err := pp.ensure(ctx); err != nil {
		return "", err
	}
	return pp.parts[i].Publish(ctx, v, opts...)
}

// publishBatch splits vs by partition and publishes each partition's share
// as one batch, all partitions at once. Unlike a batch to one stream, an
// invalid value keeps only its own partition's share from being sent.
func (pp *partitioned[T]) publishBatch(ctx context.Context, vs []T) ([]string, error) {
	if err := pp.ensure(ctx); err != nil {
		return notSent(len(vs), err)
	}
	share := make([][]int, len(pp.parts)) // indexes into vs, per partition
	for i, v := range vs {
		p, err := pp.pick(v, "", "")
		if err != nil {
			return notSent(len(vs), err)
		}
		share[p] = append(share[p], i)
	}
	ids := make([]string, len(vs))
	errs := make([]error, len(vs))
	var failed atomic.Bool
	var wg sync.WaitGroup
	// A panic of the caller's code (a codec, an ID or idempotency key
	// func) in a share's goroutine is raised again in the caller's, once
	// the other shares are done, as a batch to one stream raises it.
	var panicked atomic.Pointer[any]
	for p, idx := range share {
		if len(idx) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					panicked.CompareAndSwap(nil, &r)
				}
			}()
			part := make([]T, len(idx))
			for j, i := range idx {
				part[j] = vs[i]
			}
			got, err := pp.parts[p].PublishBatch(ctx, part)
			var be *BatchError
			if err != nil && !errors.As(err, &be) {
				be = &BatchError{Errs: make([]error, len(idx))}
				for j := range be.Errs {
					be.Errs[j] = err
				}
			}
			for j, i := range idx {
				if got != nil {
					ids[i] = got[j]
				}
				if be != nil && be.Errs[j] != nil {
					errs[i] = be.Errs[j]
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if r := panicked.Load(); r != nil {
		panic(*r)
	}
	if failed.Load() {
		return ids, &BatchError{Errs: errs}
	}
	return ids, nil
}

// publishIn stores v in its partition's delay set; the schedule ID is
// "<partition>:<the partition's schedule ID>".
func (pp *partitioned[T]) publishIn(ctx context.Context, v T, d time.Duration, opts []PublishOption) (string, error) {
	i, err := pp.route(v, opts)
	if err != nil {
		return "", err
	}
	if err := pp.ensure(ctx); err != nil {
		return "", err
	}
	sid, err := pp.parts[i].PublishIn(ctx, v, d, opts...)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(i) + ":" + sid, nil
}

func (pp *partitioned[T]) cancel(ctx context.Context, scheduleID string) (bool, error) {
	ps, sid, ok := strings.Cut(scheduleID, ":")
	i, err := strconv.Atoi(ps)
	if !ok || err != nil || i < 0 || i >= len(pp.parts) || strconv.Itoa(i) != ps {
		return false, fmt.Errorf("producer: publish to %q: %w: schedule ID %q is not \"<partition>:<id>\" of one of %d partitions", pp.stream, midstream.ErrInvalidOption, scheduleID, len(pp.parts))
	}
	return pp.parts[i].Cancel(ctx, sid)
}

// plainCheck makes sure that the stream of a producer without partitions
// is not the logical name of a partitioned one (midstream.CheckUnpartitioned):
// entries written there would reach no consumer of the partitions. Every
// call checks until a first check completes; then one call checks again
// every layoutRecheck (a layout stored later, while the producer runs, is
// found then), and the others return the last verdict. The check is best
// effort: a failure to read the layout key (a user not allowed to, or the
// node that holds it down, which must not hold up publishes to other
// nodes) lets the producer go on.
func (p *Producer[T]) plainCheck(ctx context.Context) error {
	next := p.plainNext.Load()
	if next == math.MaxInt64 {
		return nil
	}
	now := time.Now().UnixNano()
	if next != 0 && (now < next || !p.plainNext.CompareAndSwap(next, now+int64(layoutRecheck))) {
		return p.plainVerdict()
	}
	err := midstream.CheckUnpartitioned(ctx, p.client, p.stream)
	switch {
	case errors.Is(err, midstream.ErrPartitionLayout):
		err = p.wrap(err)
		p.plainErr.Store(&err)
	case err == nil:
		if next != 0 {
			// Only a recheck (one call at a time) clears a verdict:
			// first checks run at once, and one that read before a
			// layout was stored must not undo one that read after.
			p.plainErr.Store(nil)
		}
	case ctx.Err() != nil:
		// Cut short by the caller: the next call checks (a first check),
		// the last verdict stands (a recheck).
		return p.plainVerdict()
	default:
		// Could not tell: go on with the last verdict.
		err = p.plainVerdict()
	}
	if next == 0 {
		p.plainNext.CompareAndSwap(0, now+int64(layoutRecheck))
	}
	return err
}

// plainVerdict returns the error of the last check that found the stream
// to be the logical name of a partitioned one, nil if none did.
func (p *Producer[T]) plainVerdict() error {
	if e := p.plainErr.Load(); e != nil {
		return *e
	}
	return nil
}

// notSent is the result of a batch of n values none of which was sent
// because of err.
func notSent(n int, err error) ([]string, error) {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return make([]string, n), &BatchError{Errs: errs}
}
