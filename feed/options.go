package feed

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
	"github.com/midstream-go/midstream/live"
)

// Defaults used when an option is not given, or given its zero value.
const (
	DefaultStream     = "activity"     // the activity stream, as in the article
	DefaultChannel    = "activity:new" // its live channel, as in the article
	DefaultScanBudget = 1000           // entries Read examines at most per call
	// DefaultFanOutBatch is how many followers fan-out on write reads (SSCAN
	// COUNT) and copies to in one pipeline.
	DefaultFanOutBatch = 100
	// DefaultBackfill is how many of a newly followed actor's activities
	// Follow copies into a fan-out-on-write timeline: none.
	DefaultBackfill = 0
	// DefaultIdempotencyTTL is how long Append remembers an idempotency key.
	DefaultIdempotencyTTL = 24 * time.Hour
)

// Bounds. A larger value (and a negative one) fails with an error wrapping
// midstream.ErrInvalidOption.
const (
	// MaxScanBudget bounds WithScanBudget: one Read examines at most this
	// many entries, in chunks, so it bounds the time of a call.
	MaxScanBudget = 1_000_000
	// MaxReadLimit bounds the limit of Read: a page is held in memory and
	// one XREVRANGE asks for up to that many entries.
	MaxReadLimit = 10_000
	// MaxFanOutBatch bounds WithFanOutBatch: one pipeline holds that many
	// copies.
	MaxFanOutBatch = 10_000
	// MaxBackfill bounds WithBackfill.
	MaxBackfill = 10_000
	// MaxIdempotencyTTL bounds WithIdempotencyTTL.
	MaxIdempotencyTTL = 30 * 24 * time.Hour
	// MaxIdempotencyKeyLen bounds the length of an idempotency key.
	MaxIdempotencyKeyLen = 512
)

// Option configures a Feed. Options are checked by New: a zero value means
// the default, a negative one or one above its Max… bound fails, as does a
// nil live option, with an error wrapping midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	stream, channel string
	fanOutMaxLen    int64 // > 0: fan-out on write
	budget          int64
	batch           int64
	backfill        int64
	idemTTL         time.Duration
	tp              trace.TracerProvider
	mp              metric.MeterProvider
	liveOps         []live.Option
	errs            []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithStream sets the activity stream. Default (also for "")
// DefaultStream.
func WithStream(name string) Option {
	return func(c *config) {
		if name == "" {
			c.stream = DefaultStream
			return
		}
		if err := midstream.CheckStream(name); err != nil {
			c.fail("stream: %v", err)
			return
		}
		c.stream = name
	}
}

// WithChannel sets the activity stream's live channel, checked like a
// stream name (midstream.CheckName). Default (also for "") DefaultChannel.
func WithChannel(name string) Option {
	return func(c *config) {
		if name == "" {
			c.channel = DefaultChannel
			return
		}
		if err := midstream.CheckName("channel", name); err != nil {
			c.errs = append(c.errs, err)
			return
		}
		c.channel = name
	}
}

// WithFanOutOnWrite makes Append copy each activity into the timeline
// (feed:{user}) of every follower of its actor, capped at about maxLen
// entries (MAXLEN ~). Read and Live then read the user's timeline. Zero
// means the default: fan-out on read.
func WithFanOutOnWrite(maxLen int64) Option {
	return func(c *config) {
		if maxLen < 0 {
			c.fail("timeline max length %d is negative", maxLen)
			return
		}
		c.fanOutMaxLen = maxLen
	}
}

// WithScanBudget sets how many entries one Read examines at most, up to
// MaxScanBudget. Default DefaultScanBudget.
func WithScanBudget(n int64) Option {
	return func(c *config) {
		if err := option.Set(&c.budget, "scan budget", n, DefaultScanBudget, 1, MaxScanBudget); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithLiveOptions passes options to the subscriptions Live starts.
func WithLiveOptions(opts ...live.Option) Option {
	return func(c *config) {
		for _, o := range opts {
			if o == nil {
				c.fail("nil live option")
				return
			}
		}
		c.liveOps = append(c.liveOps, opts...)
	}
}

// WithFanOutBatch sets how many followers fan-out on write handles per
// pipeline (the SSCAN COUNT hint, and the copies sent at once), up to
// MaxFanOutBatch. Default DefaultFanOutBatch.
func WithFanOutBatch(n int64) Option {
	return func(c *config) {
		if err := option.Set(&c.batch, "fan-out batch", n, DefaultFanOutBatch, 1, MaxFanOutBatch); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithBackfill makes Follow, under fan-out on write, copy up to n of the
// followed actor's latest activities (found among the scan budget's newest
// entries of the activity stream) into the follower's timeline, up to
// MaxBackfill. Copies older than the timeline's newest entry take a new ID
// (see FieldActivityID), so they show at the head of the timeline. Zero
// means the default: no backfill.
func WithBackfill(n int64) Option {
	return func(c *config) {
		if n < 0 || n > MaxBackfill {
			c.fail("backfill %d not within [0, %d]", n, MaxBackfill)
			return
		}
		c.backfill = n
	}
}

// WithTracerProvider sets the TracerProvider of the feed's spans ("append
// <stream>", a producer span covering the fan-out too). Default: the global
// provider; while none is set, nothing is traced.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.fail("nil tracer provider")
			return
		}
		c.tp = tp
	}
}

// WithMeterProvider sets the MeterProvider of the feed's counters:
// midstream.messages.published (activities appended) and
// midstream.feed.copied (timeline copies written). Default: the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.fail("nil meter provider")
			return
		}
		c.mp = mp
	}
}

// WithIdempotencyTTL sets how long Append remembers an idempotency key
// (WithIdempotencyKey), from a millisecond up to MaxIdempotencyTTL. Default
// DefaultIdempotencyTTL.
func WithIdempotencyTTL(d time.Duration) Option {
	return func(c *config) {
		if err := option.Set(&c.idemTTL, "idempotency TTL", d, DefaultIdempotencyTTL, time.Millisecond, MaxIdempotencyTTL); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}
