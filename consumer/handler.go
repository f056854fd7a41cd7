package consumer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/midstream-go/midstream"
)

// Message is one delivered entry, as a Handler sees it. Its fields are read
// in place from the reply go-redis parsed: Field and Lookup cost no copy;
// Fields and Entry build a map when a handler asks for one.
type Message struct {
	Stream string // the stream's key
	ID     string // the entry ID, "<ms>-<seq>"

	// Group and Consumer name who it was delivered to.
	Group, Consumer string
	// Deliveries is how many times Redis has delivered the entry to this
	// group, this delivery included (1 on the first). It is the server's
	// count (XPENDING), never an in-process one; 1 if Redis could not be
	// asked.
	Deliveries int64

	values    midstream.Values // the fields as go-redis read them, or nil
	fields    midstream.Fields // the fields of a NewMessage
	c         *Consumer
	oversized bool  // larger than the consumer's maximum entry size
	reclaimed bool  // claimed from an owner that stopped: run alone, counted when it starts (see isolate.go)
	gone      int32 // atomic: 1 once lease extension found the entry no longer this consumer's
}

// NewMessage returns a Message of e, delivered once, for calling a Handler
// or Middleware outside a consumer (in tests, for one). Set Group, Consumer
// and Deliveries as needed; ExtendLease on it returns ErrNotOwner.
func NewMessage(e midstream.Entry) *Message {
	fields := e.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	return &Message{Stream: e.Stream, ID: e.ID, Deliveries: 1, fields: fields}
}

// Lookup returns the value of the field name (reserved ones included) and
// whether the entry has it.
func (m *Message) Lookup(name string) (string, bool) {
	if m.values != nil {
		return m.values.Lookup(name)
	}
	return m.fields.Lookup(name)
}

// Field returns the value of the field name, or "" if the entry has none.
func (m *Message) Field(name string) string {
	v, _ := m.Lookup(name)
	return v
}

// Len returns the number of fields, reserved ones included.
func (m *Message) Len() int {
	if m.values != nil {
		return len(m.values)
	}
	return len(m.fields)
}

// All iterates over the fields, reserved ones included, in no set order.
func (m *Message) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		if m.values != nil {
			for k, v := range m.values {
				s, _ := v.(string)
				if !yield(k, s) {
					return
				}
			}
			return
		}
		for k, v := range m.fields {
			if !yield(k, v) {
				return
			}
		}
	}
}

// Fields returns a new map of every field, reserved ones included. Each
// call copies: read single fields with Field or Lookup instead.
func (m *Message) Fields() map[string]string {
	if m.values != nil {
		return m.values.Map()
	}
	return maps.Clone(map[string]string(m.fields))
}

// Entry returns the message as a midstream.Entry (its Fields a new map).
func (m *Message) Entry() midstream.Entry {
	return midstream.Entry{Stream: m.Stream, ID: m.ID, Fields: m.Fields()}
}

// Header returns the value of the user header name (stored in the field
// "header:"+name), and whether it is present.
func (m *Message) Header(name string) (string, bool) {
	return m.Lookup(midstream.HeaderPrefix + name)
}

// Headers returns the entry's user headers by name, or nil if it has none.
func (m *Message) Headers() map[string]string {
	var h map[string]string
	for k, v := range m.All() {
		if name, ok := strings.CutPrefix(k, midstream.HeaderPrefix); ok {
			if h == nil {
				h = make(map[string]string)
			}
			h[name] = v
		}
	}
	return h
}

// size is what the producer's size limit counts.
func (m *Message) size() int {
	if m.values != nil {
		return m.values.Size()
	}
	n := 0
	for k, v := range m.fields {
		n += len(k) + len(v)
	}
	return n
}

func (m *Message) isGone() bool { return atomic.LoadInt32(&m.gone) == 1 }
func (m *Message) markGone()    { atomic.StoreInt32(&m.gone, 1) }

// ExtendLease tells the group this consumer still works on m, resetting its
// idle time so the reclaim loop of another consumer does not take it. It
// returns ErrNotOwner if m is no longer pending for this consumer (another
// consumer claimed it, or it was acknowledged). Entries in flight (running,
// or waiting for a worker) for longer than a third of the minimum idle time
// have their lease extended automatically; call it to extend more often.
func (m *Message) ExtendLease(ctx context.Context) error {
	if m.c == nil {
		return ErrNotOwner
	}
	res, err := m.c.extend(ctx, []string{m.ID})
	if err != nil {
		return err
	}
	if res.n == 0 {
		return ErrNotOwner
	}
	return nil
}

