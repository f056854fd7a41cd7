package live

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
)

// Defaults used when an option is not given, or given its zero value.
const (
	// DefaultPageSize is how many entries one XRANGE reads.
	DefaultPageSize = 500
	// DefaultPollInterval is how often the stream is read when no
	// notification arrives: the safety net for lost notifications.
	DefaultPollInterval = time.Second
)

// Bounds of the options. Subscribe refuses a larger value (and a negative
// one) with an error wrapping midstream.ErrInvalidOption.
const (
	// MaxPageSize bounds WithPageSize: a page is held in memory whole
	// (and passed to the filter) before its entries are delivered.
	MaxPageSize = 10_000
	// MaxPollInterval bounds WithPollInterval: it is the longest an entry
	// whose notification was lost waits.
	MaxPollInterval = time.Hour
)

// Special values of Subscribe's from argument.
const (
	// Now starts after the stream's last entry at the time Subscribe is
	// called: only entries added later are delivered.
	Now = "$"
	// Beginning delivers the whole stream.
	Beginning = "0-0"
)

// Filter selects which entries of a page are delivered. It receives the
// entries of one page in ID order and returns those to deliver, in the same
// order. Entries it drops are skipped for good: the cursor moves past them.
// An error makes the subscription read the page again later.
type Filter func(ctx context.Context, page []midstream.Entry) ([]midstream.Entry, error)

// Option configures a subscription. Options are checked by Subscribe: a
// zero value means the default, a negative one or one above its Max… bound
// fails, as does a nil filter or logger, with an error wrapping
// midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	pageSize int64
	poll     time.Duration
	filter   Filter
	logger   *slog.Logger
	errs     []error
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

// WithPageSize sets how many entries one XRANGE reads, at most
// MaxPageSize. Default DefaultPageSize.
func WithPageSize(n int) Option {
	return func(c *config) {
		c.check(option.Set(&c.pageSize, "page size", int64(n), DefaultPageSize, 1, MaxPageSize))
	}
}

// WithPollInterval sets how long the subscription waits for a notification
// before it reads the stream anyway, from 1ms to MaxPollInterval. It bounds
// the delay of an entry whose notification was lost. Default
// DefaultPollInterval.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		c.check(option.Set(&c.poll, "poll interval", d, DefaultPollInterval, time.Millisecond, MaxPollInterval))
	}
}

// WithFilter makes the subscription deliver only the entries f keeps.
func WithFilter(f Filter) Option {
	return func(c *config) {
		if f == nil {
			c.fail("nil filter")
			return
		}
		c.filter = f
	}
}

// WithLogger logs transient errors (a lost connection, a failed read) that
// the subscription recovers from. By default nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("nil logger")
			return
		}
		c.logger = l
	}
}
