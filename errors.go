package midstream

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by midstream wrap one of these; test for
// them with errors.Is.
var (
	// ErrInvalidOption reports a bad option or argument to a constructor.
	ErrInvalidOption = errors.New("midstream: invalid option")
	// ErrInvalidStream reports a stream (or other key) name Redis would
	// accept but that is almost certainly a bug: empty, or holding control
	// characters.
	ErrInvalidStream = errors.New("midstream: invalid stream name")
	// ErrInvalidID reports a malformed stream entry ID.
	ErrInvalidID = errors.New("midstream: invalid entry ID")
	// ErrIDNotIncreasing reports an explicit ID at or below the stream's
	// last ID, which Redis refuses.
	ErrIDNotIncreasing = errors.New("midstream: entry ID not greater than the stream's last ID")
	// ErrNoStream reports a write with NOMKSTREAM to a stream that does not exist.
	ErrNoStream = errors.New("midstream: stream does not exist")
	// ErrTooLarge reports an entry over the configured maximum size. It is
	// checked before anything is sent.
	ErrTooLarge = errors.New("midstream: entry too large")
	// ErrEmptyEntry reports an entry without fields, which Redis cannot store.
	ErrEmptyEntry = errors.New("midstream: entry has no fields")
	// ErrEncode is wrapped by every *EncodeError.
	ErrEncode = errors.New("midstream: encode")
	// ErrDecode is wrapped by every *DecodeError.
	ErrDecode = errors.New("midstream: decode")
	// ErrReservedField reports a user field named like one of the reserved
	// metadata fields (see the package doc).
	ErrReservedField = errors.New("midstream: reserved field name")
	// ErrUnsupportedType reports a Go type a codec cannot represent.
	ErrUnsupportedType = errors.New("midstream: unsupported type")
	// ErrMissingField reports a required field absent from an entry.
	ErrMissingField = errors.New("midstream: missing field")
	// ErrMisconfigured reports that Redis refuses the work in a way
	// retrying cannot fix: a missing ACL permission (NOPERM, also inside a
	// script; NOAUTH, WRONGPASS), a key holding another type (WRONGTYPE),
	// an unknown, renamed or disabled command. Long-running loops (a
	// Trimmer's Run, for one) retry such an error a bounded number of times
	// in case it was passing (an ACL being edited, a key being replaced),
	// then return an error wrapping both ErrMisconfigured and the Redis
	// error.
	ErrMisconfigured = errors.New("midstream: redis refuses the command (misconfigured)")
)

// EncodeError describes why a value could not be turned into entry fields.
// It wraps ErrEncode and the cause (for example ErrReservedField or
// ErrUnsupportedType).
type EncodeError struct {
	Type  string // Go type being encoded
	Field string // entry field name, or "" when the error is about the whole value
	Err   error  // the cause
}

func (e *EncodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("midstream: encode %s: %v", e.Type, e.Err)
	}
	return fmt.Sprintf("midstream: encode %s field %q: %v", e.Type, e.Field, e.Err)
}

// Unwrap returns ErrEncode and the cause.
func (e *EncodeError) Unwrap() []error { return []error{ErrEncode, e.Err} }

// DecodeError describes why entry fields could not be turned into a value.
// It wraps ErrDecode and the cause (for example a *strconv.NumError or
// ErrMissingField). A consumer treats it as a permanent failure.
type DecodeError struct {
	Type  string // Go type being decoded into
	Field string // entry field name, or "" when the error is about the whole entry
	Value string // the offending value, shortened to 64 bytes
	Err   error  // the cause
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("midstream: decode %s: %v", e.Type, e.Err)
	}
	return fmt.Sprintf("midstream: decode %s field %q (value %q): %v", e.Type, e.Field, e.Value, e.Err)
}

// Unwrap returns ErrDecode and the cause.
func (e *DecodeError) Unwrap() []error { return []error{ErrDecode, e.Err} }

// shorten cuts s to at most 64 bytes for error messages.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
