package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/keys"
)

// dlUser creates an ACL user allowed everything but the given commands and
// returns a client logged in as that user.
func dlUser(t *testing.T, srv *redistest.Server, name string, without ...string) *redis.Client {
	t.Helper()
	if srv.Backend == "url" {
		t.Skip("creates an ACL user: needs a server of its own")
	}
	args := []any{"ACL", "SETUSER", name, "on", ">secret", "~*", "&*", "+@all"}
	for _, cmd := range without {
		args = append(args, "-"+cmd)
	}
	if err := srv.Client.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	return srv.NewClient(func(o *redis.Options) { o.Username, o.Password = name, "secret" })
}

// dlMarkers returns the marker keys of Move's multi-command path for
// entries of the source stream src.
func dlMarkers(t *testing.T, rdb redis.UniversalClient, src string) []string {
	t.Helper()
	ks, err := rdb.Keys(context.Background(), "*:moved:"+strconv.Itoa(len(src))+":"+src+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// dlSlotApart returns a key of its own for src (its name, braces replaced),
// outside src's cluster slot.
func dlSlotApart(t *testing.T, src string) string {
	t.Helper()
	name := strings.NewReplacer("{", "(", "}", ")").Replace(src)
	for i := range 100 {
		if k := fmt.Sprintf("%s:elsewhere%d", name, i); !keys.SameSlot(src, k) {
			return k
		}
	}
	t.Fatal("no key outside the source's slot")
	return ""
}

// dlLargeFields returns an entry with more fields than a script can pass to
// XADD.
func dlLargeFields() map[string]string {
	fields := make(map[string]string, 5000)
	for i := range 5000 {
		fields["f"+strconv.Itoa(i)] = strconv.Itoa(i)
	}
	return fields
}

// dlPaths are the three ways Move writes: one script (same slot), the
// marker script (the DLQ in another slot) and the marker transaction (an
// entry too large for a script).
func dlPaths(t *testing.T, srv *redistest.Server, name string) []struct {
	name   string
	src    string
	opts   []deadletter.Option
	fields map[string]string
} {
	t.Helper()
	other := srv.Key(name + "-other")
	return []struct {
		name   string
		src    string
		opts   []deadletter.Option
		fields map[string]string
	}{
		{"same slot", srv.Key(name + "-same"), nil, map[string]string{"k": "v"}},
		{"other slot", other, []deadletter.Option{deadletter.WithKey(dlSlotApart(t, other))}, map[string]string{"k": "v"}},
		{"large entry", srv.Key(name + "-large"), nil, dlLargeFields()},
	}
}

// TestDeadletterMoveWithoutXack: a user allowed everything Move needs but
// XACK gets a NOPERM error from Move and nothing is written: the DLQ stays
// empty and the entry stays pending, however often the move is repeated.
// Before the permission check, each attempt added a dead-letter entry (the
// script's XADD ran, then its XACK failed, and Lua does not roll back): one
// copy per attempt, 37 in 2 s under a retrying consumer.
func TestDeadletterMoveWithoutXack(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	user := dlUser(t, srv, "noack", "xack")
	for _, p := range dlPaths(t, srv, "noack") {
		t.Run(p.name, func(t *testing.T) {
			admin := dlQueue(t, srv.Client, p.src, p.opts...)
			q := dlQueue(t, user, p.src, p.opts...)
			m := dlPending(t, srv.Client, p.src, "g", "c", p.fields)[0]
			req := deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "c", Reason: "r"}
			for i := range 20 {
				moved, err := q.Move(ctx, req)
				var rerr redis.Error
				if moved || !redis.HasErrorPrefix(err, "NOPERM") || !errors.As(err, &rerr) {
					t.Fatalf("attempt %d: Move = %v, %v; want a NOPERM error", i, moved, err)
				}
				if i == 0 {
					t.Logf("Move: %v", err)
				}
			}
			if n := xlen(t, srv.Client, admin.Key()); n != 0 {
				t.Fatalf("DLQ holds %d entries after 20 refused moves, want 0", n)
			}
			if ks := dlMarkers(t, srv.Client, p.src); len(ks) != 0 {
				t.Fatalf("markers left: %v", ks)
			}
			if p := dlPendingIDs(t, srv.Client, p.src, "g"); p[m.ID] != "c" {
				t.Fatalf("pending %v, want %s owned by c", p, m.ID)
			}
			// With the right to XACK, the same move goes through once.
			if moved, err := admin.Move(ctx, req); err != nil || !moved {
				t.Fatalf("Move by a user allowed XACK = %v, %v", moved, err)
			}
			if n := xlen(t, srv.Client, admin.Key()); n != 1 {
				t.Fatalf("DLQ length %d, want 1", n)
			}
		})
	}
}

// TestDeadletterRedriveWithoutXdel: a user allowed everything Redrive needs
// but XDEL gets a NOPERM error and the target gets nothing; the entry stays
// in the DLQ. Before the permission check, each attempt added the entry to
// the target (XADD ran, then XDEL failed).
func TestDeadletterRedriveWithoutXdel(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	user := dlUser(t, srv, "nodel", "xdel")
	src := srv.Key("nodel")
	admin := dlQueue(t, srv.Client, src)
	q := dlQueue(t, user, src)
	ids := dlFill(t, srv.Client, admin, 1000, 3, dlSameProv("g", "x"))
	for _, target := range []string{"", dlSlotApart(t, admin.Key())} {
		for i := range 20 {
			res, err := q.Redrive(ctx, deadletter.RedriveOptions{Target: target})
			if res.Redriven != 0 || !redis.HasErrorPrefix(err, "NOPERM") {
				t.Fatalf("target %q, attempt %d: Redrive = %+v, %v; want a NOPERM error", target, i, res, err)
			}
			if i == 0 {
				t.Logf("target %q: Redrive: %v", target, err)
			}
		}
		if target == "" {
			target = src
		}
		if n, err := srv.Client.Exists(ctx, target).Result(); err != nil || n != 0 {
			t.Fatalf("target %s exists (%v) after refused redrives", target, err)
		}
		if c, _ := admin.Count(ctx); c != 3 {
			t.Fatalf("DLQ length %d, want 3", c)
		}
	}
	if res, err := admin.Redrive(ctx, deadletter.RedriveOptions{IDs: ids}); err != nil || res.Redriven != 3 {
		t.Fatalf("Redrive by a user allowed XDEL = %+v, %v", res, err)
	}
}

// dlHook acts on the next command, or transaction, that includes a command
// named name, once.
type dlHook struct {
	name string
	act  func() error // nil: pass the command on; else fail it with this error unsent
	left atomic.Int32
}

func newDLHook(name string, act func() error) *dlHook {
	h := &dlHook{name: name, act: act}
	h.left.Store(1)
	return h
}

func (h *dlHook) take(cmds ...redis.Cmder) error {
	for _, c := range cmds {
		if c.Name() == h.name && h.left.Add(-1) == 0 {
			return h.act()
		}
	}
	return nil
}

func (h *dlHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *dlHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.take(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *dlHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.take(cmds...); err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

// TestDeadletterMoveRepeat: on the multi-command path (the DLQ in another
// slot; an entry too large for a script), a move interrupted between the
// dead-letter write and the XACK by a crash, or whose reply is lost, and
// then repeated, leaves exactly one dead-letter entry and the source entry
// acknowledged. Before the marker, the repeat added a second entry (and a
// lost reply to XADD, retried by go-redis, did too).
func TestDeadletterMoveRepeat(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	proxy := srv.StartProxy(t)
	// Warm the script cache, so that EVALSHA runs the marker script at once.
	warmSrc := srv.Key("warm")
	warm := dlQueue(t, srv.Client, warmSrc, deadletter.WithKey(dlSlotApart(t, warmSrc)))
	w := dlPending(t, srv.Client, warmSrc, "g", "c", map[string]string{"k": "v"})[0]
	if moved, err := warm.Move(ctx, deadletter.MoveRequest{ID: w.ID, Group: "g", Consumer: "c"}); err != nil || !moved {
		t.Fatalf("warm-up Move = %v, %v", moved, err)
	}
	for _, p := range dlPaths(t, srv, "repeat")[1:] {
		addCmd := "evalsha" // the marker script
		if p.name == "large entry" {
			addCmd = "exec" // the marker transaction
		}
		for _, fault := range []string{"crash before XACK", "lost reply to the add", "lost reply to XACK"} {
			t.Run(p.name+"/"+fault, func(t *testing.T) {
				src := p.src + ":" + strconv.Itoa(len(fault))
				opts := p.opts
				if p.name == "other slot" {
					opts = []deadletter.Option{deadletter.WithKey(dlSlotApart(t, src))}
				}
				var h *dlHook
				switch fault {
				case "crash before XACK":
					h = newDLHook("xack", func() error { return errors.New("crashed before XACK") })
				case "lost reply to the add":
					h = newDLHook(addCmd, func() error { proxy.LoseNextReply(); return nil })
				default:
					h = newDLHook("xack", func() error { proxy.LoseNextReply(); return nil })
				}
				faulty := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr() })
				faulty.AddHook(h)
				q := dlQueue(t, faulty, src, opts...)
				if keys.SameSlot(src, q.Key()) != (p.name == "large entry") {
					t.Fatalf("%s and %s: unexpected slots", src, q.Key())
				}
				m := dlPending(t, srv.Client, src, "g", "c", p.fields)[0]
				req := deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "c", Reason: "r"}
				moved, err := q.Move(ctx, req)
				t.Logf("first Move = %v, %v", moved, err)
				if h.left.Load() > 0 {
					t.Fatalf("the fault was not injected")
				}
				if err != nil {
					// The process that crashed, or saw the error, tries again.
					retry := dlQueue(t, srv.Client, src, opts...)
					moved, err = retry.Move(ctx, req)
					t.Logf("repeated Move = %v, %v", moved, err)
					if err != nil {
						t.Fatalf("repeated Move: %v", err)
					}
				}
				dl := srv.Client.XRange(ctx, q.Key(), "-", "+").Val()
				if len(dl) != 1 {
					t.Fatalf("DLQ holds %d entries, want exactly 1", len(dl))
				}
				if e := deadletter.ParseEntry(q.Key(), dl[0]); e.OriginalID != m.ID || len(e.Fields) != len(p.fields) {
					t.Fatalf("DLQ entry for %s with %d fields, want %s with %d", e.OriginalID, len(e.Fields), m.ID, len(p.fields))
				}
				if pend := dlPendingIDs(t, srv.Client, src, "g"); len(pend) != 0 {
					t.Fatalf("still pending: %v", pend)
				}
				// One marker, holding the dead-letter ID (or, when the reply
				// to the transaction was lost before Move could store the ID
				// in it, "unknown"), in the DLQ's slot, expiring.
				markers := dlMarkers(t, srv.Client, src)
				if len(markers) != 1 {
					t.Fatalf("markers %v, want one", markers)
				}
				marker := markers[0]
				if v := srv.Client.Get(ctx, marker).Val(); v != dl[0].ID && (p.name != "large entry" || v != "unknown") {
					t.Fatalf("marker %s holds %q, want %s", marker, v, dl[0].ID)
				}
				if !keys.SameSlot(marker, q.Key()) {
					t.Fatalf("marker %s is not in the slot of %s", marker, q.Key())
				}
				if ttl := srv.Client.PTTL(ctx, marker).Val(); ttl <= 0 || ttl > deadletter.MarkerTTL {
					t.Fatalf("marker TTL %v, want up to %v", ttl, deadletter.MarkerTTL)
				}
				// Once acknowledged, a repeat does nothing.
				if moved, err := dlQueue(t, srv.Client, src, opts...).Move(ctx, req); err != nil || moved {
					t.Fatalf("Move after the move = %v, %v; want not moved", moved, err)
				}
				if n := xlen(t, srv.Client, q.Key()); n != 1 {
					t.Fatalf("DLQ length %d, want 1", n)
				}
			})
		}
	}
}

