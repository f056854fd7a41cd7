package producer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// Producer appends values of type T to one stream. It is safe for concurrent
// use. It never closes the client it was given.
type Producer[T any] struct {
	client     redis.UniversalClient
	stream     string
	codec      midstream.Codec[T]
	idFunc     func(T) string
	idemFunc   func(T) string
	noMkStream bool
	trim       *Trim
	maxSize    int
	headers    []string   // static header pairs, names prefixed, sorted by name
	coalesce   *coalescer // nil when coalescing is off
	send       *sender
	obs        *observer
	pairs      sync.Pool    // *[]string buffers the codec encodes into
	clock      *serverClock // nil unless trimming by MaxAge
	idem       idempotency
	part       *partitioned[T] // nil unless WithPartitions
	isPart     bool            // a partition of a partitioned producer
	// plainNext is when (time.Now().UnixNano()) the producer next checks
	// that its stream is not the logical name of a partitioned stream
	// (see plainCheck): 0 until a first check completed, math.MaxInt64 on
	// a partition, which needs none.
	plainNext atomic.Int64
	// plainErr is the error of the last check that found the stream to be
	// the logical name of a partitioned one; nil when it did not.
	plainErr atomic.Pointer[error]
}

// New returns a Producer of T values to stream over client. The caller keeps
// ownership of client. Bad options fail here with an error wrapping
// midstream.ErrInvalidOption (or midstream.ErrInvalidStream, or the codec's
// construction error for a T the default codec cannot represent).
func New[T any](client redis.UniversalClient, stream string, opts ...Option) (*Producer[T], error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(stream); err != nil {
		return nil, err
	}
	cfg := config{maxEntrySize: DefaultMaxEntrySize, idemWindow: DefaultIdempotencyWindow, idemAttempts: DefaultIdempotentAttempts}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if cfg.durable != nil {
		if err := checkDurableClient(client); err != nil {
			return nil, err
		}
	}
	if cfg.partitions != nil {
		return newPartitioned[T](client, stream, cfg)
	}
	return build[T](client, stream, cfg)
}

// build returns a producer to stream of checked options.
func build[T any](client redis.UniversalClient, stream string, cfg config) (*Producer[T], error) {
	p := &Producer[T]{
		client:     client,
		stream:     stream,
		noMkStream: cfg.noMkStream,
		trim:       cfg.trim,
		maxSize:    cfg.maxEntrySize,
		obs:        newObserver(cfg.otel, stream),
		send:       &sender{client: client, stream: stream, durable: cfg.durable},
	}
	if !cfg.noCoalesce {
		p.coalesce = &coalescer{send: p.send.send}
	}
	if p.trim != nil && p.trim.MaxAge > 0 {
		p.clock = newServerClock(client, stream)
	}
	p.idem = idempotency{window: cfg.idemWindow, attempts: cfg.idemAttempts}
	switch c := cfg.codec.(type) {
	case nil:
		dc, err := midstream.DefaultCodec[T]()
		if err != nil {
			return nil, err
		}
		p.codec = dc
	case midstream.Codec[T]:
		p.codec = c
	default:
		return nil, fmt.Errorf("%w: codec %T does not encode %s", midstream.ErrInvalidOption, c, typeName[T]())
	}
	switch fn := cfg.idFunc.(type) {
	case nil:
	case func(T) string:
		p.idFunc = fn
	default:
		return nil, fmt.Errorf("%w: ID func %T does not take %s", midstream.ErrInvalidOption, fn, typeName[T]())
	}
	switch fn := cfg.idemFunc.(type) {
	case nil:
	case func(T) string:
		p.idemFunc = fn
	default:
		return nil, fmt.Errorf("%w: idempotency key func %T does not take %s", midstream.ErrInvalidOption, fn, typeName[T]())
	}
	if cfg.partKeyFunc != nil {
		return nil, fmt.Errorf("%w: WithPartitionKeyFunc without WithPartitions", midstream.ErrInvalidOption)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.headers)) {
		p.headers = append(p.headers, midstream.HeaderPrefix+name, cfg.headers[name])
	}
	return p, nil
}

// Stream returns the stream the producer writes to.
func (p *Producer[T]) Stream() string { return p.stream }

