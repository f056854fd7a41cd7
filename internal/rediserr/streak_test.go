package rediserr_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

func TestStreak(t *testing.T) {
	noperm := reply("NOPERM this user has no permissions to run the 'evalsha' command")
	var s rediserr.Streak
	for i := 1; i < rediserr.ConfigAttempts; i++ {
		if s.Observe(noperm) {
			t.Fatalf("fatal after %d Config errors", i)
		}
	}
	// A success, another class and Reset each start the count over.
	for _, other := range []func(){
		func() { s.Observe(nil) },
		func() { s.Observe(redis.ErrClosed) },
		func() { s.Observe(reply("LOADING Redis is loading the dataset in memory")) },
		s.Reset,
	} {
		other()
		for i := 1; i < rediserr.ConfigAttempts; i++ {
			if s.Observe(noperm) {
				t.Fatalf("fatal after %d Config errors", i)
			}
		}
	}
	if !s.Observe(noperm) {
		t.Fatalf("not fatal after %d Config errors in a row", rediserr.ConfigAttempts)
	}
	if !s.Observe(reply("WRONGTYPE Operation against a key holding the wrong kind of value")) {
		t.Fatal("not fatal any more while Config errors go on")
	}
}

func TestFatal(t *testing.T) {
	cause := reply("NOPERM this user has no permissions to run the 'evalsha' command")
	err := rediserr.Fatal("trim orders", cause)
	if !errors.Is(err, midstream.ErrMisconfigured) || !errors.Is(err, cause) {
		t.Fatalf("%v wraps neither ErrMisconfigured nor the cause", err)
	}
	var r redis.Error
	if !errors.As(err, &r) || r != cause {
		t.Fatalf("errors.As: %v", r)
	}
	if want := "midstream: redis refuses the command (misconfigured): trim orders: NOPERM"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("%q, want it to start with %q", err, want)
	}
}
