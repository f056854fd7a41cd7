package trim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// ErrRunning is returned by Run on a Trimmer that is already running.
var ErrRunning = errors.New("trim: trimmer already running")

// Trimmer applies a Policy to a set of streams in the background: every
// interval (plus jitter) it runs a tick, which visits a bounded number of
// streams and runs one or more passes of Trim on each. Create it with New
// and start it with Run.
type Trimmer struct {
	client redis.UniversalClient
	policy Policy
	cfg    config
	log    *slog.Logger
	rot    rotation
	count  *telemetry.Trimmed

	running atomic.Bool
	ticks   atomic.Int64
	passes  atomic.Int64
	trimmed atomic.Int64
	held    atomic.Int64
	failed  atomic.Int64
}

// Stats are a Trimmer's running totals since New.
type Stats struct {
	Ticks    int64 // ticks run
	Passes   int64 // passes run, failed ones included
	Trimmed  int64 // entries deleted (sum of Result.Trimmed)
	HeldBack int64 // entries kept for groups (sum of Result.HeldBack)
	Errors   int64 // passes and SCAN calls that failed
}

// New returns a Trimmer applying p to the streams named by WithStreams and
// those matching WithPattern (at least one of them is required). The caller
// keeps ownership of client: the Trimmer never closes it. A bad policy or
// option fails here with an error wrapping midstream.ErrInvalidOption.
// Nothing is sent to Redis.
func New(client redis.UniversalClient, p Policy, opts ...Option) (*Trimmer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	cfg := config{
		interval:   DefaultInterval,
		maxStreams: DefaultMaxStreamsPerTick,
		maxPasses:  DefaultMaxPasses,
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if len(cfg.streams) == 0 && cfg.pattern == "" {
		return nil, fmt.Errorf("%w: no streams: use WithStreams or WithPattern", midstream.ErrInvalidOption)
	}
	if !cfg.jitterSet {
		cfg.jitter = time.Duration(float64(cfg.interval) * DefaultJitterFraction)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	return &Trimmer{
		client: client,
		policy: p,
		cfg:    cfg,
		log:    cfg.logger,
		rot:    rotation{client: client, names: cfg.streams, pattern: cfg.pattern},
		count:  telemetry.NewTrimmed(cfg.meter),
	}, nil
}

// Run trims until ctx is cancelled, then returns nil. The first tick comes
// after a random delay of at most the jitter, each next one an interval plus
// up to the jitter after the previous one ended. Failed passes are logged,
// counted in Stats.Errors and reported (WithReport), never fatal. Run starts
// no goroutine that outlives it. It returns ErrRunning if the Trimmer is
// already running; once it has returned, it may run again.
func (t *Trimmer) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer t.running.Store(false)
	timer := time.NewTimer(t.jitter())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		t.tick(ctx)
		timer.Reset(t.cfg.interval + t.jitter())
	}
}

// Stats returns the running totals. It is safe to call at any time.
func (t *Trimmer) Stats() Stats {
	return Stats{
		Ticks:    t.ticks.Load(),
		Passes:   t.passes.Load(),
		Trimmed:  t.trimmed.Load(),
		HeldBack: t.held.Load(),
		Errors:   t.failed.Load(),
	}
}

func (t *Trimmer) jitter() time.Duration {
	if t.cfg.jitter <= 0 {
		return 0
	}
	return rand.N(t.cfg.jitter + 1)
}

// tick visits up to the configured number of streams, once each.
func (t *Trimmer) tick(ctx context.Context) {
	t.ticks.Add(1)
	streams, _, err := t.rot.next(ctx, t.cfg.maxStreams)
	if err != nil && ctx.Err() == nil {
		t.failed.Add(1)
		t.log.Warn("trim: finding streams failed", "pattern", t.cfg.pattern, "error", err)
	}
	for _, s := range streams {
		for range t.cfg.maxPasses {
			if ctx.Err() != nil {
				return
			}
			res, err := pass(ctx, t.client, s, t.policy)
			if err != nil && ctx.Err() != nil {
				return // cancelled mid-pass: not a failure
			}
			t.record(res, err)
			if err != nil || !res.More {
				break
			}
		}
	}
}

// record counts, logs and reports one pass.
func (t *Trimmer) record(res Result, err error) {
	t.passes.Add(1)
	if err != nil {
		t.failed.Add(1)
		t.log.Warn("trim: pass failed", "stream", res.Stream, "error", err)
	} else {
		t.trimmed.Add(res.Trimmed)
		t.count.Add(context.Background(), res.Stream, res.Trimmed)
		t.held.Add(res.HeldBack)
		if res.Trimmed > 0 || res.HeldBack > 0 || res.Lost > 0 {
			t.log.Debug("trim: pass", "stream", res.Stream, "trimmed", res.Trimmed,
				"held_back", res.HeldBack, "cutoff", res.Cutoff, "policy_cutoff", res.PolicyCutoff,
				"lost", res.Lost, "len", res.Len)
		}
		for _, h := range res.HeldBackBy {
			t.log.Debug("trim: held back", "stream", res.Stream, "group", h.Group, "id", h.Until, "reason", string(h.Reason))
		}
	}
	if t.cfg.report != nil {
		t.cfg.report(res, err)
	}
}
