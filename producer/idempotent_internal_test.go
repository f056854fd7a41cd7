package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

func TestAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{syscall.ECONNRESET, true},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{redis.ErrClosed, true},
		{redis.Nil, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{proto("MOVED 1 127.0.0.1:1"), true},
		{proto("READONLY You can't write against a read only replica."), true},
		{proto("LOADING Redis is loading the dataset in memory"), true},
		{proto("BUSY Redis is busy running a script."), true},
		{proto("ERR The ID specified in XADD is equal or smaller than the target stream top item"), false},
		{proto("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{proto("NOPERM this user has no permissions"), false},
		{proto("OOM command not allowed when used memory > 'maxmemory'."), false},
		// Written, not confirmed by the replicas: sending it again adds
		// nothing and WAITs once more.
		{&DurabilityError{Acked: 0, Want: 1}, false},
		{&DurabilityError{Want: 1, Err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}}, false},
		{&DurabilityError{Want: 1, Err: io.EOF}, false},
	} {
		if got := ambiguous(tc.err); got != tc.want {
			t.Errorf("ambiguous(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// proto is an error reply from Redis.
type proto string

func (e proto) Error() string { return string(e) }
func (proto) RedisError()     {}

func TestIdempotencyOptions(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	for name, opt := range map[string]Option{
		"window below 1ms":    WithIdempotencyWindow(time.Microsecond),
		"window negative":     WithIdempotencyWindow(-time.Second),
		"window too long":     WithIdempotencyWindow(MaxIdempotencyWindow + 1),
		"attempts negative":   WithIdempotentAttempts(-1),
		"attempts too many":   WithIdempotentAttempts(MaxIdempotentAttempts + 1),
		"nil key func":        WithIdempotencyKeyFunc[string](nil),
		"key func wrong type": WithIdempotencyKeyFunc(func(int) string { return "" }),
	} {
		if _, err := New[map[string]string](rdb, "s", opt); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	p, err := New[map[string]string](rdb, "s", WithIdempotencyWindow(0), WithIdempotentAttempts(0))
	if err != nil {
		t.Fatal(err)
	}
	if p.idem.window != DefaultIdempotencyWindow || p.idem.attempts != DefaultIdempotentAttempts {
		t.Fatalf("zero options: %+v, want the defaults", p.idem)
	}
	p, err = New[map[string]string](rdb, "s", WithIdempotencyWindow(time.Minute), WithIdempotentAttempts(3))
	if err != nil || p.idem.window != time.Minute || p.idem.attempts != 3 {
		t.Fatalf("options: %+v, %v", p.idem, err)
	}
}

// TestIdempotentAttemptsBounded has every attempt fail with no reply: the
// publish gives up after the configured attempts, with the error.
func TestIdempotentAttemptsBounded(t *testing.T) {
	mr := miniredis.RunT(t)
	sends := 0
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	rdb.AddHook(failHook{n: &sends})
	p, err := New[map[string]string](rdb, "s", WithIdempotentAttempts(3), WithoutCoalescing())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Publish(context.Background(), map[string]string{"a": "1"}, IdempotencyKey("k"))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Publish: %v, want io.EOF", err)
	}
	if sends != 3 {
		t.Fatalf("sent %d times, want 3", sends)
	}
	if n := mr.Exists("s"); n {
		t.Fatal("an entry was added")
	}
}

// failHook fails every EVALSHA with io.EOF without sending it.
type failHook struct{ n *int }

func (failHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			*h.n++
			cmd.SetErr(fmt.Errorf("read: %w", io.EOF))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
