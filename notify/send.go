package notify

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/midstream-go/midstream"
)

// SendOption adds to one Send: fields beyond the content, an idempotency
// key.
type SendOption func(*send)

type send struct {
	fields map[string]string
	idem   string
	err    error
}

// WithFields adds fields to the notification, beside content, read and
// createdAt (which they must not name, nor markedReadId or readAt). List
// returns them in Notification.Fields.
func WithFields(fields map[string]string) SendOption {
	return func(s *send) {
		for k, v := range fields {
			s.set(k, v)
		}
	}
}

// WithValue adds v, encoded by codec (midstream.NewFlatCodec for flat
// fields, midstream.JSONCodec for one field), as fields of the
// notification, under the rules of WithFields. Decode them from
// Notification.Fields with the same codec.
func WithValue[T any](codec midstream.Codec[T], v T) SendOption {
	return func(s *send) {
		if codec == nil {
			s.fail(fmt.Errorf("%w: nil codec", midstream.ErrInvalidOption))
			return
		}
		pairs, err := codec.Encode(nil, v)
		if err != nil {
			s.fail(err)
			return
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			s.set(pairs[i], pairs[i+1])
		}
	}
}

// WithIdempotencyKey makes Send idempotent under key (1 to
// MaxIdempotencyKeyLen bytes): a Send with a key already used for the same
// user within the idempotency window (WithIdempotencyTTL) adds and
// publishes nothing and returns the first Send's ID. The key is stored
// with the entry, atomically, beside the user's stream.
func WithIdempotencyKey(key string) SendOption {
	return func(s *send) {
		if key == "" || len(key) > MaxIdempotencyKeyLen {
			s.fail(fmt.Errorf("%w: idempotency key of %d bytes not within [1, %d]", midstream.ErrInvalidOption, len(key), MaxIdempotencyKeyLen))
			return
		}
		s.idem = key
	}
}

func (s *send) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *send) set(k, v string) {
	switch k {
	case FieldContent, FieldRead, FieldCreatedAt, FieldMarkedReadID, FieldReadAt:
		s.fail(fmt.Errorf("%w: field %q is set by Send", midstream.ErrInvalidOption, k))
		return
	}
	if err := midstream.CheckFieldName(k); err != nil {
		s.fail(err)
		return
	}
	if s.fields == nil {
		s.fields = map[string]string{}
	}
	s.fields[k] = v
}

// Send adds a notification for user ({content, read: "false", createdAt},
// and the fields of WithFields or WithValue) and publishes {"id": ...,
// "content": ...} on its channel, atomically, and returns its ID. With
// WithMaxLen the stream is trimmed on the way.
func (n *Notifier) Send(ctx context.Context, user, content string, opts ...SendOption) (string, error) {
	ks, err := n.keys(user)
	if err != nil {
		return "", err
	}
	var s send
	for _, o := range opts {
		if o == nil {
			return "", fmt.Errorf("%w: nil send option", midstream.ErrInvalidOption)
		}
		o(&s)
	}
	if s.err != nil {
		return "", s.err
	}
	args := []any{n.Channel(user), n.cfg.maxLen, n.cfg.idemTTL.Milliseconds(), content,
		FieldContent, content, FieldRead, "false", FieldCreatedAt, nowMillis()}
	for _, k := range slices.Sorted(maps.Keys(s.fields)) {
		args = append(args, k, s.fields[k])
	}
	if s.idem != "" {
		ks = append(ks, n.idemKey(user, s.idem))
	}
	ctx, span := n.tel.Start(ctx, "send", n.cfg.prefix, true)
	id, err := sendScript.Run(ctx, n.client, ks, args...).Text()
	if err != nil {
		err = fmt.Errorf("notify: send to %s: %w", user, err)
	} else {
		n.tel.Published(ctx, n.cfg.prefix, 1)
	}
	n.tel.End(span, err)
	return id, err
}
