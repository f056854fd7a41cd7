package deadletter

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// Provenance fields: what a dead-letter entry records about where it came
// from, beside the original entry's fields. All names start with
// midstream.DeadLetterPrefix, which user fields may not use.
const (
	FieldStream     = midstream.DeadLetterPrefix + "stream"     // source stream key
	FieldGroup      = midstream.DeadLetterPrefix + "group"      // consumer group it was pending in
	FieldConsumer   = midstream.DeadLetterPrefix + "consumer"   // consumer that owned it
	FieldID         = midstream.DeadLetterPrefix + "id"         // its ID in the source stream
	FieldDeliveries = midstream.DeadLetterPrefix + "deliveries" // times it was delivered
	FieldError      = midstream.DeadLetterPrefix + "error"      // why it was dead-lettered
	FieldTime       = midstream.DeadLetterPrefix + "time"       // when, in Unix milliseconds
)

// KeySuffix is appended to a source stream's name to form its default
// dead-letter key (see Key).
const KeySuffix = ":dlq"

// Key returns the default dead-letter key of the source stream, chosen to
// share the stream's Redis Cluster hash slot, so that Move and Redrive run as
// one atomic script:
//
//   - a stream with a hash tag keeps it: "{orders}" → "{orders}:dlq",
//     "shop:{orders}:v2" → "shop:{orders}:v2:dlq";
//   - a stream without one gets its whole name as the tag: "orders" →
//     "{orders}:dlq" (a key without a tag is hashed whole, so "orders" and
//     the tag "orders" hash alike).
//
// A name holding braces without forming a valid tag ("a}b", "x{}") cannot
// be wrapped that way; Key then returns stream+":dlq", which almost surely
// lives in another slot: Move and Redrive still work there, with several
// commands instead of one script (see Queue.Atomic). Naming streams with an explicit tag,
// "{orders}", and letting the DLQ be "{orders}:dlq" is the clearest layout.
func Key(stream string) string {
	if _, ok := keys.HashTag(stream); ok {
		return stream + KeySuffix
	}
	if k := "{" + stream + "}" + KeySuffix; keys.SameSlot(k, stream) {
		return k
	}
	return stream + KeySuffix
}

// RedriveKey returns the redrive stream of group on the source stream: the
// stream Redrive sends the group's dead letters back to, which only that
// group reads (each consumer of package consumer reads it beside the
// source, see consumer.New), so that other groups of the source never see
// a redriven entry. It shares the source's cluster slot when it can (see
// Key): "{orders}" and group "billing" give
// "{orders}:midstream:redrive:billing".
func RedriveKey(source, group string) string {
	return keys.Beside(source, ":midstream:redrive:"+group)
}

// RedriveQueue returns the Queue that dead-letters the entries redriven to
// group: its source is RedriveKey(q.Source(), group), its dead-letter
// stream q's. Consumers of the redrive stream use it.
func (q *Queue) RedriveQueue(group string) *Queue {
	r := *q
	r.source = RedriveKey(q.source, group)
	r.atomic = keys.SameSlot(r.source, q.key)
	r.log = q.log.With("redrive_stream", r.source)
	return &r
}

// Queue is the dead-letter stream of one source stream: it moves entries in
// (Move), lists and inspects them (List, Get, Count), sends them back
// (Redrive) and removes them (Delete, Purge). It is safe for concurrent use
// and holds no state besides its configuration; any number of Queues may work
// on the same keys. It never closes the client it was given.
type Queue struct {
	client  redis.UniversalClient
	source  string
	key     string
	atomic  bool   // source and key share a cluster slot
	markers string // prefix of the marker keys of Move's multi-command path
	log     *slog.Logger
	tracer  telemetry.Tracer
}

// Option configures a Queue. Options are checked by New: a zero value
// means the default; a nil logger or provider fails with an error wrapping
// midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	key            string
	logger         *slog.Logger
	tracerProvider trace.TracerProvider // nil: the global one
	errs           []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithKey sets the dead-letter stream's key. The default (also for "") is
// Key(source), which shares the source's cluster slot; a key in another
// slot works too, but moves and redrives to the source are then not atomic
// (see Move).
func WithKey(dlqKey string) Option {
	return func(c *config) {
		if dlqKey == "" {
			c.key = ""
			return
		}
		if err := midstream.CheckStream(dlqKey); err != nil {
			c.errs = append(c.errs, fmt.Errorf("%w: dead-letter key: %w", midstream.ErrInvalidOption, err))
			return
		}
		c.key = dlqKey
	}
}

