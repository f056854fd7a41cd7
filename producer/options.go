package producer

import (
	"fmt"
	"strings"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// DefaultMaxEntrySize is the largest entry (the sum of its field names and
// values, metadata included) a Producer sends unless WithMaxEntrySize says
// otherwise.
const DefaultMaxEntrySize = 1 << 20

// MaxEntrySize bounds WithMaxEntrySize: 512 MiB, the largest string Redis
// accepts by default (proto-max-bulk-len).
const MaxEntrySize = 512 << 20

// Option configures a Producer. Options are checked by New: a zero value
// means the default, a negative one or one above its Max… bound fails, as
// does a nil codec, function or provider, with an error wrapping
// midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	codec        any // midstream.Codec[T] for the producer's T
	idFunc       any // func(T) string
	noMkStream   bool
	trim         *Trim
	maxEntrySize int
	headers      map[string]string
	noCoalesce   bool
	durable      *durability
	otel         telemetry.Providers
	idemFunc     any // func(T) string
	idemWindow   time.Duration
	idemAttempts int
	partitions   *midstream.Partitions
	partKeyFunc  any     // func(T) string
	errs         []error // problems found while applying options
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithCodec sets the codec that turns values into entry fields. The default
// is midstream.DefaultCodec[T]: MapCodec for map[string]string, FlatCodec for
// structs. New fails if c is not a Codec of the producer's T.
func WithCodec[T any](c midstream.Codec[T]) Option {
	return func(cfg *config) {
		if c == nil {
			cfg.fail("nil codec")
			return
		}
		cfg.codec = c
	}
}

// WithIDFunc makes every entry's ID explicit: fn returns the ID for a value
// ("<ms>-<seq>", "<ms>-*" or "*" for a generated one). IDs must increase;
// Redis refuses one at or below the stream's last ID (ErrIDNotIncreasing).
// The ID option of a single Publish call takes precedence.
func WithIDFunc[T any](fn func(T) string) Option {
	return func(cfg *config) {
		if fn == nil {
			cfg.fail("nil ID func")
			return
		}
		cfg.idFunc = fn
	}
}

// WithNoMkStream makes publishing to a missing stream fail with
// midstream.ErrNoStream instead of creating it (XADD NOMKSTREAM).
func WithNoMkStream() Option {
	return func(cfg *config) { cfg.noMkStream = true }
}

// WithoutCoalescing makes every Publish send its own XADD, instead of
// merging concurrent calls into pipelines (see Publish).
func WithoutCoalescing() Option {
	return func(cfg *config) { cfg.noCoalesce = true }
}

// Trim bounds the stream on every add (XADD with MAXLEN or MINID). Set exactly
// one of MaxLen, MinID and MaxAge. The zero Trim is no trimming, the
// default.
//
// Trimming on add ignores consumer groups: it can delete entries a lagging
// group has not read yet. Use it for streams nobody consumes through a
// group, or when losing unread entries past the bound is acceptable; the trim
// package trims without deleting unread work.
type Trim struct {
	// MaxLen keeps at most this many entries (MAXLEN).
	MaxLen int64
	// MinID drops entries with IDs below this one (MINID).
	MinID string
	// MaxAge drops entries older than this, by their ID's time, computing
	// MINID at each add from the Redis server's clock: its TIME, asked at
	// most once a second (a script on the stream's node) and carried
	// forward on the local monotonic clock in between, so a local wall
	// clock that is off changes nothing. At least a millisecond (entry IDs
	// count milliseconds). A Publish fails when the server's clock cannot
	// be read and no reading younger than a minute is at hand.
	MaxAge time.Duration
	// Approx trims only whole internal nodes ("~"): the stream may keep a
	// few more entries than the bound, for much less work per add.
	Approx bool
	// Limit, with Approx, caps the entries evicted by one add (LIMIT). Zero
	// means Redis's default (100 times the node size).
	Limit int64
}

func (t Trim) validate() error {
	set := 0
	if t.MaxLen != 0 {
		set++
	}
	if t.MinID != "" {
		set++
	}
	if t.MaxAge != 0 {
		set++
	}
	switch {
	case set != 1:
		return fmt.Errorf("%w: trim: set exactly one of MaxLen, MinID and MaxAge", midstream.ErrInvalidOption)
	case t.MaxLen < 0:
		return fmt.Errorf("%w: trim: MaxLen %d < 0", midstream.ErrInvalidOption, t.MaxLen)
	case t.MaxAge < 0:
		return fmt.Errorf("%w: trim: MaxAge %s < 0", midstream.ErrInvalidOption, t.MaxAge)
	case t.MaxAge > 0 && t.MaxAge < time.Millisecond:
		return fmt.Errorf("%w: trim: MaxAge %s < 1ms (entry IDs count milliseconds)", midstream.ErrInvalidOption, t.MaxAge)
	case t.Limit < 0:
		return fmt.Errorf("%w: trim: Limit %d < 0", midstream.ErrInvalidOption, t.Limit)
	case t.Limit > 0 && !t.Approx:
		return fmt.Errorf("%w: trim: Limit needs Approx (Redis refuses LIMIT with exact trimming)", midstream.ErrInvalidOption)
	}
	if t.MinID != "" {
		if _, err := midstream.ParseID(t.MinID); err != nil {
			return fmt.Errorf("%w: trim: MinID: %w", midstream.ErrInvalidOption, err)
		}
	}
	return nil
}

// WithTrim trims the stream on every add. See Trim. The zero Trim means
// the default: no trimming on add.
func WithTrim(t Trim) Option {
	return func(cfg *config) {
		if t == (Trim{}) {
			cfg.trim = nil
			return
		}
		if err := t.validate(); err != nil {
			cfg.errs = append(cfg.errs, err)
			return
		}
		cfg.trim = &t
	}
}

// WithMaxEntrySize sets the largest entry, in bytes of field names and values
// (metadata included), that Publish sends; larger ones fail with
// midstream.ErrTooLarge before anything is sent. At most MaxEntrySize.
// Default DefaultMaxEntrySize.
func WithMaxEntrySize(n int) Option {
	return func(cfg *config) {
		if err := option.Set(&cfg.maxEntrySize, "max entry size", n, DefaultMaxEntrySize, 1, MaxEntrySize); err != nil {
			cfg.errs = append(cfg.errs, err)
		}
	}
}

// WithHeaders adds headers to every entry, stored in the reserved fields
// "header:<name>". Per-call headers (Header) with the same name win.
func WithHeaders(h map[string]string) Option {
	return func(cfg *config) {
		for name := range h {
			if err := checkHeaderName(name); err != nil {
				cfg.errs = append(cfg.errs, err)
				return
			}
		}
		if cfg.headers == nil {
			cfg.headers = make(map[string]string, len(h))
		}
		for k, v := range h {
			cfg.headers[k] = v
		}
	}
}

func checkHeaderName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty header name", midstream.ErrInvalidOption)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: header name %q holds a space or control character", midstream.ErrInvalidOption, name)
		}
	}
	return nil
}

