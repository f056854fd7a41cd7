package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/internal/option"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// Defaults for the options. Giving an option its zero value (0, "") is
// the same as leaving it out: the default applies.
const (
	DefaultConcurrency     = 10
	DefaultBatchSize       = 100
	DefaultBlock           = 2 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultAckBatch        = 100
	DefaultAckInterval     = 5 * time.Millisecond

	DefaultMinIdle          = 30 * time.Second
	DefaultClaimInterval    = 5 * time.Second
	DefaultMaxRetryBackoff  = 5 * time.Minute
	DefaultMaxDeliveries    = 5
	DefaultMaxEntrySize     = 1 << 20
	DefaultConsumerIdleTime = time.Hour
)

// Bounds of the options. New refuses a larger value (and a negative one)
// with an error wrapping midstream.ErrInvalidOption, before anything is
// sized from it.
const (
	// MaxConcurrency bounds WithConcurrency. Run starts one goroutine per
	// handler slot; past a few thousand handlers, a second process serves
	// better than a larger one.
	MaxConcurrency = 4096
	// MaxBatchSize bounds WithBatchSize (XREADGROUP COUNT). A read's reply
	// is held in memory whole; a few hundred entries already amortise the
	// round trip.
	MaxBatchSize = 10_000
	// MaxInFlight bounds WithMaxInFlight. Every entry in flight is held in
	// memory, and Run sizes its queues from the bound before it reads any
	// (a few bytes per entry: a couple of MB at MaxInFlight).
	MaxInFlight = 100_000
	// MaxAckBatch bounds the batch of WithAcks: the IDs of one XACK.
	MaxAckBatch = 10_000
	// MaxAckInterval bounds the interval of WithAcks. A full batch is sent
	// at once whatever the interval; a long one only widens the window in
	// which a crash redelivers handled entries.
	MaxAckInterval = time.Hour
	// MaxBlock bounds WithBlock: a consumer blocked in XREADGROUP notices a
	// shutdown only when the call returns.
	MaxBlock = time.Minute
	// MinMinIdle is the least WithMinIdle accepts: leases are extended every
	// third of it, and any pause of a live consumer longer than it (a GC
	// pause, a slow network) lets another consumer take its entries. Values
	// under a few seconds suit tests, not production.
	MinMinIdle = 10 * time.Millisecond
	// MaxMinIdle bounds WithMinIdle: the entries of a consumer that died
	// wait that long before another takes them.
	MaxMinIdle = 24 * time.Hour
	// MaxClaimInterval bounds WithClaimInterval.
	MaxClaimInterval = time.Hour
	// MaxRetryBackoff bounds WithRetryBackoff.
	MaxRetryBackoff = 7 * 24 * time.Hour
	// MaxDeliveries bounds WithMaxDeliveries. Past it, retrying has become
	// waiting: dead-letter the entry and redrive it once the cause is
	// fixed (package deadletter).
	MaxDeliveries = 1000
	// MaxEntrySize bounds WithMaxEntrySize: 512 MiB, the largest string
	// Redis accepts by default (proto-max-bulk-len).
	MaxEntrySize = 512 << 20
)

// Start positions for a group created by the consumer.
const (
	StartNew       = "$" // only entries added after the group is created
	StartBeginning = "0" // every entry in the stream (default)
)

// Option configures a Consumer. Options are checked by New: a zero value
// means the default, a negative one or one above its Max… bound fails, as
// does a nil function, logger, provider or queue, with an error wrapping
// midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	name            string
	start           string
	concurrency     int
	batchSize       int
	maxInFlight     int
	block           time.Duration
	handlerTimeout  time.Duration
	shutdownTimeout time.Duration
	ackBatch        int
	ackInterval     time.Duration
	logger          *slog.Logger
	middleware      []Middleware
	minIdle         time.Duration
	claimInterval   time.Duration
	maxBackoff      time.Duration
	retryPolicy     RetryPolicy
	maxDeliveries   int
	maxEntrySize    int
	dlq             *deadletter.Queue
	consumerIdle    time.Duration // < 0: no cleanup (WithoutConsumerCleanup)
	otel            telemetry.Providers
	syncAck         bool
	onAck           func(ids []string)
	noScheduler     bool // WithoutScheduler
	partitions      *midstream.Partitions
	assigned        []int // WithAssignedPartitions; nil for all
	errs            []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// check records err, if any.
