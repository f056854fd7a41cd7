package live

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// Subscription delivers the entries of one stream in ID order, each exactly
// once, from a starting point on. Receive them from C. It never closes the
// client it was given.
type Subscription struct {
	client redis.UniversalClient
	stream string
	cfg    config
	ps     *redis.PubSub

	out    chan midstream.Entry
	wake   chan struct{} // size one: notifications coalesce
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	cursor midstream.ID // last delivered (or skipped) ID
	err    error
}

// Subscribe starts following stream from the entry after from, which is an
// entry ID ("<ms>-<seq>" or "<ms>"), Now or Beginning. Entries are delivered
// on C in ID order, each exactly once, until ctx is done or Close is called.
//
// Notifications PUBLISHed on channel only wake the subscription up: their
// payload is ignored and the stream is always the truth. The subscription
// SUBSCRIBEs to channel before Subscribe returns and before it reads the
// stream, so an entry whose notification follows its XADD is delivered
// promptly; an entry whose notification is lost (a cut connection, a
// publisher that does not publish) is delivered at the next poll (see
// WithPollInterval). After any error it reads the stream again from the last
// delivered ID, so nothing is skipped or repeated.
//
// Delivery waits for the receiver: a slow receiver slows reading down, and
// nothing piles up in memory. Errors (lost connections, failed reads, a
// failing filter) are retried with a backoff (jittered, from 50ms to a
// second); after a connection error or a redirection a cluster client
// reloads its view of the cluster first. An error retrying cannot fix (a
// key of the wrong type, a missing ACL permission, an unknown command) ends
// the subscription once it persisted for 5 reads in a row, and Err returns
// an error wrapping midstream.ErrMisconfigured and the Redis error. Bad
// arguments fail here with an error wrapping midstream.ErrInvalidOption (a
// channel that is empty or holds control characters, a bad option),
// midstream.ErrInvalidStream or
// midstream.ErrInvalidID.
func Subscribe(ctx context.Context, client redis.UniversalClient, stream, channel, from string, opts ...Option) (*Subscription, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(stream); err != nil {
		return nil, err
	}
	if err := midstream.CheckName("channel", channel); err != nil {
		return nil, err
	}
	cfg := config{pageSize: DefaultPageSize, poll: DefaultPollInterval}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	var cursor midstream.ID
	resolveNow := false
	switch from {
	case Now:
		resolveNow = true
	case "-", "0", Beginning:
	default:
		id, err := midstream.ParseID(from)
		if err != nil {
			return nil, err
		}
		cursor = id
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	ps := client.Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil { // the SUBSCRIBE confirmation
		_ = ps.Close()
		return nil, fmt.Errorf("live: subscribe %s: %w", channel, err)
	}
	if resolveNow {
		last, err := client.XRevRangeN(ctx, stream, "+", "-", 1).Result()
		if err != nil {
			_ = ps.Close()
			return nil, fmt.Errorf("live: last entry of %s: %w", stream, err)
		}
		if len(last) == 1 {
			if cursor, err = midstream.ParseID(last[0].ID); err != nil {
				_ = ps.Close()
				return nil, err
			}
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{
		client: client,
		stream: stream,
		cfg:    cfg,
		ps:     ps,
		out:    make(chan midstream.Entry),
		wake:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
		cursor: cursor,
	}
	go s.run(ctx)
	return s, nil
}

// Entries is Subscribe as an iterator. It yields entries until ctx is done
// (then it just stops) or the subscription fails (then it yields the error
// once, with a zero Entry). Breaking out of the loop ends the subscription.
func Entries(ctx context.Context, client redis.UniversalClient, stream, channel, from string, opts ...Option) iter.Seq2[midstream.Entry, error] {
	return func(yield func(midstream.Entry, error) bool) {
		s, err := Subscribe(ctx, client, stream, channel, from, opts...)
		if err != nil {
			yield(midstream.Entry{}, err)
			return
		}
		defer s.Close()
		for e := range s.C() {
			if !yield(e, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield(midstream.Entry{}, err)
		}
	}
}

// C returns the channel entries are delivered on. It is closed when the
// subscription ends; then every goroutine it started has exited.
func (s *Subscription) C() <-chan midstream.Entry { return s.out }

// Err returns the error that ended the subscription, or nil while it runs
// and when it ended because ctx was done or Close was called.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Last returns the ID of the last entry delivered (or passed over by the
// filter), or the starting point if none was. Subscribing again from it
// resumes without a gap or a duplicate.
func (s *Subscription) Last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor.String()
}

// Done is closed when the subscription has ended and every goroutine it
// started has exited.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Close ends the subscription and waits until every goroutine it started has
// exited. Entries not yet received are dropped. It always returns nil.
func (s *Subscription) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run reads the stream from the cursor whenever it is woken up or the poll
// interval passes, until ctx is done or a permanent error occurs.
func (s *Subscription) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.listen(ctx)
	}()
	err := s.follow(ctx)
	s.cancel()
	_ = s.ps.Close() // unblocks listen
	wg.Wait()
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.out)
	close(s.done)
}

