package midstream_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/midstream-go/midstream"
)

// Activity is the article's flat layout, as node-redis writes it.
type Activity struct {
	UserID    string    `redis:"userId"`
	Action    string    `redis:"action"`
	Amount    float64   `redis:"amount"`
	Timestamp time.Time `redis:"timestamp,unixms"`
}

func pairsToMap(t *testing.T, pairs []string) map[string]string {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("odd number of pair elements: %q", pairs)
	}
	m := make(map[string]string)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

func TestFlatCodecDecodesArticleLayout(t *testing.T) {
	c, err := midstream.NewFlatCodec[Activity]()
	if err != nil {
		t.Fatal(err)
	}
	// Exactly what the article's XADD stores: every value a string.
	fields := map[string]string{"userId": "123", "action": "purchase", "amount": "9.99", "timestamp": "1710761234567"}
	var a Activity
	if err := c.Decode(fields, &a); err != nil {
		t.Fatal(err)
	}
	want := Activity{UserID: "123", Action: "purchase", Amount: 9.99, Timestamp: time.UnixMilli(1710761234567).UTC()}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("decoded %+v, want %+v", a, want)
	}
	// And it encodes back to the same fields, in struct order.
	pairs, err := c.Encode(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	wantPairs := []string{"userId", "123", "action", "purchase", "amount", "9.99", "timestamp", "1710761234567"}
	if !reflect.DeepEqual(pairs, wantPairs) {
		t.Fatalf("encoded %q, want %q", pairs, wantPairs)
	}
}

type Base struct {
	Tenant string `redis:"tenant,required"`
}

type everything struct {
	Base
	S      string            `redis:"s"`
	B      bool              `redis:"b"`
	I      int               `redis:"i"`
	I8     int8              `redis:"i8"`
	U64    uint64            `redis:"u64"`
	F32    float32           `redis:"f32"`
	F64    float64           `redis:"f64"`
	Raw    []byte            `redis:"raw"`
	T      time.Time         `redis:"t"`
	TUnix  time.Time         `redis:"tu,unix"`
	Addr   netip.Addr        `redis:"addr"` // TextMarshaler
	PS     *string           `redis:"ps"`
	PI     *int64            `redis:"pi"`
	PT     *time.Time        `redis:"pt,unixms"`
	Omit   int               `redis:"omit,omitempty"`
	Skip   string            `redis:"-"`
	NoTag  string            // stored as "NoTag"
	hidden string            // unexported: never stored
	Kind   kind              `redis:"kind"` // named string type
	Dur    time.Duration     `redis:"dur"`
	_      struct{}          `redis:"blank"`
	Extra  map[string]string `redis:"-"`
}

type kind string

func TestFlatCodecRoundTrip(t *testing.T) {
	c, err := midstream.NewFlatCodec[everything]()
	if err != nil {
		t.Fatal(err)
	}
	s, i, ts := "x", int64(-7), time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	in := everything{
		Base: Base{Tenant: "acme"}, S: "héllo\nworld", B: true, I: -42, I8: 127, U64: math.MaxUint64,
		F32: 1.5, F64: 0.1, Raw: []byte{0, 1, 255}, T: time.Date(2026, 11, 26, 1, 2, 3, 456789, time.UTC),
		TUnix: time.Unix(1700000000, 0).UTC(), Addr: netip.MustParseAddr("127.0.0.1"),
		PS: &s, PI: &i, PT: &ts, Skip: "skip", NoTag: "nt", Kind: "k", Dur: 3 * time.Second,
	}
	in.hidden = "h"
	pairs, err := c.Encode(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	got := pairsToMap(t, pairs)
	want := map[string]string{
		"tenant": "acme", "s": "héllo\nworld", "b": "true", "i": "-42", "i8": "127",
		"u64": "18446744073709551615", "f32": "1.5", "f64": "0.1", "raw": "\x00\x01\xff",
		"t": "2026-11-26T01:02:03.000456789Z", "tu": "1700000000", "addr": "127.0.0.1",
		"ps": "x", "pi": "-7", "pt": strconv.FormatInt(ts.UnixMilli(), 10), "NoTag": "nt",
		"kind": "k", "dur": "3000000000",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("encoded\n%q\nwant\n%q", got, want)
	}
	var out everything
	if err := c.Decode(got, &out); err != nil {
		t.Fatal(err)
	}
	in.Skip, in.hidden = "", ""
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip\n%+v\nwant\n%+v", out, in)
	}
}

