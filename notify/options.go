package notify

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
	// DefaultKeyPrefix starts every key of a user: the stream is
	// DefaultKeyPrefix+user, as in "notifications:123".
	DefaultKeyPrefix = "notifications:"
	// DefaultCountBudget is how many entries a read call (UnreadCount,
	// List, Unread) reads at most: after the read watermark, or read
	// markers waiting to be folded.
	DefaultCountBudget = 10_000
	// DefaultMarkerWindow is how many of the newest entries MarkAllRead
	// covers with read markers: the 100 the article's reader looks at.
	DefaultMarkerWindow = 100
	// DefaultIdempotencyTTL is how long Send remembers an idempotency key.
	DefaultIdempotencyTTL = 24 * time.Hour
)

// Bounds. A larger value (and a negative one) fails with an error wrapping
// midstream.ErrInvalidOption.
const (
	// MaxCountBudget bounds WithCountBudget. Read calls read in chunks of
	// 1000 entries (plain XRANGE, never a script), so the budget bounds the
	// time and memory of a call, not how long Redis is held.
	MaxCountBudget = 10_000_000
	// MaxMarkerWindow bounds WithMarkerWindow: MarkAllRead reads that many
	// entries and may write as many markers in one script.
	MaxMarkerWindow = 10_000
	// MaxIdempotencyTTL bounds WithIdempotencyTTL.
	MaxIdempotencyTTL = 30 * 24 * time.Hour
	// MaxIdempotencyKeyLen bounds the length of an idempotency key.
	MaxIdempotencyKeyLen = 512
	// MaxListLimit bounds the limit of List and Unread: a page is held in
	// memory and one XREVRANGE asks for up to that many entries.
	MaxListLimit = 10_000
)

// Option configures a Notifier. Options are checked by New: a zero value
// means the default, a negative one or one above its Max… bound fails, as
// does a nil live option, with an error wrapping
// midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	prefix  string
	maxLen  int64
	budget  int64
	window  int64
	markers bool
	idemTTL time.Duration
	tp      trace.TracerProvider
	mp      metric.MeterProvider
	liveOps []live.Option
	errs    []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithKeyPrefix sets the prefix of every key, checked like a stream name.
// Default (also for "") DefaultKeyPrefix.
func WithKeyPrefix(p string) Option {
	return func(c *config) {
		if p == "" {
			c.prefix = DefaultKeyPrefix
			return
		}
		if err := midstream.CheckStream(p); err != nil {
			c.fail("key prefix: %v", err)
			return
		}
		c.prefix = p
	}
}

// WithMaxLen keeps about the n newest entries of each user's stream
// (XADD MAXLEN ~ n on Send). Trimmed notifications are gone, read or not.
// Zero means the default: streams are not trimmed.
func WithMaxLen(n int64) Option {
	return func(c *config) {
		if n < 0 {
			c.fail("max length %d is negative", n)
			return
		}
		c.maxLen = n
	}
}

// WithCountBudget sets how many entries a read call reads at most (see
// DefaultCountBudget), up to MaxCountBudget. Default DefaultCountBudget.
func WithCountBudget(n int64) Option {
	return func(c *config) {
		if err := option.Set(&c.budget, "count budget", n, DefaultCountBudget, 1, MaxCountBudget); err != nil {
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

// WithMarkerWindow sets how many of the newest entries MarkAllRead covers
// with read markers, up to MaxMarkerWindow: at least as many as other
// readers of the article's protocol look at (the article: 100). Default
// DefaultMarkerWindow.
func WithMarkerWindow(n int64) Option {
	return func(c *config) {
		if err := option.Set(&c.window, "marker window", n, DefaultMarkerWindow, 1, MaxMarkerWindow); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithoutReadMarkers makes MarkRead and MarkAllRead keep the read state
// only beside the stream (watermark and read set), without appending the
// article's read-marker entries: fewer writes, for deployments where no
// other client reads the read state from the stream. Markers others write
// are still honoured.
func WithoutReadMarkers() Option {
	return func(c *config) { c.markers = false }
}

// WithIdempotencyTTL sets how long Send remembers an idempotency key, from
// a millisecond up to MaxIdempotencyTTL. Default DefaultIdempotencyTTL.
func WithIdempotencyTTL(d time.Duration) Option {
	return func(c *config) {
		if err := option.Set(&c.idemTTL, "idempotency TTL", d, DefaultIdempotencyTTL, time.Millisecond, MaxIdempotencyTTL); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithTracerProvider sets the TracerProvider of the notifier's spans
// ("send", "mark_read", "mark_all_read" as producer spans, "list" and
// "unread_count" as client spans, each named with the key prefix). Default:
// the global provider; while none is set, nothing is traced.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.fail("nil tracer provider")
			return
		}
		c.tp = tp
	}
}

// WithMeterProvider sets the MeterProvider of the notifier's counter
// midstream.messages.published (notifications sent, with the key prefix as
// messaging.destination.name). Default: the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.fail("nil meter provider")
			return
		}
		c.mp = mp
	}
}
