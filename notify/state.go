package notify

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// stepEntries is how many entries one script step reads at most (twice:
// folding markers, then moving the watermark).
const stepEntries = 200

// readChunk is how many entries a read call asks for per XRANGE.
const readChunk = 1000

// padID is an ID as a member of the read set: both parts zero-padded to 20
// digits, so that lexicographic order is ID order.
func padID(id midstream.ID) string { return fmt.Sprintf("%020d-%020d", id.Ms, id.Seq) }

// unpadID reverses padID.
func unpadID(m string) (midstream.ID, error) {
	ms, seq, ok := strings.Cut(m, "-")
	if !ok {
		return midstream.ID{}, fmt.Errorf("%w: read set member %q", midstream.ErrInvalidID, m)
	}
	trim := func(s string) string {
		if t := strings.TrimLeft(s, "0"); t != "" {
			return t
		}
		return "0"
	}
	return midstream.ParseID(trim(ms) + "-" + trim(seq))
}

// readState is a user's read state as a read call sees it.
type readState struct {
	wm, synced midstream.ID
	read       map[string]bool // IDs above wm marked read (all of them unless partial)
	// partial: the read set holds more than readSetWhole members; only the
	// first are in read, and readIn adds those of a range when needed.
	partial bool
	setKey  string
}

// readSetWhole is how many read set members a read call takes at once; a
// larger set is read by range, for the entries a call looks at.
const readSetWhole = 1000

// readIn adds to st.read the read set's members from lo to hi (IDs,
// inclusive) when the set was too large to read whole.
func (n *Notifier) readIn(ctx context.Context, st *readState, lo, hi string) error {
	if !st.partial {
		return nil
	}
	l, err1 := midstream.ParseID(lo)
	h, err2 := midstream.ParseID(hi)
	if err1 != nil || err2 != nil {
		return nil // not entry IDs: nothing of the set lies between
	}
	members, err := n.client.ZRangeByLex(ctx, st.setKey, &redis.ZRangeBy{Min: "[" + padID(l), Max: "[" + padID(h)}).Result()
	if err != nil {
		return err
	}
	for _, m := range members {
		if id, err := unpadID(m); err == nil {
			st.read[id.String()] = true
		}
	}
	return nil
}

// legacyState is the state earlier versions kept: found tells which of the
// three keys exist with the expected type.
type legacyState struct {
	wm, synced midstream.ID
	read       map[string]bool
	found      [3]bool
}

// legacy reads the earlier layout's keys, each with its own command (they
// need not share a slot). A key of another type is not theirs: ignored.
func (n *Notifier) legacy(ctx context.Context, old [3]string) (legacyState, error) {
	var l legacyState
	var cmds [3]redis.Cmder
	_, _ = n.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds[0] = p.Get(ctx, old[0])
		cmds[1] = p.SMembers(ctx, old[1])
		cmds[2] = p.Get(ctx, old[2])
		return nil
	})
	return l, l.fill(cmds)
}

func (l *legacyState) fill(cmds [3]redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && err != redis.Nil && !redis.HasErrorPrefix(err, "WRONGTYPE") {
			return err
		}
	}
	if v, err := cmds[0].(*redis.StringCmd).Result(); err == nil {
		if id, err := midstream.ParseID(v); err == nil {
			l.wm, l.found[0] = id, true
		}
	}
	if v, err := cmds[1].(*redis.StringSliceCmd).Result(); err == nil && len(v) > 0 {
		l.read, l.found[1] = make(map[string]bool, len(v)), true
		for _, m := range v {
			l.read[m] = true
		}
	}
	if v, err := cmds[2].(*redis.StringCmd).Result(); err == nil {
		if id, err := midstream.ParseID(v); err == nil {
			l.synced, l.found[2] = id, true
		}
	}
	return nil
}

