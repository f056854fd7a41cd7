package feed

import (
	"fmt"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
	"github.com/midstream-go/midstream/live"
)

// Defaults used when an option is not given, or given its zero value.
const (
	DefaultStream     = "activity"     // the activity stream, as in the article
	DefaultChannel    = "activity:new" // its live channel, as in the article
	DefaultScanBudget = 1000           // entries Read examines at most per call
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
)

// Option configures a Feed. Options are checked by New: a zero value means
// the default, a negative one or one above its Max… bound fails, as does a
// nil live option, with an error wrapping midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	stream, channel string
	fanOutMaxLen    int64 // > 0: fan-out on write
	budget          int64
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
