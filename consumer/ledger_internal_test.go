package consumer

import (
	"context"
	"testing"
	"time"
)

// TestLedgerRoom: room is reserved before a read, the room of entries
// another path holds is freed at once, and the rest is freed when they
// leave; an ID is held at most once.
func TestLedgerRoom(t *testing.T) {
	l := newLedger(4)
	if n := l.acquireRead(context.Background(), 3); n != 3 {
		t.Fatalf("acquireRead(3) = %d, want 3", n)
	}
	b := newBatch()
	l.take(b, []Message{{}, {}, {}}[:0]) // an empty read frees nothing it did not take
	l.unreserve(3)
	if got := l.used.Load(); got != 0 {
		t.Fatalf("used %d after an empty read, want 0", got)
	}

	// A claim holds "a"; a read returning "a" and "b" takes only "b".
	if n := l.reserve(1, 1, 0); n != 1 {
		t.Fatal("no room for a claim")
	}
	if ids := l.takeIDs(newBatch(), []string{"a"}); len(ids) != 1 {
		t.Fatalf("takeIDs = %v", ids)
	}
	if n := l.acquireRead(context.Background(), 2); n != 2 {
		t.Fatalf("acquireRead(2) = %d", n)
	}
	msgs := []Message{{}, {}}
	msgs[0].ID, msgs[1].ID = "a", "b"
	b = newBatch()
	l.take(b, msgs)
	if len(b.msgs) != 1 || b.msgs[0].ID != "b" {
		t.Fatalf("read took %v, want only b", b.msgs)
	}
	if got := l.used.Load(); got != 2 {
		t.Fatalf("used %d with a and b held, want 2", got)
	}
	l.release("a", "b", "b", "never held")
	if got := l.used.Load(); got != 0 {
		t.Fatalf("used %d after release, want 0", got)
	}
}

// TestLedgerReadsLeaveRoomForClaims: while a claim waits for room, reads
// leave that room free; the claim gets it once entries leave.
func TestLedgerReadsLeaveRoomForClaims(t *testing.T) {
	l := newLedger(2)
	if n := l.reserve(2, 1, 0); n != 2 {
		t.Fatal("setup")
	}
	got := make(chan int)
	go func() { got <- l.acquireClaim(context.Background(), 2) }()
	for l.claimWant.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	l.unreserve(1)
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("claim got %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting claim did not get the freed room")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if n := l.acquireRead(ctx, 1); n != 0 {
		t.Fatalf("read got %d with no room left, want 0 (ctx ended)", n)
	}
}