func TestFlatCodecPointerToStruct(t *testing.T) {
	c, err := midstream.NewFlatCodec[*Activity]()
	if err != nil {
		t.Fatal(err)
	}
	var a *Activity
	if err := c.Decode(map[string]string{"userId": "u1"}, &a); err != nil {
		t.Fatal(err)
	}
	if a == nil || a.UserID != "u1" {
		t.Fatalf("decoded %+v", a)
	}
	if _, err := c.Encode(nil, nil); !errors.Is(err, midstream.ErrEncode) {
		t.Fatalf("encoding a nil pointer: %v, want ErrEncode", err)
	}
}

func TestFlatCodecFloatFormat(t *testing.T) {
	tenth := 0.1 // a variable: constant arithmetic would be exact
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{9.99, "9.99"}, {0, "0"}, {1234567, "1234567"}, {-0.5, "-0.5"}, {1e21, "1e+21"},
		{1e-7, "1e-7"}, {123456789012345680000, "123456789012345680000"}, {math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"}, {math.Copysign(0, -1), "0"}, {1.5e-7, "1.5e-7"}, {-2.5e+300, "-2.5e+300"},
		{1e-6, "0.000001"}, {math.Nextafter(1e-6, 0), "9.999999999999997e-7"}, {tenth + 0.2, "0.30000000000000004"},
		{5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"}, {1e20, "100000000000000000000"},
	} {
		if got := midstream.FormatFloat(tc.in, 64); got != tc.want {
			t.Errorf("FormatFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := strconv.ParseFloat(midstream.FormatFloat(tc.in, 64), 64); err != nil || back != tc.in {
			t.Errorf("FormatFloat(%v) does not read back: %v %v", tc.in, back, err)
		}
	}
}

// TestFlatCodecFloatRoundTrip checks, over random bit patterns of both
// widths, that every float is written in JavaScript's number grammar and
// decodes to the same value through the codec.
func TestFlatCodecFloatRoundTrip(t *testing.T) {
	type nums struct {
		F64 float64 `redis:"f64"`
		F32 float32 `redis:"f32"`
	}
	c, err := midstream.NewFlatCodec[nums]()
	if err != nil {
		t.Fatal(err)
	}
	js := regexp.MustCompile(`^(NaN|-?Infinity|0|-?(0\.\d*[1-9]|[1-9]\d*(\.\d*[1-9])?)|-?[1-9](\.\d*[1-9])?e[+-][1-9]\d*)$`)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50_000 {
		in := nums{F64: math.Float64frombits(r.Uint64()), F32: math.Float32frombits(r.Uint32())}
		if i%4 == 0 { // also plain magnitudes, where the decimal form is used
			in.F64 = (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(30)-8))
		}
		pairs, err := c.Encode(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for j := 0; j+1 < len(pairs); j += 2 {
			fields[pairs[j]] = pairs[j+1]
		}
		for _, name := range []string{"f64", "f32"} {
			if !js.MatchString(fields[name]) {
				t.Fatalf("%s %q is not in JavaScript's number format", name, fields[name])
			}
		}
		var out nums
		if err := c.Decode(fields, &out); err != nil {
			t.Fatalf("decode %v: %v", fields, err)
		}
		same64 := out.F64 == in.F64 || math.IsNaN(in.F64) && math.IsNaN(out.F64)
		same32 := out.F32 == in.F32 || in.F32 != in.F32 && out.F32 != out.F32
		if !same64 || !same32 {
			t.Fatalf("%v -> %v -> %v", in, fields, out)
		}
	}
	// What JavaScript and redis-cli write decodes too.
	for s, want := range map[string]float64{"1e-7": 1e-7, "1E+21": 1e21, "Infinity": math.Inf(1), "-Infinity": math.Inf(-1), "inf": math.Inf(1), "-0": 0, ".5": 0.5, "5.": 5} {
		var out nums
		if err := c.Decode(map[string]string{"f64": s}, &out); err != nil || out.F64 != want {
			t.Errorf("decode %q = %v, %v; want %v", s, out.F64, err, want)
		}
	}
}

func TestFlatCodecConstructionErrors(t *testing.T) {
	type withChan struct{ C chan int }
	type withMap struct {
		M map[string]int `redis:"m"`
	}
	type withNested struct{ N struct{ X int } }
	type withSlice struct{ S []string }
	type reserved struct {
		T string `redis:"traceparent"`
	}
	type reservedHeader struct {
		H string `redis:"header:x"`
	}
	type dup struct {
		A string `redis:"x"`
		B string `redis:"x"`
	}
	type badOpt struct {
		A string `redis:"a,unixms"`
	}
	type unknownOpt struct {
		A string `redis:"a,sometimes"`
	}
	type empty struct{ a int }
	_ = empty{}.a
	type embeddedPtr struct{ *Base }
	for _, tc := range []struct {
		name string
		new  func() error
		want error
	}{
		{"chan", func() error { _, err := midstream.NewFlatCodec[withChan](); return err }, midstream.ErrUnsupportedType},
		{"map", func() error { _, err := midstream.NewFlatCodec[withMap](); return err }, midstream.ErrUnsupportedType},
		{"nested struct", func() error { _, err := midstream.NewFlatCodec[withNested](); return err }, midstream.ErrUnsupportedType},
		{"slice", func() error { _, err := midstream.NewFlatCodec[withSlice](); return err }, midstream.ErrUnsupportedType},
		{"reserved", func() error { _, err := midstream.NewFlatCodec[reserved](); return err }, midstream.ErrReservedField},
		{"reserved header", func() error { _, err := midstream.NewFlatCodec[reservedHeader](); return err }, midstream.ErrReservedField},
		{"duplicate", func() error { _, err := midstream.NewFlatCodec[dup](); return err }, midstream.ErrUnsupportedType},
		{"time option on string", func() error { _, err := midstream.NewFlatCodec[badOpt](); return err }, midstream.ErrUnsupportedType},
		{"unknown option", func() error { _, err := midstream.NewFlatCodec[unknownOpt](); return err }, midstream.ErrUnsupportedType},
		{"no fields", func() error { _, err := midstream.NewFlatCodec[empty](); return err }, midstream.ErrUnsupportedType},
		{"embedded pointer", func() error { _, err := midstream.NewFlatCodec[embeddedPtr](); return err }, midstream.ErrUnsupportedType},
		{"not a struct", func() error { _, err := midstream.NewFlatCodec[int](); return err }, midstream.ErrUnsupportedType},
		{"default for int", func() error { _, err := midstream.DefaultCodec[int](); return err }, midstream.ErrUnsupportedType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.new()
			if !errors.Is(err, tc.want) || !errors.Is(err, midstream.ErrEncode) {
				t.Fatalf("got %v, want an error wrapping %v and ErrEncode", err, tc.want)
			}
			var ee *midstream.EncodeError
			if !errors.As(err, &ee) {
				t.Fatalf("got %T, want *EncodeError", err)
			}
		})
	}
}

func TestFlatCodecDecodeErrors(t *testing.T) {
	c, err := midstream.NewFlatCodec[everything]()
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]string{"tenant": "acme"}
	for _, tc := range []struct {
		field, value string
		want         error
	}{
		{"i", "9.99", strconv.ErrSyntax},
		{"i8", "300", strconv.ErrRange},
		{"u64", "-1", strconv.ErrSyntax},
		{"b", "yes", strconv.ErrSyntax},
		{"f64", "", strconv.ErrSyntax},
		{"t", "yesterday", nil},
		{"tu", "1.5", strconv.ErrSyntax},
		{"addr", "not-an-ip", nil},
		{"pi", "x", strconv.ErrSyntax},
	} {
		t.Run(tc.field, func(t *testing.T) {
			fields := map[string]string{tc.field: tc.value}
			for k, v := range ok {
				fields[k] = v
			}
			var v everything
			err := c.Decode(fields, &v)
			var de *midstream.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, midstream.ErrDecode) {
				t.Fatalf("got %v, want *DecodeError wrapping ErrDecode", err)
			}
			if de.Field != tc.field || de.Value != tc.value {
				t.Fatalf("error names field %q value %q, want %q %q", de.Field, de.Value, tc.field, tc.value)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want it to wrap %v", err, tc.want)
			}
		})
	}
	t.Run("required", func(t *testing.T) {
		var v everything
		err := c.Decode(map[string]string{"s": "x"}, &v)
		if !errors.Is(err, midstream.ErrMissingField) {
			t.Fatalf("got %v, want ErrMissingField", err)
		}
	})
}

