package midstream

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Entry is one stream entry as read from Redis.
type Entry struct {
	Stream string            // the stream's key
	ID     string            // the entry ID, "<ms>-<seq>"
	Fields map[string]string // every field, reserved ones included
}

// Header returns the value of the user header name (stored in the field
// "header:"+name), and whether it is present.
func (e Entry) Header(name string) (string, bool) {
	v, ok := e.Fields[HeaderPrefix+name]
	return v, ok
}

// Headers returns the entry's user headers by name, or nil if it has none.
func (e Entry) Headers() map[string]string {
	var h map[string]string
	for k, v := range e.Fields {
		if name, ok := strings.CutPrefix(k, HeaderPrefix); ok {
			if h == nil {
				h = make(map[string]string)
			}
			h[name] = v
		}
	}
	return h
}

// ID is a parsed stream entry ID: milliseconds since the Unix epoch and a
// sequence number within that millisecond. IDs order entries in a stream.
type ID struct {
	Ms  uint64
	Seq uint64
}

// ParseID parses "<ms>-<seq>" or "<ms>" (sequence 0). It rejects the special
// IDs "*", "$", ">", "-" and "+".
func ParseID(s string) (ID, error) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
		}
	}
	return ID{Ms: ms, Seq: seq}, nil
}

// IDFromTime returns the first ID of the millisecond holding t.
func IDFromTime(t time.Time) ID {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return ID{Ms: uint64(ms)}
}

// String formats id as "<ms>-<seq>".
func (id ID) String() string {
	b := make([]byte, 0, 41)
	b = strconv.AppendUint(b, id.Ms, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, id.Seq, 10)
	return string(b)
}

// Time returns the time in the ID's millisecond part: for IDs that Redis
// generated, when the entry was added.
func (id ID) Time() time.Time { return time.UnixMilli(int64(id.Ms)) }

// Compare returns -1, 0 or +1 as id is before, equal to or after o.
func (id ID) Compare(o ID) int {
	switch {
	case id.Ms < o.Ms:
		return -1
	case id.Ms > o.Ms:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// Next returns the smallest ID after id.
func (id ID) Next() ID {
	if id.Seq == ^uint64(0) {
		return ID{Ms: id.Ms + 1}
	}
	return ID{Ms: id.Ms, Seq: id.Seq + 1}
}

// Prev returns the largest ID before id (or the zero ID for the zero ID).
func (id ID) Prev() ID {
	switch {
	case id.Seq > 0:
		return ID{Ms: id.Ms, Seq: id.Seq - 1}
	case id.Ms > 0:
		return ID{Ms: id.Ms - 1, Seq: ^uint64(0)}
	}
	return id
}

// IsZero reports whether id is 0-0.
func (id ID) IsZero() bool { return id == ID{} }

// CheckStream returns an error wrapping ErrInvalidStream when name is empty or
// holds ASCII control characters. Redis keys may hold any bytes; these are
// refused because they are almost always a bug (an unset variable, a stray
// newline) and make keys unreadable in redis-cli.
func CheckStream(name string) error {
	if problem := nameProblem(name); problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidStream, problem)
	}
	return nil
}

// CheckName applies the rules of CheckStream to the other names midstream
// sends to Redis (consumer groups, consumer names, pub/sub channels, key
// prefixes): it returns an error wrapping ErrInvalidOption when name is
// empty or holds ASCII control characters. what says which name it is in
// the message ("group", "consumer name").
func CheckName(what, name string) error {
	if problem := nameProblem(name); problem != "" {
		return fmt.Errorf("%w: %s: %s", ErrInvalidOption, what, problem)
	}
	return nil
}

// nameProblem says what is wrong with a stream or other name, or "".
func nameProblem(name string) string {
	if name == "" {
		return "empty"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return fmt.Sprintf("%q holds control character %#x", name, c)
		}
	}
	return ""
}