// TestDeadletterMoveMarkerRepeats: with the DLQ in another slot, a move whose
// XACK keeps failing adds one dead-letter entry however often it is
// repeated (the marker), and the repeat that acknowledges adds none.
func TestDeadletterMoveMarkerRepeats(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("repeats")
	opts := []deadletter.Option{deadletter.WithKey(dlSlotApart(t, src))}
	m := dlPending(t, srv.Client, src, "g", "c", map[string]string{"k": "v"})[0]
	req := deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "c", Reason: "r"}
	for i := range 20 {
		h := newDLHook("xack", func() error { return fmt.Errorf("XACK %d failed", i) })
		rdb := srv.NewUniversalClient()
		rdb.AddHook(h)
		if moved, err := dlQueue(t, rdb, src, opts...).Move(ctx, req); err == nil || moved {
			t.Fatalf("attempt %d: Move = %v, %v; want the XACK error", i, moved, err)
		}
	}
	q := dlQueue(t, srv.Client, src, opts...)
	if n := xlen(t, srv.Client, q.Key()); n != 1 {
		t.Fatalf("DLQ holds %d entries after 20 failed XACKs, want 1", n)
	}
	if moved, err := q.Move(ctx, req); err != nil || !moved {
		t.Fatalf("Move = %v, %v", moved, err)
	}
	if n := xlen(t, srv.Client, q.Key()); n != 1 {
		t.Fatalf("DLQ holds %d entries, want 1", n)
	}
	if p := dlPendingIDs(t, srv.Client, src, "g"); len(p) != 0 {
		t.Fatalf("still pending: %v", p)
	}
}