// follow is the read loop. It returns nil when ctx is done.
func (s *Subscription) follow(ctx context.Context) error {
	timer := time.NewTimer(s.cfg.poll)
	defer timer.Stop()
	backoff := rediserr.Backoff{Max: maxBackoff}
	var streak rediserr.Streak
	for {
		err := s.catchUp(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case streak.Observe(err):
			return rediserr.Fatal("live: read "+s.stream, err)
		case err == nil:
			backoff.Reset()
		default:
			class := rediserr.Classify(err)
			if class == rediserr.Topology {
				rediserr.Refresh(ctx, s.client)
			}
			d := backoff.Next()
			s.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "live: read failed, retrying",
				slog.String("stream", s.stream), slog.String("id", s.Last()),
				slog.Duration("backoff", d), slog.String("class", class.String()), slog.Any("error", err))
			if !rediserr.Sleep(ctx, d) {
				return nil
			}
			continue
		}
		timer.Reset(s.cfg.poll)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// catchUp reads the stream after the cursor, page by page, delivering each
// entry, until a page comes back short.
func (s *Subscription) catchUp(ctx context.Context) error {
	for {
		s.mu.Lock()
		cursor := s.cursor
		s.mu.Unlock()
		msgs, err := s.client.XRangeN(ctx, s.stream, cursor.Next().String(), "+", s.cfg.pageSize).Result()
		if err != nil {
			return err
		}
		page := make([]midstream.Entry, 0, len(msgs))
		last := cursor
		for _, m := range msgs {
			id, err := midstream.ParseID(m.ID)
			if err != nil {
				return err
			}
			if id.Compare(last) <= 0 { // never happens with XRANGE; keeps delivery exactly once
				continue
			}
			last = id
			page = append(page, midstream.EntryOf(s.stream, m.ID, m.Values))
		}
		if s.cfg.filter != nil && len(page) > 0 {
			if page, err = s.cfg.filter(ctx, page); err != nil {
				return err
			}
		}
		for _, e := range page {
			id, err := midstream.ParseID(e.ID)
			if err != nil || id.Compare(cursor) <= 0 {
				continue // a filter must not invent or repeat entries
			}
			select {
			case s.out <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
			cursor = id
			s.mu.Lock()
			s.cursor = id
			s.mu.Unlock()
		}
		s.mu.Lock()
		if last.Compare(s.cursor) > 0 { // entries the filter dropped
			s.cursor = last
		}
		s.mu.Unlock()
		if int64(len(msgs)) < s.cfg.pageSize {
			return nil
		}
	}
}

// listen turns every pub/sub event into a wake-up. A lost connection is a
// wake-up too: notifications may have been missed while it was down; it
// also has a cluster client reload its view of the cluster.
func (s *Subscription) listen(ctx context.Context) {
	backoff := rediserr.Backoff{Max: maxBackoff}
	for ctx.Err() == nil {
		_, err := s.ps.ReceiveTimeout(ctx, s.cfg.poll)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // no news: the poll timer covers it
			}
			// The channel's node may be gone (a master killed, on another
			// node than the stream's): go-redis redials the node its view
			// names, so renew the view.
			rediserr.RefreshAfter(ctx, s.client, err)
			s.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "live: pub/sub failed, reconnecting",
				slog.String("stream", s.stream), slog.Any("error", err))
			s.notify()
			if !rediserr.Sleep(ctx, backoff.Next()) {
				return
			}
			continue
		}
		backoff.Reset()
		s.notify()
	}
}

func (s *Subscription) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// maxBackoff caps the waits between retries: a live subscription keeps
// them short.
const maxBackoff = time.Second
