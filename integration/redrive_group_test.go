package integration

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestRedriveReachesItsGroupOnly: two groups read one stream; "billing"
// dead-letters one entry, "email" handles every entry. Redriving the dead
// letter delivers it to billing again and never to email; afterwards no
// entry is pending anywhere.
func TestRedriveReachesItsGroupOnly(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream := srv.Key("orders")
	ids := publishN(t, srv.Client, stream, 0, 5)
	bad := ids[2]

	billing, email := newLedger(), newLedger()
	var refuse atomic.Bool
	refuse.Store(true)
	hb := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		billing.record(m.Field("n"))
		if m.ID == bad && refuse.Load() {
			return consumer.Permanent(errors.New("card declined"))
		}
		return nil
	})
	he := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		email.record(m.Field("n"))
		return nil
	})
	cb := newConsumer(t, srv.Client, stream, "billing", hb)
	ce := newConsumer(t, srv.Client, stream, "email", he)
	stopB, stopE := runConsumer(t, cb), runConsumer(t, ce)
	waitFor(t, 30*time.Second, "billing dead-lettered one, email handled all", func() bool {
		return cb.Stats().DeadLettered == 1 && billing.distinct() == 5 && email.distinct() == 5
	})
	dl := dlqAll(t, srv.Client, stream)
	if len(dl) != 1 || dl[0].Group != "billing" || dl[0].OriginalID != bad {
		t.Fatalf("DLQ %+v, want %s of billing", dl, bad)
	}

	refuse.Store(false)
	q := dlQueue(t, srv.Client, stream)
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	waitFor(t, 30*time.Second, "billing handled the redriven entry", func() bool { return billing.count("2") == 2 })
	// Give email every chance to see it.
	time.Sleep(500 * time.Millisecond)
	if err := errors.Join(stopB(), stopE()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if n := email.count(strconv.Itoa(i)); n != 1 {
			t.Errorf("email handled n=%d %d times, want 1", i, n)
		}
	}
	if n := xlenOf(t, srv.Client, stream); n != 5 {
		t.Errorf("source holds %d entries, want the 5 published (redrive adds nothing there)", n)
	}
	for _, g := range []string{"billing", "email"} {
		if n := pendingCount(t, srv.Client, stream, g); n != 0 {
			t.Errorf("%d pending in %s on the source", n, g)
		}
		side := deadletter.RedriveKey(stream, g)
		if p, err := srv.Client.XPending(ctx, side, g).Result(); err == nil && p.Count != 0 {
			t.Errorf("%d pending in %s on %s", p.Count, g, side)
		}
	}
	if c, _ := q.Count(ctx); c != 0 {
		t.Errorf("DLQ holds %d, want 0", c)
	}
}

// TestRedriveGroupRepeat: a redrive whose reply is lost, or (DLQ in another
// slot) that crashes between adding the entry for its group and deleting
// the dead letter, then runs again, adds the entry once.
func TestRedriveGroupRepeat(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	proxy := srv.StartProxy(t)
	for _, tc := range []struct {
		name, cmd string
		otherSlot bool
		act       func() error
	}{
		{"lost reply to the script", "evalsha", false, func() error { proxy.LoseNextReply(); return nil }},
		{"other slot: crash before XDEL", "xdel", true, func() error { return errors.New("crashed before XDEL") }},
		{"other slot: lost reply to XDEL", "xdel", true, func() error { proxy.LoseNextReply(); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := srv.Key("r" + strconv.Itoa(len(tc.name)))
			var opts []deadletter.Option
			if tc.otherSlot {
				opts = append(opts, deadletter.WithKey(dlSlotApart(t, src)))
			}
			q := dlQueue(t, srv.Client, src, opts...)
			dlMoveN(t, srv.Client, q, 2, func(int) string { return "x" })
			// The first goes back at once; it warms the script cache, so
			// that the faulty client runs EVALSHA.
			dl, _, err := q.List(ctx, deadletter.ListOptions{})
			if err != nil || len(dl) != 2 {
				t.Fatalf("List = %v, %v", dl, err)
			}
			if res, err := q.Redrive(ctx, deadletter.RedriveOptions{IDs: []string{dl[0].ID}}); err != nil || res.Redriven != 1 {
				t.Fatalf("Redrive = %+v, %v", res, err)
			}
			h := newDLHook(tc.cmd, tc.act)
			faulty := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr(); o.MaxRetries = -1 })
			faulty.AddHook(h)
			fq := dlQueue(t, faulty, src, opts...)
			res, err := fq.Redrive(ctx, deadletter.RedriveOptions{})
			t.Logf("first Redrive = %+v, %v", res, err)
			if h.left.Load() > 0 {
				t.Fatalf("the fault was not injected")
			}
			res, err = q.Redrive(ctx, deadletter.RedriveOptions{})
			t.Logf("repeated Redrive = %+v, %v", res, err)
			if err != nil {
				t.Fatal(err)
			}
			side := deadletter.RedriveKey(src, "g")
			if n := xlenOf(t, srv.Client, side); n != 2 {
				t.Errorf("%s holds %d entries, want exactly 2", side, n)
			}
			if c, _ := q.Count(ctx); c != 0 {
				t.Errorf("DLQ holds %d, want 0", c)
			}
		})
	}
}

// TestRedriveWithoutGroup: a dead letter that records no group (written by
// hand or by another tool) goes back to the source stream, as before.
func TestRedriveWithoutGroup(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("orders")
	q := dlQueue(t, srv.Client, src)
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: q.Key(), Values: []string{"n", "1", deadletter.FieldError, "by hand"}}).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	if n := xlenOf(t, srv.Client, src); n != 1 {
		t.Errorf("source holds %d entries, want 1", n)
	}
}
