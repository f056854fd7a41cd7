package midstream

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// FlatCodec maps the exported fields of a struct (T is a struct or a pointer
// to one) to entry fields, one entry field per struct field, so entries stay
// readable by redis-cli and other clients.
//
// The `redis` struct tag names the entry field and takes options:
//
//	UserID    string    `redis:"userId"`               // field "userId"
//	Amount    float64   `redis:"amount"`               // "9.99"
//	At        time.Time `redis:"timestamp,unixms"`     // Unix milliseconds
//	Note      *string   `redis:"note"`                 // nil: field absent
//	Retries   int       `redis:"retries,omitempty"`    // 0: field absent
//	Tenant    string    `redis:"tenant,required"`      // absent: decode error
//	Internal  string    `redis:"-"`                    // never stored
//
// An exported field without a tag is stored under its Go name. Embedded
// structs are flattened. Supported field types: strings, booleans
// ("true"/"false"), signed and unsigned integers, floats (shortest decimal
// form, as JavaScript prints numbers), []byte (raw bytes), time.Time, any type
// implementing both encoding.TextMarshaler and encoding.TextUnmarshaler, and
// pointers to any of these (nil is an absent field). Any other type is an
// error from NewFlatCodec wrapping ErrUnsupportedType.
//
// time.Time options: "rfc3339" (RFC 3339 with nanoseconds, the default for
// encoding), "unixms" (milliseconds since the epoch, as JavaScript's
// Date.now()) and "unix" (seconds). Without an option, decoding accepts
// RFC 3339 text or an integer of milliseconds.
//
// Decode leaves struct fields whose entry field is absent unchanged, and
// ignores entry fields the struct does not name.
type FlatCodec[T any] struct {
	typ    reflect.Type // the struct type
	ptr    bool         // T is a pointer to the struct
	fields []flatField
}

type flatKind uint8

const (
	kString flatKind = iota
	kBool
	kInt
	kUint
	kFloat
	kBytes
	kTime
	kText
)

type timeFormat uint8

const (
	timeAuto timeFormat = iota
	timeRFC3339
	timeUnixMs
	timeUnix
)

