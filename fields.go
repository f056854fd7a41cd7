package midstream

import "fmt"

// FieldSource gives an entry's fields by name, without the copy a
// map[string]string needs: consumer.Message is one, over the reply go-redis
// read. Fields is the FieldSource of a map.
type FieldSource interface {
	// Lookup returns the value of the field name and whether it is present.
	Lookup(name string) (string, bool)
}

// Fields is a FieldSource over a map of field values.
type Fields map[string]string

// Lookup returns f[name].
func (f Fields) Lookup(name string) (string, bool) {
	v, ok := f[name]
	return v, ok
}

// SourceDecoder is implemented by codecs that decode straight from a
// FieldSource: the consumer then hands them the entry as go-redis read it,
// and no map of its fields is built. FlatCodec and JSONCodec implement it;
// DecodeFrom(Fields(m), v) does what Decode(m, v) does.
type SourceDecoder[T any] interface {
	DecodeFrom(src FieldSource, v *T) error
}

// Values is an entry's fields as go-redis returns them (redis.XMessage's
// Values: every value a string). It is a FieldSource read in place.
type Values map[string]any

// Lookup returns the value of the field name as a string (see ValueString)
// and whether it is present.
func (v Values) Lookup(name string) (string, bool) {
	x, ok := v[name]
	if !ok {
		return "", false
	}
	return ValueString(x), true
}

// Map returns a new map of the fields.
func (v Values) Map() map[string]string {
	out := make(map[string]string, len(v))
	for k, x := range v {
		out[k] = ValueString(x)
	}
	return out
}

// Size is what the producer's size limit counts: the lengths of the field
// names and values.
func (v Values) Size() int {
	n := 0
	for k, x := range v {
		n += len(k) + len(ValueString(x))
	}
	return n
}

// ValueString returns a value go-redis read as a string: go-redis gives
// strings for stream fields, but a hook or another client library may not.
// nil is "", []byte its bytes, anything else fmt.Sprint's form.
func ValueString(x any) string {
	switch x := x.(type) {
	case string:
		return x
	case nil:
		return ""
	case []byte:
		return string(x)
	}
	return fmt.Sprint(x)
}

// EntryOf returns the Entry of stream with id and go-redis's values: the
// conversion every package that reads entries shares.
func EntryOf(stream, id string, values map[string]any) Entry {
	return Entry{Stream: stream, ID: id, Fields: Values(values).Map()}
}
