package trim

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
)

// Defaults for the Trimmer's options. Giving an option its zero value is
// the same as leaving it out: the default applies (WithJitter excepted:
// zero turns jitter off).
const (
	// DefaultInterval is the time between two ticks.
	DefaultInterval = time.Second
	// DefaultJitterFraction is the default jitter, as a fraction of the
	// interval: a tenth.
	DefaultJitterFraction = 0.1
	// DefaultMaxStreamsPerTick bounds the streams one tick visits.
	DefaultMaxStreamsPerTick = 100
	// DefaultMaxPasses bounds the passes one tick runs on one stream, while
	// each stops at the policy's work limit (Result.More).
	DefaultMaxPasses = 10
)

// Bounds of the options. New refuses a larger value (and a negative one)
// with an error wrapping midstream.ErrInvalidOption.
const (
	// MaxInterval bounds WithInterval.
	MaxInterval = 24 * time.Hour
	// MaxJitter bounds WithJitter.
	MaxJitter = 24 * time.Hour
	// MaxStreamsPerTick bounds WithMaxStreamsPerTick: the streams of a tick
	// are listed in memory, and a tick that visits more takes longer than
	// an interval is meant to.
	MaxStreamsPerTick = 10_000
	// MaxPasses bounds WithMaxPasses: a tick evicts at most MaxPasses ×
	// Policy.Limit entries per stream.
	MaxPasses = 1000
)

// SCAN bounds: one tick issues at most maxScanCalls SCAN calls, each
// asking for scanCount keys, so a pattern matching few keys of a large
// keyspace still costs a bounded amount per tick.
const (
	scanCount    = 1000
	maxScanCalls = 10
)

// Option configures a Trimmer. Options are checked by New: a zero value
// means the default (WithJitter excepted), a negative one or one above its
// Max… bound fails, as does a nil logger, function or provider, with an
// error wrapping midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	streams     []string
	partitioned []string
	pattern     string
	interval    time.Duration
	jitter      time.Duration
	jitterSet   bool
	maxStreams  int
	maxPasses   int
	logger      *slog.Logger
	report      func(Result, error)
	meter       metric.MeterProvider
	errs        []error
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

// WithStreams adds streams to trim, by key. It may be given several times
// and combined with WithPattern.
func WithStreams(names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			if err := midstream.CheckStream(n); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%w: %w", midstream.ErrInvalidOption, err))
				return
			}
		}
		c.streams = append(c.streams, names...)
	}
}

// WithPartitioned adds partitioned streams to trim (see
// midstream.Partitions), by their logical names: the Trimmer trims every
// partition as a stream of its own, against that partition's own consumer
// groups, so no pass ever trims an entry a group has not read or holds
// pending in that partition (the policy's bounds apply per partition:
// MaxLen 1000 keeps about 1000 entries in each). It reads the partitions
// from the layout stored in Redis (midstream.StoredPartitions, one HGETALL
// per stream) at the start of every cycle over the streams, so a stream
// whose layout is stored later is picked up then; until then it has no
// partitions to trim. WithReport and the logs name each partition's key.
// It may be given several times and combined with WithStreams and
// WithPattern.
func WithPartitioned(names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			if err := midstream.CheckStream(n); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%w: %w", midstream.ErrInvalidOption, err))
				return
			}
		}
		c.partitioned = append(c.partitioned, names...)
	}
}

// WithPattern trims every stream whose key matches the glob pattern, found
// with SCAN MATCH pattern TYPE stream (on a Redis Cluster, on every master;
// on a Ring, on every shard). Streams added later are found on the next
// SCAN cycle. A tick issues at most 10 SCAN calls of COUNT 1000 and resumes
// the cycle where the previous tick left it. On a cluster, each tick that
// scans lists the masters afresh (ForEachMaster, which reloads the cluster
// client's view: one CLUSTER SLOTS), so the cycle follows failovers: a
// master that left is dropped, its replacement scanned. Mind what the pattern
// catches: "orders*" also matches a dead-letter stream "orders:dlq", and
// "orders:*" the partitions of a partitioned stream "orders" with their
// dead-letter streams ("orders:{0}:dlq"; WithPartitioned names only the
// partitions). The
// default (also for "") is no pattern; control characters are refused.
func WithPattern(pattern string) Option {
	return func(c *config) {
		if pattern == "" {
			c.pattern = ""
			return
		}
		if err := midstream.CheckName("pattern", pattern); err != nil {
			c.check(err)
			return
		}
		c.pattern = pattern
	}
}

// WithInterval sets the time between two ticks, from a millisecond to
// MaxInterval. Default DefaultInterval.
func WithInterval(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.interval, "interval", d, DefaultInterval, time.Millisecond, MaxInterval))
	}
}

// WithJitter adds a random duration in [0, d] to each wait between ticks
// and delays the first tick by one, so that trimmers started together
// spread their work. Zero turns jitter off (an exception to the rule that
// zero means the default); d is at most MaxJitter. Default:
// DefaultJitterFraction of the interval.
func WithJitter(d time.Duration) Option {
	return func(c *config) {
		switch {
		case d < 0:
			c.fail("jitter %s is negative", d)
		case d > MaxJitter:
			c.fail("jitter %s is above the maximum %s", d, MaxJitter)
		default:
			c.jitter, c.jitterSet = d, true
		}
	}
}

// WithMaxStreamsPerTick bounds the streams one tick visits, at most
// MaxStreamsPerTick; the next tick goes on where it stopped. Default
// DefaultMaxStreamsPerTick.
func WithMaxStreamsPerTick(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.maxStreams, "max streams per tick", n, DefaultMaxStreamsPerTick, 1, MaxStreamsPerTick))
	}
}

// WithMaxPasses bounds the passes one tick runs on one stream: a pass that
// stops at the policy's work limit (Result.More) is followed by another,
// up to n, at most MaxPasses. So one tick evicts at most n × Policy.Limit
// entries per stream, and a stream can shed at most that much per
// interval. Default DefaultMaxPasses.
func WithMaxPasses(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.maxPasses, "max passes", n, DefaultMaxPasses, 1, MaxPasses))
	}
}

// WithLogger sets the logger. Passes that trim or hold back are logged at
// Debug, failed ones at Warn, with the keys stream and, for a group holding
// entries back, group and id. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("nil logger")
			return
		}
		c.logger = l
	}
}

// WithReport calls fn after every pass with its result, or with the error
// that made it fail (the result then names only the stream), and with the
// error of every failed attempt to find streams by pattern (listing the
// nodes or SCAN; the result is then the zero Result). fn runs on Run's
// goroutine, one call at a time: it should return quickly.
func WithReport(fn func(Result, error)) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("nil report func")
			return
		}
		c.report = fn
	}
}

// WithMeterProvider sets where the Trimmer counts trimmed entries (the
// counter midstream.trim.trimmed, by stream). Default: the global
// MeterProvider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.fail("nil meter provider")
			return
		}
		c.meter = mp
	}
}