func (c *config) check(err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

// newConfig applies opts over the defaults, checks the result and fills in
// the defaults derived from other options.
func newConfig(opts []Option) (config, error) {
	cfg := config{
		start:           StartBeginning,
		concurrency:     DefaultConcurrency,
		batchSize:       DefaultBatchSize,
		block:           DefaultBlock,
		shutdownTimeout: DefaultShutdownTimeout,
		ackBatch:        DefaultAckBatch,
		ackInterval:     DefaultAckInterval,
		minIdle:         DefaultMinIdle,
		maxBackoff:      DefaultMaxRetryBackoff,
		retryPolicy:     ExponentialRetry(DefaultRetryDelay, DefaultMaxRetryDelay),
		maxDeliveries:   DefaultMaxDeliveries,
		maxEntrySize:    DefaultMaxEntrySize,
		consumerIdle:    DefaultConsumerIdleTime,
	}
	for _, o := range opts {
		if o == nil {
			return config{}, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return config{}, err
	}
	if cfg.maxInFlight == 0 {
		// Both are bounded: no overflow, and at most MaxInFlight.
		cfg.maxInFlight = min(max(2*cfg.batchSize, cfg.concurrency), MaxInFlight)
	}
	if cfg.maxInFlight < cfg.concurrency {
		return config{}, fmt.Errorf("%w: max in flight %d < concurrency %d", midstream.ErrInvalidOption, cfg.maxInFlight, cfg.concurrency)
	}
	if cfg.name == "" {
		cfg.name = defaultName()
	}
	if cfg.claimInterval == 0 {
		cfg.claimInterval = min(DefaultClaimInterval, cfg.minIdle)
	}
	return cfg, nil
}

// WithName sets the consumer's name in the group, checked like a stream
// name (midstream.CheckName). The default is unique per Consumer: host
// name, process ID and a random suffix. A stable name (one per instance,
// such as a pod name) lets a restarted process finish the entries its
// predecessor left pending; two live consumers must never share one.
func WithName(name string) Option {
	return func(c *config) {
		if name == "" {
			c.name = ""
			return
		}
		if err := midstream.CheckName("consumer name", name); err != nil {
			c.check(err)
			return
		}
		if name == RetryOwner {
			c.fail("consumer name %q is reserved for entries waiting for a retry", name)
			return
		}
		c.name = name
	}
}

// WithStart sets where a group the consumer creates starts: StartBeginning
// (the default: entries published before the first Run are handled too),
// StartNew (only entries added after the group is created), or an entry ID
// (the group delivers entries after it). It has no effect on an existing
// group, whose position is never moved.
func WithStart(id string) Option {
	return func(c *config) {
		switch id {
		case "":
			c.start = StartBeginning
			return
		case StartNew, StartBeginning:
		default:
			if _, err := midstream.ParseID(id); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%w: start: %w", midstream.ErrInvalidOption, err))
				return
			}
		}
		c.start = id
	}
}

// WithConcurrency sets how many handlers run at once, at most
// MaxConcurrency. Default DefaultConcurrency.
func WithConcurrency(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.concurrency, "concurrency", n, DefaultConcurrency, 1, MaxConcurrency))
	}
}

// WithBatchSize sets how many entries one XREADGROUP asks for (COUNT), at
// most MaxBatchSize. Default DefaultBatchSize.
func WithBatchSize(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.batchSize, "batch size", n, DefaultBatchSize, 1, MaxBatchSize))
	}
}

// WithMaxInFlight bounds the entries the consumer holds: read or claimed
// and not yet acknowledged (waiting for a worker, running, or waiting for
// their XACK to be confirmed). Reading waits while the bound is reached
// (back-pressure). It must be at least the concurrency and at most
// MaxInFlight. Default: twice the batch size, or the concurrency if larger.
// Every held entry not yet started when the process dies counts one more
// delivery once another consumer reclaims it: a bound far above what the
// workers start within the minimum idle time only adds that risk.
func WithMaxInFlight(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.maxInFlight, "max in flight", n, 0, 1, MaxInFlight))
	}
}

// WithBlock sets how long one XREADGROUP waits for new entries (BLOCK).
// It is always bounded (never BLOCK 0), between 1ms and MaxBlock; go-redis
// sets the read timeout above it. A shutdown waits for the current read to
// return, so it also bounds how long stopping takes. Default DefaultBlock.
func WithBlock(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.block, "block", d, DefaultBlock, time.Millisecond, MaxBlock))
	}
}

// WithHandlerTimeout cancels each handler's ctx after d. Default: no
// per-message timeout.
func WithHandlerTimeout(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.handlerTimeout, "handler timeout", d, 0, 1, math.MaxInt64))
	}
}

// WithShutdownTimeout bounds how long a shutdown lets in-flight handlers
// finish after Run's ctx is cancelled. Then their ctx is cancelled; a
// handler that still does not return is abandoned and its entry stays
// pending. Default DefaultShutdownTimeout.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.shutdownTimeout, "shutdown timeout", d, DefaultShutdownTimeout, 1, math.MaxInt64))
	}
}

// WithAcks sets how acknowledgements are coalesced: they are sent (many IDs
// per XACK, pipelined) once batch are waiting or interval after the first
// one waited, whichever comes first, and always at shutdown. The batch is
// at most MaxAckBatch, the interval at most MaxAckInterval. Defaults
// DefaultAckBatch and DefaultAckInterval, each where zero.
func WithAcks(batch int, interval time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.ackBatch, "ack batch", batch, DefaultAckBatch, 1, MaxAckBatch))
		c.check(option.Set(&c.ackInterval, "ack interval", interval, DefaultAckInterval, 1, MaxAckInterval))
	}
}