// WithLogger sets the logger. Records carry the keys stream, dlq, group,
// consumer and, about one entry, id. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("nil logger")
			return
		}
		c.logger = l
	}
}

// New returns the dead-letter Queue of the source stream over client. The
// caller keeps ownership of client. Bad arguments fail here with an error
// wrapping midstream.ErrInvalidOption (or midstream.ErrInvalidStream for a
// bad source name). Nothing is sent to Redis.
func New(client redis.UniversalClient, source string, opts ...Option) (*Queue, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(source); err != nil {
		return nil, err
	}
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if cfg.key == "" {
		cfg.key = Key(source)
	}
	if cfg.key == source {
		return nil, fmt.Errorf("%w: dead-letter key %q is the source stream", midstream.ErrInvalidOption, source)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		client:  client,
		source:  source,
		key:     cfg.key,
		atomic:  keys.SameSlot(source, cfg.key),
		markers: markerPrefix(cfg.key),
		log:     cfg.logger.With("stream", source, "dlq", cfg.key),
		tracer:  telemetry.NewTracer(cfg.tracerProvider),
	}
	if !q.atomic {
		q.log.Warn("deadletter: the dead-letter key is not in the source's cluster slot: moves and redrives are not atomic")
	}
	return q, nil
}

// Key returns the dead-letter stream's key.
func (q *Queue) Key() string { return q.key }

// Source returns the source stream's key.
func (q *Queue) Source() string { return q.source }

// Atomic reports whether the source stream and the dead-letter stream share
// a Redis Cluster hash slot, so that Move and Redrive to the source each run
// as one atomic script. When false they take several commands and never
// lose an entry: Move dead-letters an entry at most once within MarkerTTL,
// also after a crash, a lost reply or a failed XACK (see Move); Redrive may
// add an entry to the source twice after a crash.
func (q *Queue) Atomic() bool { return q.atomic }

// Entry is one dead-letter entry: the original entry's fields and its
// provenance.
type Entry struct {
	// Entry holds the dead-letter stream's key (Stream), the dead-letter
	// entry's ID (ID; its time is when the entry was dead-lettered, by the
	// server's clock) and the original entry's fields without the
	// provenance (Fields), reserved fields such as traceparent and headers
	// included.
	midstream.Entry
	// Source is the stream the entry came from (FieldStream).
	Source string
	// Group is the consumer group it was pending in (FieldGroup).
	Group string
	// Consumer is the consumer that owned it (FieldConsumer).
	Consumer string
	// OriginalID is its ID in the source stream (FieldID).
	OriginalID string
	// Deliveries is how many times it was delivered (FieldDeliveries).
	Deliveries int64
	// Error is why it was dead-lettered (FieldError).
	Error string
	// Time is when it was dead-lettered, by the mover's clock (FieldTime).
	Time time.Time
}

// ParseEntry turns a raw entry of the dead-letter stream dlqKey (as XRANGE
// returns it) into an Entry. Provenance that is missing or garbled (entries
// written by hand or by other tools) leaves the matching field at its zero
// value; ParseEntry never fails. Fields with the provenance prefix are never
// copied into Fields.
func ParseEntry(dlqKey string, m redis.XMessage) Entry {
	e := Entry{Entry: midstream.Entry{Stream: dlqKey, ID: m.ID, Fields: make(map[string]string, len(m.Values))}}
	for k, raw := range m.Values {
		v := fieldString(raw)
		if !strings.HasPrefix(k, midstream.DeadLetterPrefix) {
			e.Fields[k] = v
			continue
		}
		switch k {
		case FieldStream:
			e.Source = v
		case FieldGroup:
			e.Group = v
		case FieldConsumer:
			e.Consumer = v
		case FieldID:
			e.OriginalID = v
		case FieldDeliveries:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				e.Deliveries = n
			}
		case FieldError:
			e.Error = v
		case FieldTime:
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
				e.Time = time.UnixMilli(ms)
			}
		}
	}
	return e
}

// fieldString returns a field value as a string.
var fieldString = midstream.ValueString

// normID parses an entry ID and returns it as "<ms>-<seq>", so that "5"
// means 5-0 in every command (XRANGE would read "5" as the whole millisecond).
func normID(id string) (string, error) {
	p, err := midstream.ParseID(id)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}
