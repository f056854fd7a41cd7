package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/delay"
	"github.com/midstream-go/midstream/internal/option"
)

// Defaults and bounds of a Scheduler's settings.
const (
	// DefaultMoveBatch is how many due entries one pass moves at most.
	DefaultMoveBatch = delay.DefaultBatch
	// MaxMoveBatch bounds WithMoveBatch: a pass is one script, which
	// blocks the server while it runs.
	MaxMoveBatch = delay.MaxBatch
	// DefaultPollInterval is the longest wait between passes.
	DefaultPollInterval = delay.DefaultPoll
	// MaxPollInterval bounds WithPollInterval.
	MaxPollInterval = delay.MaxPoll
)

// ErrSchedulerRunning is returned by Scheduler.Run while the Scheduler
// runs already.
var ErrSchedulerRunning = errors.New("producer: scheduler already running")

// Scheduler moves the due entries of one stream's delay set (PublishIn,
// PublishAt) to the stream. A consumer's Run does the same for its stream
// by default; run a Scheduler where no consumer runs. Any number of
// Schedulers and consumers may move the same stream's entries: each entry
// is moved exactly once, by one script that appends it and removes it
// from the delay set together, so a mover killed at any point loses or
// duplicates nothing.
type Scheduler struct {
	mover   delay.Mover
	running atomic.Bool
	moved   atomic.Int64
}

// SchedulerOption configures a Scheduler. Options are checked by
// NewScheduler: zero means the default, a value out of bounds fails with
// an error wrapping midstream.ErrInvalidOption.
type SchedulerOption func(*schedulerConfig)

type schedulerConfig struct {
	batch int
	poll  time.Duration
	log   *slog.Logger
	errs  []error
}

// WithMoveBatch sets how many due entries one pass moves at most (at most
// MaxMoveBatch). Default DefaultMoveBatch.
func WithMoveBatch(n int) SchedulerOption {
	return func(c *schedulerConfig) {
		if err := option.Set(&c.batch, "move batch", n, DefaultMoveBatch, 1, MaxMoveBatch); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithPollInterval sets the longest wait between passes, from a
// millisecond to MaxPollInterval: after a pass that left nothing due, the
// Scheduler waits until the next entry is due or this long, whichever is
// sooner, so an entry stored meanwhile with an earlier due time is late by
// at most about this much. Default DefaultPollInterval.
func WithPollInterval(d time.Duration) SchedulerOption {
	return func(c *schedulerConfig) {
		if err := option.Set(&c.poll, "poll interval", d, DefaultPollInterval, delay.MinPoll, MaxPollInterval); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithSchedulerLogger sets the logger of failed passes. Default: none.
func WithSchedulerLogger(l *slog.Logger) SchedulerOption {
	return func(c *schedulerConfig) {
		if l == nil {
			c.errs = append(c.errs, fmt.Errorf("%w: nil logger", midstream.ErrInvalidOption))
			return
		}
		c.log = l
	}
}

// NewScheduler returns a Scheduler of stream's delay set over client. The
// caller keeps ownership of client.
func NewScheduler(client redis.UniversalClient, stream string, opts ...SchedulerOption) (*Scheduler, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(stream); err != nil {
		return nil, err
	}
	cfg := schedulerConfig{batch: DefaultMoveBatch, poll: DefaultPollInterval}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil scheduler option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, cfg.errs[0]
	}
	s := &Scheduler{mover: delay.Mover{Client: client, Stream: stream, Batch: cfg.batch, Poll: cfg.poll, Log: cfg.log}}
	s.mover.OnPass = func(moved int, _ error) { s.moved.Add(int64(moved)) }
	return s, nil
}

// Run moves due entries until ctx is cancelled, then returns nil. After a
// pass it waits until the next entry is due, at most the poll interval;
// while passes fill their batch it goes on at once. Failed passes are
// logged and retried after a backoff (50 ms growing to 5 s); a connection
// error or a redirection reloads a cluster client's view first. When Redis
// refuses the script in a way retrying cannot fix (a missing permission, a
// key of another type) five times in a row, Run returns an error wrapping
// midstream.ErrMisconfigured. Run starts no goroutine; it returns
// ErrSchedulerRunning if the Scheduler runs already.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrSchedulerRunning
	}
	defer s.running.Store(false)
	return s.mover.Run(ctx)
}

// MoveDue makes one pass: it moves at most the batch size of due entries,
// in due order, and returns how many it moved and how long until the next
// entry is due (-1 when none waits, 0 when more are due already), by the
// server's clock.
func (s *Scheduler) MoveDue(ctx context.Context) (moved int, next time.Duration, err error) {
	moved, next, err = delay.Move(ctx, s.mover.Client, s.mover.Stream, s.mover.Batch)
	s.moved.Add(int64(moved))
	if err != nil {
		err = fmt.Errorf("producer: move delayed entries of %q: %w", s.mover.Stream, err)
	}
	return moved, next, err
}

// Moved returns how many entries this Scheduler has moved so far.
func (s *Scheduler) Moved() int64 { return s.moved.Load() }
