package live

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/midstream-go/midstream"
)

// Defaults used when an option is not given.
const (
	// DefaultPageSize is how many entries one XRANGE reads.
	DefaultPageSize = 500
	// DefaultPollInterval is how often the stream is read when no
	// notification arrives: the safety net for lost notifications.
	DefaultPollInterval = time.Second
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

// Option configures a subscription. Options are checked by Subscribe.
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

// WithPageSize sets how many entries one XRANGE reads (default
// DefaultPageSize). It must be at least 1.
func WithPageSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("page size %d should be >= 1", n)
			return
		}
		c.pageSize = int64(n)
	}
}

// WithPollInterval sets how long the subscription waits for a notification
// before it reads the stream anyway (default DefaultPollInterval). It bounds
// the delay of an entry whose notification was lost. It must be at least
// 1ms.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.fail("poll interval %s should be >= 1ms", d)
			return
		}
		c.poll = d
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