// Publish appends v to the stream and returns its entry ID. Nothing is sent
// if v fails to encode (*midstream.EncodeError), is larger than the maximum
// entry size (midstream.ErrTooLarge), or ctx is already done.
//
// Concurrent calls are coalesced into pipelines: a call that finds nothing in
// flight sends at once; calls that arrive meanwhile go out together in the
// next pipeline, in arrival order. This multiplies throughput under load
// without adding latency when load is low (WithoutCoalescing turns it off).
//
// Delivery is at least once: if the connection fails after Redis received
// the command, the error does not tell whether the entry was added, and the
// client's retries may add it twice. If ctx ends while the entry waits for a
// pipeline, it is not sent and Publish returns ctx.Err(); once its pipeline
// is on its way, Publish waits for the reply. A caller's successive calls
// reach Redis in order.
//
// With an idempotency key (IdempotencyKey, or WithIdempotencyKeyFunc) the
// entry is added by one script that also remembers the key and the entry's
// ID for the idempotency window (WithIdempotencyWindow), atomically: a
// repeat within the window returns the first entry's ID and adds nothing.
// Publish then retries on its own, up to WithIdempotentAttempts times, when
// an attempt's outcome is unknown (the connection ended or timed out after
// the command was sent, a redirection, a server loading or busy): the
// caller gets exactly one entry and its ID. If the attempts run out or ctx
// ends first, the error says nothing about whether the entry was added;
// calling Publish again with the same key within the window tells.
//
// Without a key, Publish does not retry beyond the client's own retries.
// After a connection error or timeout, a closed node client, a redirection
// or a deadline that ran out (what a failover looks like), a cluster client
// is told to reload its view of the cluster before Publish returns, so that
// the caller's retry goes to the node that holds the stream now.
func (p *Producer[T]) Publish(ctx context.Context, v T, opts ...PublishOption) (id string, err error) {
	if p.part != nil {
		return p.part.publish(ctx, v, opts)
	}
	if err := p.plainCheck(ctx); err != nil {
		return "", err
	}
	var pc publishConfig
	for _, o := range opts {
		if o == nil {
			return "", p.wrap(fmt.Errorf("%w: nil publish option", midstream.ErrInvalidOption))
		}
		o(&pc)
	}
	if pc.err != nil {
		return "", p.wrap(pc.err)
	}
	if pc.partKey != "" && !p.isPart {
		return "", p.wrap(errPartitionKey)
	}
	if pc.id == "" && p.idFunc != nil {
		pc.id = p.idFunc(v)
	}
	if pc.idemKey == "" && p.idemFunc != nil {
		pc.idemKey = p.idemFunc(v)
	}
	ctx, span := p.obs.start(ctx, 0)
	defer func() { p.obs.endOne(span, id, err) }()
	pc.headers = p.obs.inject(ctx, span, pc.headers)
	if pc.idemKey != "" {
		return p.publishIdempotent(ctx, v, pc)
	}
	cmd, err := p.command(ctx, v, pc.id, pc.headers)
	if err != nil {
		return "", p.wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return "", p.wrap(err)
	}
	if p.coalesce != nil {
		if !p.coalesce.do(ctx, cmd) {
			return "", p.wrap(ctx.Err())
		}
	} else {
		p.send.send(ctx, cmd)
	}
	return p.result(ctx, cmd)
}

// publishIdempotent is Publish with an idempotency key.
func (p *Producer[T]) publishIdempotent(ctx context.Context, v T, pc publishConfig) (string, error) {
	c, err := p.newIdemCall(ctx, v, pc.id, pc.idemKey, pc.headers)
	if err != nil {
		return "", p.wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return "", p.wrap(err)
	}
	send := func(cmds []*redis.StringCmd) {
		for _, cmd := range cmds {
			p.sendOne(ctx, cmd)
		}
	}
	send([]*redis.StringCmd{p.idemCmd(ctx, c)})
	p.retryIdempotent(ctx, []*idemCall{c}, send)
	return p.result(ctx, c.cmd)
}

