package delay

import (
	"testing"
	"time"
)

func TestEncode(t *testing.T) {
	got := string(Encode([]string{"a", "", "héllo", "x:y\x00"}))
	if want := "1:a0:6:héllo4:x:y\x00"; got != want {
		t.Fatalf("Encode = %q, want %q", got, want)
	}
	if got := Encode(nil); len(got) != 0 {
		t.Fatalf("Encode(nil) = %q", got)
	}
}

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{
		"00000000000000000001": true, "12345678901234567890": true,
		"": false, "1": false, "0000000000000000000a": false, "000000000000000000001": false,
	} {
		if err := CheckID(id); (err == nil) != ok {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
}

func TestMoverWait(t *testing.T) {
	m := Mover{Batch: 10, Poll: 50 * time.Millisecond}
	for _, tc := range []struct {
		moved int
		next  time.Duration
		want  time.Duration
	}{
		{10, -1, 0},                    // a full batch: go on at once
		{3, 0, 0},                      // more due already
		{3, -1, 50 * time.Millisecond}, // nothing waits: poll
		{0, 5 * time.Millisecond, 5 * time.Millisecond}, // next due before the poll
		{0, time.Hour, 50 * time.Millisecond},           // next due after the poll
	} {
		if got := m.wait(tc.moved, tc.next); got != tc.want {
			t.Errorf("wait(%d, %v) = %v, want %v", tc.moved, tc.next, got, tc.want)
		}
	}
}
