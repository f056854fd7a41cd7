package option_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
)

func TestSet(t *testing.T) {
	tests := []struct {
		v, lo, want int // dst starts at 3; the default is 7, the maximum 100
		err         string
	}{
		{v: 0, lo: 1, want: 7},
		{v: 0, lo: 5, want: 7}, // zero is the default even below the minimum
		{v: 1, lo: 1, want: 1},
		{v: 100, lo: 1, want: 100},
		{v: 4, lo: 5, want: 3, err: "4 is below the minimum 5"},
		{v: -1, lo: 1, want: 3, err: "-1 is negative"},
		{v: math.MinInt, lo: 1, want: 3, err: "is negative"},
		{v: 101, lo: 1, want: 3, err: "101 is above the maximum 100"},
		{v: math.MaxInt, lo: 1, want: 3, err: "is above the maximum 100"},
	}
	for _, tt := range tests {
		dst := 3
		err := option.Set(&dst, "batch size", tt.v, 7, tt.lo, 100)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Set(%d): %v", tt.v, err)
		case tt.err != "" && !errors.Is(err, midstream.ErrInvalidOption):
			t.Errorf("Set(%d) = %v, want ErrInvalidOption", tt.v, err)
		case tt.err != "" && (!strings.Contains(err.Error(), "batch size") || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Set(%d) = %v, want %q", tt.v, err, tt.err)
		}
		if dst != tt.want {
			t.Errorf("Set(%d) stored %d, want %d", tt.v, dst, tt.want)
		}
	}
}

func TestSetDuration(t *testing.T) {
	var d time.Duration
	if err := option.Set(&d, "block", 0, 2*time.Second, time.Millisecond, time.Minute); err != nil || d != 2*time.Second {
		t.Fatalf("zero: %v, %s", err, d)
	}
	err := option.Set(&d, "block", time.Microsecond, 2*time.Second, time.Millisecond, time.Minute)
	if !errors.Is(err, midstream.ErrInvalidOption) || !strings.Contains(err.Error(), "1µs is below the minimum 1ms") {
		t.Fatalf("1µs: %v", err)
	}
	if err := option.Set(&d, "block", time.Duration(math.MaxInt64), 2*time.Second, time.Millisecond, time.Minute); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("max: %v", err)
	}
	if d != 2*time.Second {
		t.Fatalf("a refused value changed the destination to %s", d)
	}
}