// PublishBatch appends vs in order in one pipeline and returns their IDs,
// ids[i] for vs[i]. When it returns an error, it is a *BatchError holding
// the error of each entry (nil for those added), and ids[i] is "" for the
// others. If any value fails to encode or is too large, or ctx is already
// done, nothing is sent: the invalid values carry their own errors and the
// rest ErrNotSent. Otherwise each entry succeeds or fails on its own.
//
// Entries that have an idempotency key (WithIdempotencyKeyFunc) are added
// as Publish adds them, each with its own key, and those whose outcome is
// unknown are sent again in a pipeline of their own: such an entry may
// then land after later entries of the batch.
func (p *Producer[T]) PublishBatch(ctx context.Context, vs []T) (ids []string, err error) {
	if len(vs) == 0 {
		return nil, nil
	}
	if p.part != nil {
		return p.part.publishBatch(ctx, vs)
	}
	if err := p.plainCheck(ctx); err != nil {
		return notSent(len(vs), err)
	}
	ctx, span := p.obs.start(ctx, len(vs))
	defer func() { p.obs.endBatch(span, ids, err) }()
	traceFields := p.obs.inject(ctx, span, nil)
	cmds := make([]*redis.StringCmd, len(vs))
	errs := make([]error, len(vs))
	var keyed []*idemCall
	calls := make([]*idemCall, len(vs)) // the keyed entries' calls
	invalid := -1
	for i, v := range vs {
		id := ""
		if p.idFunc != nil {
			id = p.idFunc(v)
		}
		var cmd *redis.StringCmd
		var err error
		if key := p.idemKey(v); key != "" {
			var c *idemCall
			if c, err = p.newIdemCall(ctx, v, id, key, traceFields); err == nil {
				cmd = p.idemCmd(ctx, c)
				keyed = append(keyed, c)
				calls[i] = c
			}
		} else {
			cmd, err = p.command(ctx, v, id, traceFields)
		}
		if err != nil {
			errs[i] = p.wrap(err)
			if invalid < 0 {
				invalid = i
			}
		}
		cmds[i] = cmd
	}
	if invalid < 0 {
		if err := ctx.Err(); err != nil {
			for i := range errs {
				errs[i] = p.wrap(err)
			}
			return make([]string, len(vs)), &BatchError{Errs: errs}
		}
	} else {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = p.wrap(fmt.Errorf("%w: entry %d of the batch is invalid", ErrNotSent, invalid))
			}
		}
		return make([]string, len(vs)), &BatchError{Errs: errs}
	}
	p.send.send(ctx, cmds...)
	if len(keyed) > 0 {
		p.retryIdempotent(ctx, keyed, func(retry []*redis.StringCmd) { p.send.send(ctx, retry...) })
		for i, c := range calls {
			if c != nil {
				cmds[i] = c.cmd
			}
		}
	}
	ids = make([]string, len(vs))
	failed := false
	for i, cmd := range cmds {
		ids[i], errs[i] = p.result(ctx, cmd)
		failed = failed || errs[i] != nil
	}
	if failed {
		return ids, &BatchError{Errs: errs}
	}
	return ids, nil
}

// idemKey returns v's idempotency key from the producer's key function, ""
// for none.
func (p *Producer[T]) idemKey(v T) string {
	if p.idemFunc == nil {
		return ""
	}
	return p.idemFunc(v)
}

// pairsCap is the capacity of the pooled buffers codecs encode into: the
// pairs of an entry of up to eight fields.
const pairsCap = 16

// ErrNotSent marks the entries of a batch that were not sent because another
// entry of it was invalid.
var ErrNotSent = errors.New("producer: not sent")

// command encodes v into an XADD command, checking everything that can be
// checked before sending.
func (p *Producer[T]) command(ctx context.Context, v T, id string, extra []string) (*redis.StringCmd, error) {
	args, err := p.xaddArgs(ctx, v, id, extra)
	if err != nil {
		return nil, err
	}
	return redis.NewStringCmd(ctx, args...), nil
}

// xaddArgs encodes v into the arguments of an XADD command, checking
// everything that can be checked before sending.
func (p *Producer[T]) xaddArgs(ctx context.Context, v T, id string, extra []string) ([]any, error) {
	if id == "" {
		id = "*"
	} else if err := checkExplicitID(id); err != nil {
		return nil, err
	}
	// The codec encodes into a pooled buffer: its strings are copied into
	// the command's arguments below, and the buffer goes back, unless the
	// codec returned a slice of its own (or grew it): that one is left alone.
	buf, _ := p.pairs.Get().(*[]string)
	if buf == nil {
		b := make([]string, 0, pairsCap)
		buf = &b
	}
	pairs, headers, err := p.fields((*buf)[:0], v, extra)
	defer func() {
		if len(pairs) > 0 && &pairs[0] == &(*buf)[:1][0] {
			clear(pairs) // the strings are the command's now
		}
		p.pairs.Put(buf)
	}()
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, 10+len(pairs)+len(headers))
	args = append(args, "XADD", p.stream)
	if p.noMkStream {
		args = append(args, "NOMKSTREAM")
	}
	args, err = p.appendTrim(ctx, args)
	if err != nil {
		return nil, err
	}
	args = append(args, id)
	for _, s := range pairs {
		args = append(args, s)
	}
	for _, s := range headers {
		args = append(args, s)
	}
	return args, nil
}