type flatField struct {
	name      string
	index     []int
	kind      flatKind
	typ       reflect.Type // the field's type, or its element type for pointers
	ptr       bool
	omitEmpty bool
	required  bool
	timeFmt   timeFormat
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// NewFlatCodec builds the codec for T, checking every field once. It fails
// with an *EncodeError wrapping ErrUnsupportedType for a type it cannot
// represent, or ErrReservedField for a field named like reserved metadata.
func NewFlatCodec[T any]() (*FlatCodec[T], error) {
	t := reflect.TypeFor[T]()
	c := &FlatCodec[T]{typ: t}
	if t.Kind() == reflect.Pointer {
		c.typ, c.ptr = t.Elem(), true
	}
	if c.typ.Kind() != reflect.Struct {
		return nil, &EncodeError{Type: t.String(), Err: fmt.Errorf("%w: FlatCodec needs a struct or a pointer to one", ErrUnsupportedType)}
	}
	seen := make(map[string]bool)
	if err := c.addFields(c.typ, nil, seen); err != nil {
		return nil, err
	}
	if len(c.fields) == 0 {
		return nil, &EncodeError{Type: t.String(), Err: fmt.Errorf("%w: struct has no exported fields", ErrUnsupportedType)}
	}
	return c, nil
}

func (c *FlatCodec[T]) addFields(st reflect.Type, index []int, seen map[string]bool) error {
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		tag, hasTag := sf.Tag.Lookup("redis")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct && sf.Type != timeType {
			if err := c.addFields(sf.Type, idx, seen); err != nil {
				return err
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if !hasTag || name == "" {
			name = sf.Name
		}
		fail := func(err error) error {
			return &EncodeError{Type: c.typ.String(), Field: name, Err: err}
		}
		if IsReserved(name) {
			return fail(fmt.Errorf("%w: %q (struct field %s)", ErrReservedField, name, sf.Name))
		}
		if seen[name] {
			return fail(fmt.Errorf("%w: two struct fields are stored as %q", ErrUnsupportedType, name))
		}
		seen[name] = true
		f := flatField{name: name, index: idx, typ: sf.Type}
		if f.typ.Kind() == reflect.Pointer {
			f.typ, f.ptr = f.typ.Elem(), true
		}
		kind, ok := kindOf(f.typ)
		if !ok {
			return fail(fmt.Errorf("%w: struct field %s has type %s", ErrUnsupportedType, sf.Name, sf.Type))
		}
		f.kind = kind
		for opt := range strings.SplitSeq(opts, ",") {
			switch opt {
			case "":
			case "omitempty":
				f.omitEmpty = true
			case "required":
				f.required = true
			case "rfc3339", "unixms", "unix":
				if kind != kTime {
					return fail(fmt.Errorf("%w: tag option %q on non-time field %s", ErrUnsupportedType, opt, sf.Name))
				}
				f.timeFmt = map[string]timeFormat{"rfc3339": timeRFC3339, "unixms": timeUnixMs, "unix": timeUnix}[opt]
			default:
				return fail(fmt.Errorf("%w: unknown tag option %q on field %s", ErrUnsupportedType, opt, sf.Name))
			}
		}
		c.fields = append(c.fields, f)
	}
	return nil
}

func kindOf(t reflect.Type) (flatKind, bool) {
	if t == timeType {
		return kTime, true
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(textUnmarshaler) && (t.Implements(textMarshaler) || pt.Implements(textMarshaler)) {
		return kText, true
	}
	switch t.Kind() {
	case reflect.String:
		return kString, true
	case reflect.Bool:
		return kBool, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kInt, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kUint, true
	case reflect.Float32, reflect.Float64:
		return kFloat, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return kBytes, true
		}
	}
	return 0, false
}

// Encode appends v's fields in struct order.
func (c *FlatCodec[T]) Encode(dst []string, v T) ([]string, error) {
	rv := reflect.ValueOf(&v).Elem()
	if c.ptr {
		if rv.IsNil() {
			return dst, &EncodeError{Type: rv.Type().String(), Err: fmt.Errorf("%w: nil pointer", ErrUnsupportedType)}
		}
		rv = rv.Elem()
	}
	start := len(dst)
	for i := range c.fields {
		f := &c.fields[i]
		fv := rv.FieldByIndex(f.index)
		if f.ptr {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		} else if f.omitEmpty && fv.IsZero() {
			continue
		}
		s, err := f.format(fv)
		if err != nil {
			return dst[:start], &EncodeError{Type: c.typ.String(), Field: f.name, Err: err}
		}
		dst = append(dst, f.name, s)
	}
	if len(dst) == start {
		return dst, &EncodeError{Type: c.typ.String(), Err: ErrEmptyEntry}
	}
	return dst, nil
}

func (f *flatField) format(v reflect.Value) (string, error) {
	switch f.kind {
	case kString:
		return v.String(), nil
	case kBool:
		return strconv.FormatBool(v.Bool()), nil
	case kInt:
		return strconv.FormatInt(v.Int(), 10), nil
	case kUint:
		return strconv.FormatUint(v.Uint(), 10), nil
	case kFloat:
		return FormatFloat(v.Float(), f.typ.Bits()), nil
	case kBytes:
		return string(v.Bytes()), nil
	case kTime:
		t := v.Interface().(time.Time)
		switch f.timeFmt {
		case timeUnixMs:
			return strconv.FormatInt(t.UnixMilli(), 10), nil
		case timeUnix:
			return strconv.FormatInt(t.Unix(), 10), nil
		}
		return t.Format(time.RFC3339Nano), nil
	case kText:
		var m encoding.TextMarshaler
		if v.CanAddr() && v.Addr().Type().Implements(textMarshaler) {
			m = v.Addr().Interface().(encoding.TextMarshaler)
		} else {
			m = v.Interface().(encoding.TextMarshaler)
		}
		b, err := m.MarshalText()
		return string(b), err
	}
	panic("midstream: unreachable flat kind")
}

// FormatFloat formats f as JavaScript's String(Number(f)) does: plain
// decimals for magnitudes from 1e-6 up to 1e21, exponent form outside
// ("1e-7", "1.5e+21"), always the shortest text that reads back as f (for
// bits 32, as a float32); "0" for both zeros, "NaN", "Infinity" and
// "-Infinity". strconv.ParseFloat, and so the flat codec's decoder, reads
// every one of these back.
func FormatFloat(f float64, bits int) string {
	switch {
	case f == 0:
		return "0"
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	s := strconv.FormatFloat(f, 'e', -1, bits) // "1.5e-07": JavaScript drops the exponent's leading zeros
	i := strings.IndexByte(s, 'e')
	exp := strings.TrimLeft(s[i+2:], "0")
	return s[:i+2] + exp
}

// Decode sets the fields of *v named by the entry's fields.
func (c *FlatCodec[T]) Decode(fields map[string]string, v *T) error {
	return c.DecodeFrom(Fields(fields), v)
}

// DecodeFrom is Decode reading the fields from src.
func (c *FlatCodec[T]) DecodeFrom(src FieldSource, v *T) error {
	rv := reflect.ValueOf(v).Elem()
	if c.ptr {
		if rv.IsNil() {
			rv.Set(reflect.New(c.typ))
		}
		rv = rv.Elem()
	}
	for i := range c.fields {
		f := &c.fields[i]
		s, ok := src.Lookup(f.name)
		if !ok {
			if f.required {
				return &DecodeError{Type: c.typ.String(), Field: f.name, Err: ErrMissingField}
			}
			continue
		}
		fv := rv.FieldByIndex(f.index)
		target := fv
		if f.ptr {
			target = reflect.New(f.typ).Elem()
		}
		if err := f.parse(s, target); err != nil {
			return &DecodeError{Type: c.typ.String(), Field: f.name, Value: shorten(s), Err: err}
		}
		if f.ptr {
			fv.Set(target.Addr())
		}
	}
	return nil
}

func (f *flatField) parse(s string, v reflect.Value) error {
	switch f.kind {
	case kString:
		v.SetString(s)
	case kBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case kInt:
		n, err := strconv.ParseInt(s, 10, f.typ.Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case kUint:
		n, err := strconv.ParseUint(s, 10, f.typ.Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case kFloat:
		x, err := strconv.ParseFloat(s, f.typ.Bits())
		if err != nil {
			return err
		}
		v.SetFloat(x)
	case kBytes:
		v.SetBytes([]byte(s))
	case kTime:
		t, err := parseTime(s, f.timeFmt)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(t))
	case kText:
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	return nil
}

func parseTime(s string, format timeFormat) (time.Time, error) {
	if format == timeAuto {
		format = timeRFC3339
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			format = timeUnixMs
		}
	}
	switch format {
	case timeUnixMs, timeUnix:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		if format == timeUnix {
			return time.Unix(n, 0).UTC(), nil
		}
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
