package consumer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// Defaults for the options. A zero or absent option means the default.
const (
	DefaultConcurrency     = 10
	DefaultBatchSize       = 100
	DefaultBlock           = 2 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultAckBatch        = 100
	DefaultAckInterval     = 5 * time.Millisecond
	// MaxBlock bounds WithBlock: a consumer blocked in XREADGROUP notices a
	// shutdown only when the call returns.
	MaxBlock = time.Minute

	DefaultMinIdle          = 30 * time.Second
	DefaultClaimInterval    = 5 * time.Second
	DefaultMaxRetryBackoff  = 5 * time.Minute
	DefaultMaxDeliveries    = 5
	DefaultMaxEntrySize     = 1 << 20
	DefaultConsumerIdleTime = time.Hour
)

// Start positions for a group created by the consumer.
const (
	StartNew       = "$" // only entries added after the group is created (default)
	StartBeginning = "0" // every entry in the stream
)

// Option configures a Consumer. Options are checked by New.
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
	maxDeliveries   int
	maxEntrySize    int
	dlq             *deadletter.Queue
	consumerIdle    time.Duration // 0: no cleanup
	otel            telemetry.Providers
	syncAck         bool
	onAck           func(ids []string)
	errs            []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithName sets the consumer's name in the group. The default is unique per
// Consumer: host name, process ID and a random suffix. A stable name (one
// per instance, such as a pod name) lets a restarted process finish the
// entries its predecessor left pending; two live consumers must never share
// one.
func WithName(name string) Option {
	return func(c *config) {
		if name == "" {
			c.fail("empty consumer name")
			return
		}
		if name == RetryOwner {
			c.fail("consumer name %q is reserved for entries waiting for a retry", name)
			return
		}
		c.name = name
	}
}

// WithStart sets where a group the consumer creates starts: StartNew
// (default), StartBeginning, or an entry ID (the group delivers entries after
// it). It has no effect on an existing group.
func WithStart(id string) Option {
	return func(c *config) {
		if id != StartNew {
			if _, err := midstream.ParseID(id); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%w: start: %w", midstream.ErrInvalidOption, err))
				return
			}
		}
		c.start = id
	}
}

// WithConcurrency sets how many handlers run at once. Default DefaultConcurrency.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("concurrency %d < 1", n)
			return
		}
		c.concurrency = n
	}
}

// WithBatchSize sets how many entries one XREADGROUP asks for (COUNT).
// Default DefaultBatchSize.
func WithBatchSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("batch size %d < 1", n)
			return
		}
		c.batchSize = n
	}
}

// WithMaxInFlight bounds the entries the consumer holds: read or claimed
// and not yet acknowledged (waiting for a worker, running, or waiting for
// their XACK to be confirmed). Reading waits while the bound is reached
// (back-pressure). Default: twice the batch size plus the ack batch, or the
// concurrency if larger. It must be at least the concurrency.
func WithMaxInFlight(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("max in flight %d < 1", n)
			return
		}
		c.maxInFlight = n
	}
}

// WithBlock sets how long one XREADGROUP waits for new entries (BLOCK).
// It is always bounded (never BLOCK 0), between 1ms and MaxBlock; go-redis
// sets the read timeout above it. A shutdown waits for the current read to
// return, so it also bounds how long stopping takes. Default DefaultBlock.
func WithBlock(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond || d > MaxBlock {
			c.fail("block %s not within [1ms, %s]", d, MaxBlock)
			return
		}
		c.block = d
	}
}

// WithHandlerTimeout cancels each handler's ctx after d. Default: no
// per-message timeout.
func WithHandlerTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("handler timeout %s <= 0", d)
			return
		}
		c.handlerTimeout = d
	}
}

// WithShutdownTimeout bounds how long a shutdown lets in-flight handlers
// finish after Run's ctx is cancelled. Then their ctx is cancelled; a
// handler that still does not return is abandoned and its entry stays
// pending. Default DefaultShutdownTimeout.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("shutdown timeout %s <= 0", d)
			return
		}
		c.shutdownTimeout = d
	}
}

// WithAcks sets how acknowledgements are coalesced: they are sent (many IDs
// per XACK, pipelined) once batch are waiting or interval after the first
// one waited, whichever comes first, and always at shutdown. Defaults
// DefaultAckBatch and DefaultAckInterval.
func WithAcks(batch int, interval time.Duration) Option {
	return func(c *config) {
		if batch < 1 || interval <= 0 {
			c.fail("acks: batch %d < 1 or interval %s <= 0", batch, interval)
			return
		}
		c.ackBatch, c.ackInterval = batch, interval
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
// Default DefaultMinIdle.
func WithMinIdle(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.fail("min idle %s < 1ms", d)
			return
		}
		c.minIdle = d
	}
}

// WithClaimInterval sets how often the reclaim loop looks for idle entries.
// Default DefaultClaimInterval, or the minimum idle time if that is shorter.
func WithClaimInterval(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.fail("claim interval %s < 1ms", d)
			return
		}
		c.claimInterval = d
	}
}

// WithRetryBackoff caps the retry backoff. An entry delivered n times is
// delivered again once idle for the minimum idle time times 2^(n-1), capped
// at max. Default DefaultMaxRetryBackoff.
func WithRetryBackoff(max time.Duration) Option {
	return func(c *config) {
		if max < time.Millisecond {
			c.fail("max retry backoff %s < 1ms", max)
			return
		}
		c.maxBackoff = max
	}
}

// WithMaxDeliveries sets how many times an entry is delivered before it is
// dead-lettered instead of being delivered again. Default
// DefaultMaxDeliveries.
func WithMaxDeliveries(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("max deliveries %d < 1", n)
			return
		}
		c.maxDeliveries = n
	}
}

// WithMaxEntrySize dead-letters, without calling the handler, entries
// larger than n bytes of field names and values. Default
// DefaultMaxEntrySize (the producer's default limit).
func WithMaxEntrySize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("max entry size %d < 1", n)
			return
		}
		c.maxEntrySize = n
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
// idle for longer than d that own no pending entries (a consumer that owns
// pending entries is never deleted). Default DefaultConsumerIdleTime.
func WithConsumerCleanup(d time.Duration) Option {
	return func(c *config) {
		if d < time.Second {
			c.fail("consumer idle time %s < 1s", d)
			return
		}
		c.consumerIdle = d
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
// confirmed the XACK of handled entries, with their IDs. ids is only valid
// during the call; fn must return quickly (it holds up further
// acknowledgements). Stats.Acked counts the same entries.
func WithOnAck(fn func(ids []string)) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("nil ack hook")
			return
		}
		c.onAck = fn
	}
}