// fields encodes v (appending to buf) and merges the headers, checking
// reserved names, the entry's size and that it has fields.
func (p *Producer[T]) fields(buf []string, v T, extra []string) (pairs, headers []string, err error) {
	pairs, err = p.codec.Encode(buf, v)
	if err != nil {
		return nil, nil, err
	}
	size := 0
	for i := 0; i < len(pairs); i += 2 {
		if midstream.IsReserved(pairs[i]) {
			return nil, nil, &midstream.EncodeError{Type: typeName[T](), Field: pairs[i], Err: fmt.Errorf("%w: %q", midstream.ErrReservedField, pairs[i])}
		}
		size += len(pairs[i]) + len(pairs[i+1])
	}
	if len(pairs) == 0 {
		return nil, nil, &midstream.EncodeError{Type: typeName[T](), Err: midstream.ErrEmptyEntry}
	}
	headers = mergeHeaders(p.headers, extra)
	for _, s := range headers {
		size += len(s)
	}
	if size > p.maxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes > limit %d", midstream.ErrTooLarge, size, p.maxSize)
	}
	return pairs, headers, nil
}

// mergeHeaders returns the static headers overridden and extended by the
// per-call ones (both as name, value pairs).
func mergeHeaders(static, call []string) []string {
	if len(call) == 0 {
		return static
	}
	out := make([]string, 0, len(static)+len(call))
	for i := 0; i < len(static); i += 2 {
		overridden := false
		for j := 0; j < len(call); j += 2 {
			if call[j] == static[i] {
				overridden = true
				break
			}
		}
		if !overridden {
			out = append(out, static[i], static[i+1])
		}
	}
	return append(out, call...)
}

// appendTrim appends the trim-on-add arguments. A MaxAge cutoff comes from
// the server's clock (see serverClock).
func (p *Producer[T]) appendTrim(ctx context.Context, args []any) ([]any, error) {
	t := p.trim
	if t == nil {
		return args, nil
	}
	op := "="
	if t.Approx {
		op = "~"
	}
	switch {
	case t.MaxLen > 0:
		args = append(args, "MAXLEN", op, t.MaxLen)
	case t.MinID != "":
		args = append(args, "MINID", op, t.MinID)
	default:
		now, err := p.clock.now(ctx)
		if err != nil {
			return nil, err
		}
		args = append(args, "MINID", op, midstream.IDFromTime(now.Add(-t.MaxAge)).String())
	}
	if t.Limit > 0 {
		args = append(args, "LIMIT", strconv.FormatInt(t.Limit, 10))
	}
	return args, nil
}

// result turns an executed XADD into an ID or a wrapped error. On a
// Topology error or a deadline it has the client refresh its view of the
// cluster (cheap: go-redis coalesces the reloads).
func (p *Producer[T]) result(ctx context.Context, cmd *redis.StringCmd) (string, error) {
	id, err := cmd.Result()
	var derr *DurabilityError
	switch {
	case err == nil:
		return id, nil
	case errors.As(err, &derr):
		return id, p.wrap(err) // written, not confirmed by enough replicas
	case errors.Is(err, redis.Nil):
		return "", p.wrap(midstream.ErrNoStream)
	case isServerError(err, "equal or smaller than the target stream top item"):
		return "", p.wrap(fmt.Errorf("%w: %w", midstream.ErrIDNotIncreasing, err))
	}
	rediserr.RefreshAfter(ctx, p.client, err)
	return "", p.wrap(err)
}

// isServerError reports whether err is an error reply from Redis whose text
// holds msg. Redis gives XADD's ID errors only the generic "ERR" prefix.
func isServerError(err error, msg string) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(rerr.Error(), msg)
}

func (p *Producer[T]) wrap(err error) error {
	return fmt.Errorf("producer: publish to %q: %w", p.stream, err)
}

// BatchError reports the entries of a PublishBatch that failed.
type BatchError struct {
	// Errs[i] is the error of the i-th value, nil if it was added.
	Errs []error
}

// Failed returns how many entries failed.
func (e *BatchError) Failed() int {
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			n++
		}
	}
	return n
}

func (e *BatchError) Error() string {
	first := -1
	for i, err := range e.Errs {
		if err != nil && (first < 0 || !errors.Is(err, ErrNotSent)) {
			first = i
			if !errors.Is(err, ErrNotSent) {
				break
			}
		}
	}
	if first < 0 {
		return "producer: batch failed"
	}
	return fmt.Sprintf("producer: %d of %d entries failed; entry %d: %v", e.Failed(), len(e.Errs), first, e.Errs[first])
}

// Unwrap returns the errors of the failed entries, so errors.Is and
// errors.As see them.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func typeName[T any]() string {
	return reflect.TypeFor[T]().String()
}
