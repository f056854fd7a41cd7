package trim_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/trim"
)

func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		name string
		p    trim.Policy
		ok   bool
	}{
		{"maxlen", trim.Policy{MaxLen: 10}, true},
		{"maxage", trim.Policy{MaxAge: time.Hour}, true},
		{"both", trim.Policy{MaxLen: 10, MaxAge: time.Hour}, true},
		{"approx with limit", trim.Policy{MaxLen: 10, Approx: true, Limit: 500}, true},
		{"exact with limit", trim.Policy{MaxLen: 10, Limit: 500}, true},
		{"unsafe", trim.Policy{MaxAge: time.Millisecond, Unsafe: true}, true},
		{"nothing set", trim.Policy{}, false},
		{"only approx", trim.Policy{Approx: true, Limit: 5}, false},
		{"negative maxlen", trim.Policy{MaxLen: -1}, false},
		{"negative maxage", trim.Policy{MaxAge: -time.Second}, false},
		{"maxage below a millisecond", trim.Policy{MaxAge: time.Microsecond}, false},
		{"negative limit", trim.Policy{MaxLen: 10, Limit: -1}, false},
		{"limit at max", trim.Policy{MaxLen: 10, Limit: trim.MaxLimit}, true},
		{"limit above max", trim.Policy{MaxLen: 10, Limit: trim.MaxLimit + 1}, false},
		{"limit MaxInt64", trim.Policy{MaxLen: 10, Limit: math.MaxInt64}, false},
		{"maxlen at max", trim.Policy{MaxLen: trim.MaxLength}, true},
		{"maxlen above max", trim.Policy{MaxLen: trim.MaxLength + 1}, false},
		{"maxage MaxInt64", trim.Policy{MaxAge: math.MaxInt64}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, midstream.ErrInvalidOption) {
				t.Fatalf("Validate: %v, want ErrInvalidOption", err)
			}
			// Trim refuses the same policies before sending anything.
			c, _ := newClient(t)
			_, err = trim.Trim(context.Background(), c, "s", tc.p)
			if !tc.ok && !errors.Is(err, midstream.ErrInvalidOption) {
				t.Fatalf("Trim: %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestTrimArguments(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	if _, err := trim.Trim(ctx, nil, "s", trim.Policy{MaxLen: 1}); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
	if _, err := trim.Trim(ctx, c, "", trim.Policy{MaxLen: 1}); !errors.Is(err, midstream.ErrInvalidStream) {
		t.Fatalf("empty stream: %v", err)
	}
	if _, err := trim.Trim(ctx, c, "a\nb", trim.Policy{MaxLen: 1}); !errors.Is(err, midstream.ErrInvalidStream) {
		t.Fatalf("stream with a newline: %v", err)
	}
}