func TestFlatCodecTimeFormats(t *testing.T) {
	type auto struct {
		T time.Time `redis:"t"`
	}
	c, err := midstream.NewFlatCodec[auto]()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]time.Time{
		"1710761234567":             time.UnixMilli(1710761234567),
		"2024-03-18T11:27:14.567Z":  time.UnixMilli(1710761234567),
		"2024-03-18T12:27:14+01:00": time.Unix(1710761234, 0),
	} {
		var v auto
		if err := c.Decode(map[string]string{"t": in}, &v); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !v.T.Equal(want) {
			t.Errorf("%q decoded to %v, want %v", in, v.T, want)
		}
	}
}

func TestFlatCodecEncodeOmissions(t *testing.T) {
	type opt struct {
		P *string `redis:"p"`
		O int     `redis:"o,omitempty"`
	}
	c, err := midstream.NewFlatCodec[opt]()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encode(nil, opt{}); !errors.Is(err, midstream.ErrEmptyEntry) {
		t.Fatalf("all fields omitted: %v, want ErrEmptyEntry", err)
	}
	pairs, err := c.Encode([]string{"keep", "me"}, opt{O: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"keep", "me", "o", "3"}; !reflect.DeepEqual(pairs, want) {
		t.Fatalf("got %q, want %q", pairs, want)
	}
}

func TestMapCodec(t *testing.T) {
	c, err := midstream.DefaultCodec[map[string]string]()
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := c.Encode(nil, map[string]string{"b": "2", "a": "1", "c": ""})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "1", "b", "2", "c", ""}; !reflect.DeepEqual(pairs, want) {
		t.Fatalf("got %q, want %q", pairs, want)
	}
	for _, tc := range []struct {
		in   map[string]string
		want error
	}{
		{nil, midstream.ErrEmptyEntry},
		{map[string]string{"tracestate": "x"}, midstream.ErrReservedField},
		{map[string]string{"header:a": "x"}, midstream.ErrReservedField},
		{map[string]string{"": "x"}, midstream.ErrInvalidOption},
	} {
		if _, err := c.Encode(nil, tc.in); !errors.Is(err, tc.want) || !errors.Is(err, midstream.ErrEncode) {
			t.Errorf("Encode(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
	var m map[string]string
	if err := c.Decode(map[string]string{"a": "1", "traceparent": "00-x", "header:h": "v"}, &m); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "1"}; !reflect.DeepEqual(m, want) {
		t.Fatalf("decoded %q, want %q", m, want)
	}
}

func TestJSONCodec(t *testing.T) {
	type order struct {
		ID    int      `json:"id"`
		Items []string `json:"items"`
	}
	var c midstream.JSONCodec[order]
	pairs, err := c.Encode(nil, order{ID: 1, Items: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"data", `{"id":1,"items":["a"]}`}; !reflect.DeepEqual(pairs, want) {
		t.Fatalf("got %q, want %q", pairs, want)
	}
	var o order
	if err := c.Decode(map[string]string{"data": pairs[1]}, &o); err != nil || o.ID != 1 {
		t.Fatalf("decoded %+v, %v", o, err)
	}
	if err := c.Decode(map[string]string{"other": "{}"}, &o); !errors.Is(err, midstream.ErrMissingField) {
		t.Fatalf("missing field: %v", err)
	}
	if err := c.Decode(map[string]string{"data": "{"}, &o); !errors.Is(err, midstream.ErrDecode) {
		t.Fatalf("bad JSON: %v", err)
	}
	bad := midstream.JSONCodec[order]{Field: "baggage"}
	if _, err := bad.Encode(nil, o); !errors.Is(err, midstream.ErrReservedField) {
		t.Fatalf("reserved JSON field: %v", err)
	}
	fn := midstream.JSONCodec[func()]{}
	if _, err := fn.Encode(nil, func() {}); !errors.Is(err, midstream.ErrEncode) {
		t.Fatalf("unencodable JSON value: %v", err)
	}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want midstream.ID
		err  bool
	}{
		{"1710761234567-0", midstream.ID{Ms: 1710761234567}, false},
		{"5-18446744073709551615", midstream.ID{Ms: 5, Seq: math.MaxUint64}, false},
		{"42", midstream.ID{Ms: 42}, false},
		{"*", midstream.ID{}, true},
		{"1-*", midstream.ID{}, true},
		{"-1", midstream.ID{}, true},
		{"", midstream.ID{}, true},
		{"1-2-3", midstream.ID{}, true},
	} {
		got, err := midstream.ParseID(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseID(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, midstream.ErrInvalidID) {
			t.Errorf("ParseID(%q) error %v does not wrap ErrInvalidID", tc.in, err)
		}
	}
	a, b := midstream.ID{Ms: 1, Seq: math.MaxUint64}, midstream.ID{Ms: 2}
	if a.Next() != b || b.Prev() != a || a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Fatal("Next/Prev/Compare disagree")
	}
	if got := (midstream.ID{Ms: 7, Seq: 3}).String(); got != "7-3" {
		t.Fatalf("String() = %q", got)
	}
}

func TestCheckStream(t *testing.T) {
	for name, ok := range map[string]bool{"orders": true, "{orders}:dlq": true, "a b": true, "": false, "x\n": false, "a\x00b": false} {
		err := midstream.CheckStream(name)
		if (err == nil) != ok || (err != nil && !errors.Is(err, midstream.ErrInvalidStream)) {
			t.Errorf("CheckStream(%q) = %v", name, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"billing": true, "worker-1": true, "a b": true, "": false, "x\n": false, "a\x00b": false, "a\x7fb": false} {
		err := midstream.CheckName("group", name)
		if (err == nil) != ok || (err != nil && (!errors.Is(err, midstream.ErrInvalidOption) || errors.Is(err, midstream.ErrInvalidStream))) {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "group") {
			t.Errorf("CheckName(%q) = %v, does not say which name", name, err)
		}
	}
}

func TestEntryHeaders(t *testing.T) {
	e := midstream.Entry{Fields: map[string]string{"a": "1", "header:tenant": "acme"}}
	if v, ok := e.Header("tenant"); !ok || v != "acme" {
		t.Fatalf("Header = %q %v", v, ok)
	}
	if h := e.Headers(); !reflect.DeepEqual(h, map[string]string{"tenant": "acme"}) {
		t.Fatalf("Headers = %q", h)
	}
}

func TestDecodeFromMatchesDecode(t *testing.T) {
	type ev struct {
		ID   int     `redis:"id"`
		Name string  `redis:"name"`
		Opt  *string `redis:"opt"`
	}
	flat, err := midstream.NewFlatCodec[ev]()
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{"id": "7", "name": "x", "opt": "y", "other": "z"}
	values := midstream.Values{"id": "7", "name": "x", "opt": "y", "other": "z"}
	var a, b ev
	if err := flat.Decode(fields, &a); err != nil {
		t.Fatal(err)
	}
	if err := flat.DecodeFrom(values, &b); err != nil {
		t.Fatal(err)
	}
	if a.ID != 7 || a.Name != "x" || a.Opt == nil || *a.Opt != "y" || b.ID != a.ID || b.Name != a.Name || b.Opt == nil || *b.Opt != *a.Opt {
		t.Errorf("Decode %+v, DecodeFrom %+v", a, b)
	}
	if err := flat.DecodeFrom(midstream.Values{"id": "x"}, &b); !errors.Is(err, midstream.ErrDecode) {
		t.Errorf("DecodeFrom of a bad number: %v, want ErrDecode", err)
	}
	var j map[string]int
	jc := midstream.JSONCodec[map[string]int]{}
	if err := jc.DecodeFrom(midstream.Fields{"data": `{"a":1}`}, &j); err != nil || j["a"] != 1 {
		t.Errorf("JSONCodec.DecodeFrom: %v, %v", j, err)
	}
	if err := jc.DecodeFrom(midstream.Fields{}, &j); !errors.Is(err, midstream.ErrMissingField) {
		t.Errorf("JSONCodec.DecodeFrom without its field: %v", err)
	}
}

func TestValues(t *testing.T) {
	v := midstream.Values{"a": "1", "n": 5}
	if s, ok := v.Lookup("a"); !ok || s != "1" {
		t.Errorf("Lookup(a) = %q, %v", s, ok)
	}
	if s, ok := v.Lookup("n"); !ok || s != "5" {
		t.Errorf("Lookup of a non-string = %q, %v", s, ok)
	}
	if _, ok := v.Lookup("z"); ok {
		t.Error("Lookup of a missing field found it")
	}
	if m := v.Map(); len(m) != 2 || m["a"] != "1" || m["n"] != "5" {
		t.Errorf("Map() = %v", m)
	}
	if v.Size() != 4 { // "a"+"1", "n"+"5"
		t.Errorf("Size() = %d, want 4", v.Size())
	}
	e := midstream.EntryOf("s", "1-0", map[string]any{"a": "1"})
	if e.Stream != "s" || e.ID != "1-0" || e.Fields["a"] != "1" {
		t.Errorf("EntryOf = %+v", e)
	}
}