// WithLogger sets the logger. Records carry the keys stream, group, consumer
// and, about one entry, id. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("nil logger")
			return
		}
		c.logger = l
	}
}

// WithMiddleware wraps the handler; the first middleware is the outermost.
func WithMiddleware(mws ...Middleware) Option {
	return func(c *config) {
		for _, mw := range mws {
			if mw == nil {
				c.fail("nil middleware")
				return
			}
		}
		c.middleware = append(c.middleware, mws...)
	}
}

// WithMinIdle sets how long an entry must sit pending, unacknowledged and
// untouched, before the reclaim loop of any consumer in the group takes it
// over and delivers it again (XCLAIM): a consumer that crashed or hangs
// loses its entries after that time. Handlers running longer have their
// lease extended every third of it, so work in progress is not taken.
// Between MinMinIdle and MaxMinIdle. Default DefaultMinIdle.
func WithMinIdle(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.minIdle, "min idle", d, DefaultMinIdle, MinMinIdle, MaxMinIdle))
	}
}

// WithClaimInterval sets how often the reclaim loop looks for idle entries,
// between 1ms and MaxClaimInterval. Default DefaultClaimInterval, or the
// minimum idle time if that is shorter.
func WithClaimInterval(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.claimInterval, "claim interval", d, 0, time.Millisecond, MaxClaimInterval))
	}
}

// WithRetryBackoff caps the backoff of crash detection. An entry whose
// owner stopped (crashed, was killed, hangs) after it was delivered n times
// is delivered again once idle for the minimum idle time times 2^(n-1),
// capped at max. Failed handler calls do not wait for it: their entries
// come back after their retry delay (WithRetryPolicy). Between 1ms and
// MaxRetryBackoff. Default DefaultMaxRetryBackoff.
func WithRetryBackoff(max time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.maxBackoff, "max retry backoff", max, DefaultMaxRetryBackoff, time.Millisecond, MaxRetryBackoff))
	}
}

// WithMaxDeliveries sets how many times an entry is delivered before it is
// dead-lettered instead of being delivered again, at most MaxDeliveries.
// Default DefaultMaxDeliveries.
func WithMaxDeliveries(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.maxDeliveries, "max deliveries", n, DefaultMaxDeliveries, 1, MaxDeliveries))
	}
}

// WithMaxEntrySize dead-letters, without calling the handler, entries
// larger than n bytes of field names and values; n is at most
// MaxEntrySize. Default DefaultMaxEntrySize (the producer's default limit).
func WithMaxEntrySize(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.maxEntrySize, "max entry size", n, DefaultMaxEntrySize, 1, MaxEntrySize))
	}
}

// WithDeadLetter sets the dead-letter queue. Its source must be the
// consumer's stream. Default: deadletter.New(client, stream), whose key
// shares the stream's Redis Cluster slot (deadletter.Key).
func WithDeadLetter(q *deadletter.Queue) Option {
	return func(c *config) {
		if q == nil {
			c.fail("nil dead-letter queue")
			return
		}
		c.dlq = q
	}
}

// WithConsumerCleanup deletes, from the reclaim loop, the group's consumers
// idle for longer than d, at least a second, that own no pending entries (a
// consumer that owns pending entries is never deleted). Default
// DefaultConsumerIdleTime.
func WithConsumerCleanup(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.consumerIdle, "consumer idle time", d, DefaultConsumerIdleTime, time.Second, math.MaxInt64))
	}
}

// WithoutConsumerCleanup leaves idle consumers in the group.
func WithoutConsumerCleanup() Option {
	return func(c *config) { c.consumerIdle = -1 }
}

// WithSyncAck makes each worker wait, after its handler succeeds, until
// Redis has confirmed the entry's XACK before it takes the next entry: once
// the next handler call of that worker starts, the previous success can no
// longer be delivered again (unless Redis loses the write, for example in a
// failover to a replica that had not received it). For handlers whose
// effects are not idempotent. Acknowledgements are still coalesced across
// workers, but a flush does not wait for the ack interval. If the XACK
// cannot be confirmed before a shutdown ends, the entry stays pending.
// Default: acknowledgements are queued and confirmed in the background.
func WithSyncAck() Option {
	return func(c *config) { c.syncAck = true }
}

// WithOnAck calls fn from the acknowledging goroutine each time Redis has
// confirmed the XACK of handled entries, with their IDs (an entry no longer
// pending by then, for example acknowledged by another consumer that took
// it over, is reported too: Redis confirmed it is acknowledged). ids is only valid
// during the call; fn must return quickly (it holds up further
// acknowledgements); a panic in it is recovered and logged. Stats.Acked
// counts the same entries, plus those found deleted from the stream while
// pending (acknowledged without a handler call, see Stats.Deleted), which
// fn does not see. Entries redriven to the group (see deadletter.Redrive)
// are reported too: their IDs are those of the redrive stream.
func WithOnAck(fn func(ids []string)) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("nil ack hook")
			return
		}
		c.onAck = fn
	}
}