// ErrNotOwner is returned by Message.ExtendLease when the entry is no
// longer pending for the consumer.
var ErrNotOwner = errors.New("consumer: entry no longer pending for this consumer")

// ErrPermanent marks a handler error that retrying cannot fix: the entry is
// dead-lettered at once instead of being delivered again. Wrap it (or use
// Permanent); decode errors (midstream.ErrDecode) count as permanent too.
var ErrPermanent = errors.New("consumer: permanent failure")

// Permanent wraps err so that it counts as permanent (see ErrPermanent).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

func isPermanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, midstream.ErrDecode)
}

// Handler processes one message. Returning nil acknowledges it (XACK);
// returning an error leaves it pending in the group, to be delivered again
// once its retry delay has passed (WithRetryPolicy, RetryAfter), until the
// delivery limit dead-letters it. A permanent error (ErrPermanent, a decode
// error) dead-letters it at once.
//
// ctx is cancelled when the per-message timeout (WithHandlerTimeout)
// expires, or when a shutdown's grace period (WithShutdownTimeout) runs out.
// A handler may be called concurrently for different messages, and more than
// once for the same message (delivery is at least once): make it idempotent.
type Handler interface {
	Handle(ctx context.Context, m *Message) error
}

// HandlerFunc adapts a function to a Handler. New refuses a nil one.
type HandlerFunc func(ctx context.Context, m *Message) error

// Handle calls f(ctx, m).
func (f HandlerFunc) Handle(ctx context.Context, m *Message) error { return f(ctx, m) }

// Middleware wraps a Handler, as net/http middleware wraps an http.Handler.
type Middleware func(Handler) Handler

// Chain applies mws to h so that mws[0] is the outermost: it sees each
// message first and each result last.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Typed returns a Handler that decodes each message into a T with
// midstream.DefaultCodec[T] (the flat codec for structs) before calling fn.
// A message that fails to decode is not passed to fn: the handler returns
// the *midstream.DecodeError (wrapping midstream.ErrDecode). If T has no
// default codec, New fails with that error; wrapped in a middleware that
// hides it from New, the handler makes Run stop at the first delivery with
// the error (wrapped in midstream.ErrMisconfigured), the entries left
// pending.
func Typed[T any](fn func(ctx context.Context, v T, m *Message) error) Handler {
	c, err := midstream.DefaultCodec[T]()
	if err != nil {
		return brokenHandler{err}
	}
	return TypedCodec(c, fn)
}

// TypedCodec is Typed with an explicit codec.
func TypedCodec[T any](c midstream.Codec[T], fn func(ctx context.Context, v T, m *Message) error) Handler {
	if c == nil || fn == nil {
		return brokenHandler{fmt.Errorf("%w: TypedCodec needs a codec and a function", midstream.ErrInvalidOption)}
	}
	if sd, ok := c.(midstream.SourceDecoder[T]); ok {
		// Decoded straight from the reply into a pooled T, which fn gets
		// a copy of: a zeroed T holds nothing of the previous message.
		var pool sync.Pool
		return HandlerFunc(func(ctx context.Context, m *Message) error {
			p, _ := pool.Get().(*T)
			if p == nil {
				p = new(T)
			}
			err := sd.DecodeFrom(m, p)
			v := *p
			var zero T
			*p = zero
			pool.Put(p)
			if err != nil {
				return err
			}
			return fn(ctx, v, m)
		})
	}
	return HandlerFunc(func(ctx context.Context, m *Message) error {
		var v T
		if err := c.Decode(m.Fields(), &v); err != nil {
			return err
		}
		return fn(ctx, v, m)
	})
}

// checkHandler refuses what would fail every message: a nil Handler, a
// nil HandlerFunc, and the construction error a brokenHandler carries.
func checkHandler(h Handler) error {
	switch h := h.(type) {
	case nil:
		return fmt.Errorf("%w: nil handler", midstream.ErrInvalidOption)
	case HandlerFunc:
		if h == nil {
			return fmt.Errorf("%w: nil HandlerFunc", midstream.ErrInvalidOption)
		}
	case brokenHandler:
		return h.err
	}
	return nil
}

// brokenHandler carries a construction error to New.
type brokenHandler struct{ err error }

func (b brokenHandler) Handle(context.Context, *Message) error { return &brokenError{b.err} }

// PanicError is the error a handler's panic is turned into. The message
// stays pending, as for any other error.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("consumer: handler panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// safeHandle calls h, turning a panic into a *PanicError.
func safeHandle(ctx context.Context, h Handler, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return h.Handle(ctx, m)
}
