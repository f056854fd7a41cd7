package midstream

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Codec converts values of type T to entry fields and back.
//
// Encode appends v's fields to dst as name, value pairs (name, value, name,
// value, ...) and returns the extended slice, so callers can reuse buffers.
// Decode fills *v from an entry's fields; fields it does not know are
// ignored, so entries written by newer producers or other clients still
// decode. Errors are *EncodeError and *DecodeError.
type Codec[T any] interface {
	Encode(dst []string, v T) ([]string, error)
	Decode(fields map[string]string, v *T) error
}

// Reserved metadata field names. See the package doc.
const (
	FieldTraceparent = "traceparent" // W3C trace context
	FieldTracestate  = "tracestate"  // W3C trace context
	FieldBaggage     = "baggage"     // W3C baggage
	HeaderPrefix     = "header:"     // prefix of user header fields
	DeadLetterPrefix = "dlq:"        // prefix of dead-letter provenance fields
)

// IsReserved reports whether name is reserved for metadata.
func IsReserved(name string) bool {
	switch name {
	case FieldTraceparent, FieldTracestate, FieldBaggage:
		return true
	}
	return strings.HasPrefix(name, HeaderPrefix) || strings.HasPrefix(name, DeadLetterPrefix)
}

// CheckFieldName returns an error wrapping ErrReservedField if name is
// reserved, or ErrInvalidOption if it is empty.
func CheckFieldName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty field name", ErrInvalidOption)
	}
	if IsReserved(name) {
		return fmt.Errorf("%w: %q", ErrReservedField, name)
	}
	return nil
}

// DefaultCodec returns the codec midstream uses for T when none is given:
// MapCodec for map[string]string, FlatCodec for a struct or a pointer to one.
// Other types need an explicit codec (JSONCodec works for any JSON value).
func DefaultCodec[T any]() (Codec[T], error) {
	var zero T
	if c, ok := any(MapCodec{}).(Codec[T]); ok {
		return c, nil
	}
	t := reflect.TypeOf(&zero).Elem()
	if t.Kind() == reflect.Struct || (t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct) {
		return NewFlatCodec[T]()
	}
	return nil, &EncodeError{Type: t.String(), Err: fmt.Errorf("%w: no default codec for %s (use JSONCodec or a struct)", ErrUnsupportedType, t)}
}

// MapCodec passes a map[string]string through as entry fields. Encode writes
// fields in sorted name order so entries look the same in every tool; Decode
// copies every field except the reserved ones.
type MapCodec struct{}

// Encode appends m's fields in sorted name order.
func (MapCodec) Encode(dst []string, m map[string]string) ([]string, error) {
	if len(m) == 0 {
		return dst, &EncodeError{Type: "map[string]string", Err: ErrEmptyEntry}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if err := CheckFieldName(k); err != nil {
			return dst, &EncodeError{Type: "map[string]string", Field: k, Err: err}
		}
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		dst = append(dst, k, m[k])
	}
	return dst, nil
}

// Decode sets *m to a new map of the entry's non-reserved fields.
func (MapCodec) Decode(fields map[string]string, m *map[string]string) error {
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		if !IsReserved(k) {
			out[k] = v
		}
	}
	*m = out
	return nil
}

// DefaultJSONField is the field JSONCodec uses when Field is empty.
const DefaultJSONField = "data"

// JSONCodec stores a value as JSON in one field (Field, or DefaultJSONField
// when empty). Its zero value is ready to use.
type JSONCodec[T any] struct {
	Field string
}

func (c JSONCodec[T]) field() string {
	if c.Field == "" {
		return DefaultJSONField
	}
	return c.Field
}

// Encode appends the JSON field.
func (c JSONCodec[T]) Encode(dst []string, v T) ([]string, error) {
	name := c.field()
	if err := CheckFieldName(name); err != nil {
		return dst, &EncodeError{Type: typeName[T](), Field: name, Err: err}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, &EncodeError{Type: typeName[T](), Field: name, Err: err}
	}
	return append(dst, name, string(b)), nil
}

// Decode unmarshals the JSON field into *v.
func (c JSONCodec[T]) Decode(fields map[string]string, v *T) error {
	return c.DecodeFrom(Fields(fields), v)
}

// DecodeFrom is Decode reading the field from src.
func (c JSONCodec[T]) DecodeFrom(src FieldSource, v *T) error {
	name := c.field()
	s, ok := src.Lookup(name)
	if !ok {
		return &DecodeError{Type: typeName[T](), Field: name, Err: ErrMissingField}
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return &DecodeError{Type: typeName[T](), Field: name, Value: shorten(s), Err: err}
	}
	return nil
}

func typeName[T any]() string {
	return reflect.TypeFor[T]().String()
}