// state reads user's read state with plain reads (HMGET, ZRANGE, and the
// earlier layout's keys while the state hash does not exist), in one round
// trip: no script, so it runs for a read-only user and on a replica.
func (n *Notifier) state(ctx context.Context, user string, ks []string) (readState, error) {
	old := n.legacyKeys(user)
	var hm *redis.SliceCmd
	var set *redis.StringSliceCmd
	var lc [3]redis.Cmder
	_, _ = n.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		hm = p.HMGet(ctx, ks[1], "upto", "synced")
		set = p.ZRange(ctx, ks[2], 0, readSetWhole)
		lc[0] = p.Get(ctx, old[0])
		lc[1] = p.SMembers(ctx, old[1])
		lc[2] = p.Get(ctx, old[2])
		return nil
	})
	var st readState
	vals, err := hm.Result()
	if err != nil {
		return st, err
	}
	members, err := set.Result()
	if err != nil {
		return st, err
	}
	st.setKey, st.partial = ks[2], len(members) > readSetWhole
	st.read = make(map[string]bool, len(members))
	for _, m := range members {
		if id, err := unpadID(m); err == nil {
			st.read[id.String()] = true
		}
	}
	if s, ok := vals[0].(string); ok { // the state hash exists
		if st.wm, err = midstream.ParseID(s); err != nil {
			return st, fmt.Errorf("state hash %s: %w", ks[1], err)
		}
		if s, ok := vals[1].(string); ok {
			if st.synced, err = midstream.ParseID(s); err != nil {
				return st, fmt.Errorf("state hash %s: %w", ks[1], err)
			}
		}
	} else {
		var l legacyState
		if err := l.fill(lc); err != nil {
			return st, err
		}
		st.wm, st.synced = l.wm, l.synced
		for id := range l.read {
			st.read[id] = true
		}
	}
	if st.synced.Compare(st.wm) < 0 {
		st.synced = st.wm
	}
	return st, nil
}

// tail adds to st.read the targets of the read markers after the fold
// cursor, reading at most the count budget of entries.
func (n *Notifier) tail(ctx context.Context, stream string, st *readState) error {
	from := st.synced.String()
	var scanned int64
	for {
		if scanned >= n.cfg.budget {
			return fmt.Errorf("%w: more than %d entries wait to be folded (Sync folds them)", ErrCountBudget, n.cfg.budget)
		}
		chunk := min(readChunk, n.cfg.budget-scanned)
		msgs, err := n.client.XRangeN(ctx, stream, "("+from, "+", chunk).Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if t, ok := m.Values[FieldMarkedReadID].(string); ok {
				st.read[t] = true
			}
			from = m.ID
		}
		scanned += int64(len(msgs))
		if int64(len(msgs)) < chunk {
			return nil
		}
	}
}

// UnreadCount returns how many notifications of user are unread. It reads
// only the entries after the read watermark, at most the count budget of
// them, with plain XRANGE calls of a bounded size (no script: a read-only
// user or a replica serves it); when more follow, it returns the count of
// the entries read and an error wrapping ErrCountBudget.
func (n *Notifier) UnreadCount(ctx context.Context, user string) (int64, error) {
	ks, err := n.keys(user)
	if err != nil {
		return 0, err
	}
	ctx, span := n.tel.Start(ctx, "unread_count", n.cfg.prefix, false)
	count, err := n.unreadCount(ctx, ks, user)
	if err != nil {
		err = fmt.Errorf("notify: unread count for %s: %w", user, err)
	}
	n.tel.End(span, err)
	return count, err
}

func (n *Notifier) unreadCount(ctx context.Context, ks []string, user string) (int64, error) {
	st, err := n.state(ctx, user, ks)
	if err != nil {
		return 0, err
	}
	unread := map[string]bool{}
	marked := map[string]bool{}
	from := st.wm.String()
	var scanned int64
	for {
		if scanned >= n.cfg.budget {
			return count(unread, marked), fmt.Errorf("%w: more than %d entries after the watermark", ErrCountBudget, n.cfg.budget)
		}
		chunk := min(readChunk, n.cfg.budget-scanned)
		msgs, err := n.client.XRangeN(ctx, ks[0], "("+from, "+", chunk).Result()
		if err != nil {
			return 0, err
		}
		if len(msgs) > 0 {
			if err := n.readIn(ctx, &st, msgs[0].ID, msgs[len(msgs)-1].ID); err != nil {
				return 0, err
			}
		}
		for _, m := range msgs {
			from = m.ID
			if t, ok := m.Values[FieldMarkedReadID].(string); ok {
				marked[t] = true
			} else if m.Values[FieldRead] != "true" && !st.read[m.ID] {
				unread[m.ID] = true
			}
		}
		scanned += int64(len(msgs))
		if int64(len(msgs)) < chunk {
			return count(unread, marked), nil
		}
	}
}

