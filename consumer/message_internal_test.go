package consumer

import (
	"testing"

	"github.com/midstream-go/midstream"
)

// TestAllAgreesWithField: values go-redis did not give as strings read the
// same through every accessor.
func TestAllAgreesWithField(t *testing.T) {
	m := &Message{values: midstream.Values{"a": []byte("x"), "header:h": 42, "s": "y"}}
	n := 0
	for k, v := range m.All() {
		n++
		if f := m.Field(k); f != v {
			t.Errorf("field %q: All gives %q, Field gives %q", k, v, f)
		}
	}
	if n != 3 {
		t.Errorf("All yielded %d fields, want 3", n)
	}
	if h := m.Headers(); h["h"] != "42" {
		t.Errorf("Headers() = %v", h)
	}
	if f := m.Fields(); f["a"] != "x" || f["header:h"] != "42" || f["s"] != "y" {
		t.Errorf("Fields() = %v", f)
	}
}