// PublishOption adjusts one Publish call.
type PublishOption func(*publishConfig)

type publishConfig struct {
	id      string
	idemKey string
	partKey string
	headers []string // name, value pairs, names already prefixed
	err     error
}

// ID gives the entry an explicit ID ("<ms>-<seq>", "<ms>-*", or "*").
func ID(id string) PublishOption {
	return func(pc *publishConfig) { pc.id = id }
}

// PartitionKey routes the entry of a partitioned producer (WithPartitions)
// to the partition midstream.PartitionOf(key, Count): entries with the same
// key go to the same partition, in the order they were published. It
// overrides WithPartitionKeyFunc for this call. An empty key means none. On a
// producer without partitions it fails the call with an error wrapping
// midstream.ErrInvalidOption.
func PartitionKey(key string) PublishOption {
	return func(pc *publishConfig) { pc.partKey = key }
}

// Header adds one header to the entry; a later Header of the same name wins.
func Header(name, value string) PublishOption {
	return func(pc *publishConfig) {
		if err := checkHeaderName(name); err != nil && pc.err == nil {
			pc.err = err
		}
		field := midstream.HeaderPrefix + name
		for i := 0; i < len(pc.headers); i += 2 {
			if pc.headers[i] == field {
				pc.headers[i+1] = value
				return
			}
		}
		pc.headers = append(pc.headers, field, value)
	}
}

// checkExplicitID accepts "*", "<ms>-*" and a non-zero "<ms>[-<seq>]".
func checkExplicitID(id string) error {
	if id == "*" {
		return nil
	}
	ms, partial := strings.CutSuffix(id, "-*")
	parsed, err := midstream.ParseID(ms)
	if err != nil {
		return err
	}
	if parsed.IsZero() && !partial {
		return fmt.Errorf("%w: 0-0 is never a valid entry ID", midstream.ErrInvalidID)
	}
	return nil
}