func count(unread, marked map[string]bool) int64 {
	c := int64(len(unread))
	for id := range marked {
		if unread[id] {
			c--
		}
	}
	return c
}

// List returns up to limit notifications of user, newest first, starting
// after cursor ("" for the newest). Read-marker entries are never listed.
// limit is from 1 to MaxListLimit. It runs plain reads only (a read-only
// user or a replica serves it): the state, the read markers not folded yet
// (at most the count budget of entries, else an error wrapping
// ErrCountBudget) and the page; it examines at most the count budget of
// entries for the page, and may then return a short page whose Next
// continues.
func (n *Notifier) List(ctx context.Context, user, cursor string, limit int) (Page, error) {
	return n.list(ctx, user, cursor, limit, false)
}

// Unread is List restricted to unread notifications. It reads nothing at or
// below the read watermark.
func (n *Notifier) Unread(ctx context.Context, user, cursor string, limit int) (Page, error) {
	return n.list(ctx, user, cursor, limit, true)
}

func (n *Notifier) list(ctx context.Context, user, cursor string, limit int, unreadOnly bool) (Page, error) {
	ks, err := n.keys(user)
	if err != nil {
		return Page{}, err
	}
	if limit < 1 || limit > MaxListLimit {
		return Page{}, fmt.Errorf("%w: limit %d not within [1, %d]", midstream.ErrInvalidOption, limit, MaxListLimit)
	}
	end := "+"
	if cursor != "" {
		c, err := midstream.ParseID(cursor)
		if err != nil {
			return Page{}, err
		}
		end = "(" + c.String()
	}
	ctx, span := n.tel.Start(ctx, "list", n.cfg.prefix, false)
	page, err := n.page(ctx, user, ks, end, limit, unreadOnly)
	if err != nil {
		err = fmt.Errorf("notify: list %s: %w", user, err)
	}
	n.tel.End(span, err)
	return page, err
}

func (n *Notifier) page(ctx context.Context, user string, ks []string, end string, limit int, unreadOnly bool) (Page, error) {
	st, err := n.state(ctx, user, ks)
	if err != nil {
		return Page{}, err
	}
	if err := n.tail(ctx, ks[0], &st); err != nil {
		return Page{}, err
	}
	start := "-"
	if unreadOnly {
		start = "(" + st.wm.String()
	}
	var page Page
	var scanned int64
	for scanned < n.cfg.budget {
		chunk := min(int64(limit), n.cfg.budget-scanned)
		msgs, err := n.client.XRevRangeN(ctx, ks[0], end, start, chunk).Result()
		if err != nil {
			return Page{}, err
		}
		if len(msgs) > 0 {
			if err := n.readIn(ctx, &st, msgs[len(msgs)-1].ID, msgs[0].ID); err != nil {
				return Page{}, err
			}
		}
		for _, m := range msgs {
			end = "(" + m.ID
			f := fields(m)
			if _, marker := f[FieldMarkedReadID]; marker {
				continue
			}
			id, err := midstream.ParseID(m.ID)
			if err != nil {
				return Page{}, err
			}
			nt := Decode(midstream.Entry{Stream: ks[0], ID: m.ID, Fields: f})
			nt.Read = nt.Read || id.Compare(st.wm) <= 0 || st.read[m.ID]
			if unreadOnly && nt.Read {
				continue
			}
			page.Items = append(page.Items, nt)
			if len(page.Items) == limit {
				page.Next = m.ID
				return page, nil
			}
		}
		scanned += int64(len(msgs))
		if int64(len(msgs)) < chunk {
			return page, nil
		}
	}
	page.Next = end[1:]
	return page, nil
}
