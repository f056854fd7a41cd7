package dashboard

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/ops"
)

// Defaults and bounds of the options.
const (
	DefaultSampleInterval = 5 * time.Second
	MinSampleInterval     = 100 * time.Millisecond
	MaxSampleInterval     = time.Hour
	DefaultHistory        = 15 * time.Minute
	MaxHistory            = 24 * time.Hour
	// MaxPoints bounds the samples kept per stream: history / interval.
	MaxPoints          = 10_000
	DefaultMaxStreams  = 1000
	DefaultRedriveRate = 100
	DefaultMaxTails    = 4
	MaxTails           = 1000
)

// Option configures New. A zero value means the default; a value out of
// its bounds fails with an error wrapping midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	patterns    []string
	writes      bool
	token       string
	interval    time.Duration
	history     time.Duration
	maxStreams  int
	redriveRate float64
	maxTails    int
	origins     []string
	logger      *slog.Logger
	errs        []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: dashboard: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithPatterns sets the glob patterns of the streams the overview lists
// (SCAN MATCH, on every master of a cluster). Default "*". Dead-letter
// streams (keys ending in ":dlq") are never listed as streams.
func WithPatterns(patterns ...string) Option {
	return func(c *config) {
		for _, p := range patterns {
			if p == "" {
				c.fail("empty pattern")
				return
			}
		}
		c.patterns = append(c.patterns, patterns...)
	}
}

// WithWriteActions enables redriving and deleting dead letters from the
// page. Default: read-only.
func WithWriteActions() Option {
	return func(c *config) { c.writes = true }
}

// WithToken makes every write action need "Authorization: Bearer token".
// Default "": the anti-forgery checks alone.
func WithToken(token string) Option {
	return func(c *config) { c.token = token }
}

// WithSampleInterval sets how often the overview is sampled for the
// charts, in [MinSampleInterval, MaxSampleInterval]. Default
// DefaultSampleInterval.
func WithSampleInterval(d time.Duration) Option {
	return func(c *config) {
		if d != 0 && (d < MinSampleInterval || d > MaxSampleInterval) {
			c.fail("sample interval %s is not in [%s, %s]", d, MinSampleInterval, MaxSampleInterval)
			return
		}
		c.interval = d
	}
}

// WithHistory sets how far back the charts go, at most MaxHistory and at
// most MaxPoints samples. Default DefaultHistory.
func WithHistory(d time.Duration) Option {
	return func(c *config) {
		if d < 0 || d > MaxHistory {
			c.fail("history %s is not in [0, %s]", d, MaxHistory)
			return
		}
		c.history = d
	}
}

// WithMaxStreams bounds the streams the overview lists, at most
// ops.MaxStreams. Default DefaultMaxStreams.
func WithMaxStreams(n int) Option {
	return func(c *config) {
		if n < 0 || n > ops.MaxStreams {
			c.fail("max streams %d is not in [0, %d]", n, ops.MaxStreams)
			return
		}
		c.maxStreams = n
	}
}

// WithRedriveRate bounds how many dead letters per second one redrive
// sends. Default DefaultRedriveRate; it must be a finite number >= 0 (the
// zero value means the default: the dashboard always paces).
func WithRedriveRate(r float64) Option {
	return func(c *config) {
		if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
			c.fail("redrive rate %v is not a finite number >= 0", r)
			return
		}
		c.redriveRate = r
	}
}

// WithMaxTails bounds the live tails open at once, at most MaxTails.
// Each open tail holds one connection of the client's pool while it waits
// for entries (a blocking XREAD): keep the pool larger. Default
// DefaultMaxTails.
func WithMaxTails(n int) Option {
	return func(c *config) {
		if n < 0 || n > MaxTails {
			c.fail("max tails %d is not in [0, %d]", n, MaxTails)
			return
		}
		c.maxTails = n
	}
}

// WithTrustedOrigins lets write actions come from pages of these origins
// ("https://admin.example.com": scheme, host and port) besides the
// dashboard's own, for a dashboard behind a proxy that changes the Host
// header. Each is checked as http.CrossOriginProtection.AddTrustedOrigin
// checks it.
func WithTrustedOrigins(origins ...string) Option {
	return func(c *config) { c.origins = append(c.origins, origins...) }
}

// WithLogger sets the logger of failed samples and requests. Default:
// silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("nil logger")
			return
		}
		c.logger = l
	}
}

func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%w: dashboard: nil option", midstream.ErrInvalidOption)
		}
		o(&c)
	}
	if err := errors.Join(c.errs...); err != nil {
		return c, err
	}
	if len(c.patterns) == 0 {
		c.patterns = []string{"*"}
	}
	if c.interval == 0 {
		c.interval = DefaultSampleInterval
	}
	if c.history == 0 {
		c.history = DefaultHistory
	}
	if n := c.history / c.interval; n > MaxPoints {
		return c, fmt.Errorf("%w: dashboard: history %s holds %d samples of %s, more than %d", midstream.ErrInvalidOption, c.history, n, c.interval, MaxPoints)
	}
	if c.maxStreams == 0 {
		c.maxStreams = DefaultMaxStreams
	}
	if c.redriveRate == 0 {
		c.redriveRate = DefaultRedriveRate
	}
	if c.maxTails == 0 {
		c.maxTails = DefaultMaxTails
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
