package deadletter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/keys"
)

// RedriveOptions selects the entries Redrive sends back and how.
type RedriveOptions struct {
	// IDs are the dead-letter entries to redrive, in this order. When
	// empty, every entry present when Redrive starts that matches the
	// filters below is redriven, oldest first. IDs and the filters are
	// exclusive.
	IDs []string
	// Since, Until, ErrorContains and Group filter as in ListOptions.
	Since, Until  time.Time
	ErrorContains string
	Group         string
	// Target is the stream every entry goes to, to be read by every group
	// of that stream. When "", each entry goes back to the group it was
	// dead-lettered from, and only to it: to the group's redrive stream
	// (RedriveKey), which the group's consumers read beside the source;
	// an entry that records no group (written by hand or another tool)
	// goes to the source stream.
	Target string
	// Rate is how many entries per second Redrive sends at most, spacing
	// them evenly; 0 means as fast as possible.
	Rate float64
	// Max stops Redrive after this many entries were redriven; 0 means no
	// limit.
	Max int
}

// RedriveResult reports what Redrive did.
type RedriveResult struct {
	// Redriven counts the entries added back to the target.
	Redriven int
	// Skipped counts the entries that were gone when their turn came:
	// redriven or deleted by someone else meanwhile, or never there.
	Skipped int
	// Empty counts the entries left in the dead-letter stream because they
	// hold no original fields (the source entry was deleted before it was
	// dead-lettered): there is nothing to add back. Delete removes them.
	Empty int
	// NewIDs maps the dead-letter ID of every redriven entry to its new ID
	// in the target.
	NewIDs map[string]string
}

func (o *RedriveOptions) validate(q *Queue) (target string, err error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: redrive: "+format, append([]any{midstream.ErrInvalidOption}, args...)...)
	}
	switch {
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0:
		return fail("rate %v is not a finite number >= 0", o.Rate)
	case o.Max < 0:
		return fail("max %d < 0", o.Max)
	case len(o.IDs) > 0 && (!o.Since.IsZero() || !o.Until.IsZero() || o.ErrorContains != "" || o.Group != ""):
		return fail("IDs and filters are exclusive")
	}
	for i, id := range o.IDs {
		nid, err := normID(id)
		if err != nil {
			return fail("%w", err)
		}
		o.IDs[i] = nid
	}
	target = o.Target
	if target == "" {
		return "", nil // per entry: see redriver.targetOf
	}
	if err := midstream.CheckStream(target); err != nil {
		return fail("target: %w", err)
	}
	if target == q.key {
		return fail("target %q is the dead-letter stream", target)
	}
	return target, nil
}

// redriveScript moves one dead-letter entry back, atomically: it reads the
// entry, adds its fields minus the provenance to the target (XADD) and
// deletes it (XDEL).
//
//	KEYS[1] dead-letter stream, KEYS[2] target stream
//	ARGV[1] entry ID, ARGV[2] provenance prefix, ARGV[3] most XADD arguments
//	ARGV[4] the group whose redrive stream the target is, or ""
//
// When the target is a group's redrive stream read by that group only, the
// script first trims from it (XTRIM MINID, best effort) the entries the
// group is done with: those before its oldest pending entry, or before its
// last delivered one when none is pending. Entries not yet delivered or
// not yet acknowledged are never trimmed.
//
// It returns the new entry's ID; nil when the entry does not exist; 0 when
// it holds no other field (nothing done); 1 when it holds too many fields
// for unpack (nothing done). Before reading, it checks that the user may run
// XADD on the target and XDEL on the dead-letter stream (Redis 7.0 and
// later): if not, it returns NOPERM having written nothing, so the entry
// stays in the dead-letter stream and the target gets nothing. Once XADD has
// run, XDEL cannot fail: permissions are checked, XDEL is not refused for
// memory or on a script that has written, and the dead-letter key was just
// read as a stream. Before Redis 7.0 the check is skipped: a user without
// XDEL gets the entry added to the target and the script's error.
var redriveScript = redis.NewScript(aclLua + `
local d = denied('XADD', KEYS[2], '*', 'f', 'v') or denied('XDEL', KEYS[1], ARGV[1])
if d then
	return d
end
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then
	return false
end
if ARGV[4] ~= '' then
	local ok, gs = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[2])
	if ok and #gs == 1 then
		local name, last
		for i = 1, #gs[1], 2 do
			if gs[1][i] == 'name' then
				name = gs[1][i + 1]
			elseif gs[1][i] == 'last-delivered-id' then
				last = gs[1][i + 1]
			end
		end
		if name == ARGV[4] and last then
			local p = redis.call('XPENDING', KEYS[2], name)
			if p[1] > 0 then
				last = p[2]
			end
			redis.pcall('XTRIM', KEYS[2], 'MINID', last)
		end
	end
end
local f = e[1][2]
local n = string.len(ARGV[2])
local a = {}
for i = 1, #f, 2 do
	if string.sub(f[i], 1, n) ~= ARGV[2] then
		a[#a + 1] = f[i]
		a[#a + 1] = f[i + 1]
	end
end
if #a == 0 then
	return 0
end
if #a > tonumber(ARGV[3]) then
	return 1
end
local id = redis.call('XADD', KEYS[2], '*', unpack(a))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`)

// Redrive sends dead-letter entries back as new entries holding their
// original fields, provenance stripped, and deletes them from the
// dead-letter stream. Each goes to the group it was dead-lettered from, and
// only to it: to the group's redrive stream (RedriveKey), which the
// consumers of the group (package consumer) read beside the source, so
// that other groups never see it. An entry that records no group goes to
// the source stream; with opts.Target, every entry goes to that stream, to
// be read by every group there. Redriven entries have new IDs (see
// RedriveResult.NewIDs).
//
// When the dead-letter stream and the target share a cluster slot (see Key
// and RedriveKey), each entry moves in one Lua script that first checks it
// still exists: concurrent or repeated Redrive calls never duplicate an
// entry, also after a crash or a lost reply; those that find it gone count
// it as skipped. Otherwise each entry takes XRANGE, then XADD together with
// a marker key named after the dead-letter entry (in the target's slot,
// expiring after MarkerTTL) unless the marker exists, then XDEL: a repeat
// after a crash between the steps or a lost reply finds the marker and only
// deletes. Entries of more than about 3500 fields take that path without a
// marker (a script cannot pass them to XADD): a crash between XADD and XDEL
// or a concurrent Redrive may add such an entry twice.
//
// Either way, before its first write Redrive checks that the user may run
// XADD on the target and XDEL on the dead-letter stream (Redis 7.0 and
// later, redis.acl_check_cmd); if not it returns a NOPERM error
// (redis.HasErrorPrefix(err, "NOPERM")) having added nothing to the target.
//
// Without opts.IDs, Redrive works through the entries present when it
// starts, so entries dead-lettered again meanwhile wait for the next call.
// It honours ctx between entries and while pacing (opts.Rate). On error
// the result counts what was done before it.
func (q *Queue) Redrive(ctx context.Context, opts RedriveOptions) (res RedriveResult, err error) {
	opts.IDs = slices.Clone(opts.IDs)
	target, err := opts.validate(q)
	if err != nil {
		return RedriveResult{}, err
	}
	ctx, span := q.startRedrive(ctx, &opts)
	defer func() { q.endRedrive(span, res, err) }()
	r := redriver{q: q, target: target, max: opts.Max,
		res: RedriveResult{NewIDs: make(map[string]string)}, checked: make(map[string]bool)}
	if opts.Rate > 0 {
		r.interval = time.Duration(min(float64(time.Second)/opts.Rate, float64(math.MaxInt64/2)))
	}
	if len(opts.IDs) > 0 {
		for _, id := range opts.IDs {
			group, ok, err := r.groupOf(ctx, id)
			if err != nil {
				return r.res, fmt.Errorf("deadletter: redrive %s: %w", id, err)
			}
			if !ok {
				r.res.Skipped++
				continue
			}
			if done, err := r.one(ctx, id, group); done || err != nil {
				return r.res, err
			}
		}
		return r.res, nil
	}
	f, ok, err := newFilter("", opts.Since, opts.Until, opts.ErrorContains, opts.Group)
	if err != nil || !ok {
		return r.res, err
	}
	// Stop at the last entry present now.
	last, err := q.client.XRevRangeN(ctx, q.key, "+", "-", 1).Result()
	if err != nil {
		return r.res, fmt.Errorf("deadletter: redrive: %w", err)
	}
	if len(last) == 0 {
		return r.res, nil
	}
	if f.end == "+" {
		f.end = last[0].ID
	} else if hi, err := midstream.ParseID(last[0].ID); err == nil {
		if end, _ := midstream.ParseID(f.end); hi.Compare(end) < 0 {
			f.end = hi.String()
		}
	}
	for {
		entries, next, err := q.scan(ctx, f, DefaultListLimit, math.MaxInt)
		if err != nil {
			return r.res, fmt.Errorf("deadletter: redrive: %w", err)
		}
		for _, e := range entries {
			if done, err := r.one(ctx, e.ID, e.Group); done || err != nil {
				return r.res, err
			}
		}
		if next == "" {
			return r.res, nil
		}
		id, err := midstream.ParseID(next)
		if err != nil {
			return r.res, fmt.Errorf("deadletter: redrive: %w", err)
		}
		f.start = id.Next().String()
	}
}

// redriver is the state of one Redrive call.
type redriver struct {
	q        *Queue
	target   string // "": per entry (targetOf)
	max      int
	interval time.Duration   // between entries; 0: no pacing
	next     time.Time       // earliest start of the next entry
	checked  map[string]bool // targets inSteps checked the user's permissions for
	res      RedriveResult
}

// targetOf returns where the entry dead-lettered from group goes, and the
// group whose redrive stream that is ("" for another stream).
func (r *redriver) targetOf(group string) (target, side string) {
	switch {
	case r.target != "":
		return r.target, ""
	case group == "":
		return r.q.source, ""
	}
	return RedriveKey(r.q.source, group), group
}

// groupOf reads the group a dead-letter entry records; ok is false when the
// entry does not exist.
func (r *redriver) groupOf(ctx context.Context, id string) (group string, ok bool, err error) {
	if r.target != "" {
		return "", true, nil // not needed
	}
	msgs, err := r.q.client.XRangeN(ctx, r.q.key, id, id, 1).Result()
	if err != nil || len(msgs) == 0 {
		return "", false, err
	}
	return ParseEntry(r.q.key, msgs[0]).Group, true, nil
}

// one redrives the entry id, dead-lettered from group. done is true when
// Redrive must stop (Max).
func (r *redriver) one(ctx context.Context, id, group string) (done bool, err error) {
	if r.max > 0 && r.res.Redriven >= r.max {
		return true, nil
	}
	if err := r.pace(ctx); err != nil {
		return true, err
	}
	target, side := r.targetOf(group)
	var newID string
	code := int64(1) // too large for the script: take the steps
	if keys.SameSlot(r.q.key, target) {
		newID, code, err = r.scripted(ctx, id, target, side)
	}
	if err == nil && code == 1 {
		newID, code, err = r.inSteps(ctx, id, target)
	}
	if newID != "" {
		r.res.Redriven++
		r.res.NewIDs[id] = newID
		r.q.log.DebugContext(ctx, "deadletter: redriven", "id", id, "target", target, "new_id", newID)
	}
	switch {
	case err != nil:
		return true, fmt.Errorf("deadletter: redrive %s: %w", id, err)
	case newID != "":
	case code == 0:
		r.res.Empty++
		r.q.log.DebugContext(ctx, "deadletter: not redriven: no original fields", "id", id)
	default:
		r.res.Skipped++
	}
	return false, nil
}

// pace waits until the next entry may start.
func (r *redriver) pace(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.interval == 0 {
		return nil
	}
	if d := time.Until(r.next); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	r.next = time.Now().Add(r.interval)
	return nil
}

// scripted runs redriveScript. It returns the new ID; or "" and code 0 (no
// fields), 1 (too many fields) or -1 (gone).
func (r *redriver) scripted(ctx context.Context, id, target, side string) (newID string, code int64, err error) {
	v, err := redriveScript.Run(ctx, r.q.client, []string{r.q.key, target},
		id, midstream.DeadLetterPrefix, maxScriptArgs, side).Result()
	switch v := v.(type) {
	case string:
		return v, 0, nil
	case int64:
		return "", v, nil
	}
	if errors.Is(err, redis.Nil) {
		return "", -1, nil
	}
	if err == nil {
		err = fmt.Errorf("unexpected script reply %T", v)
	}
	return "", 0, err
}

// redriveMarkScript is the write of Redrive's multi-command path: it adds
// the entry to the target and sets its marker, unless the marker exists.
//
//	KEYS[1] target stream, KEYS[2] marker
//	ARGV[1] marker TTL in milliseconds, ARGV[2..] field, value pairs
//
// It returns {new ID, 1} when it added the entry, {ID held by the marker,
// 0} when the marker existed. SET cannot fail after XADD: permissions are
// checked first, the marker's type by GET before any write, and memory
// only at the first write.
var redriveMarkScript = redis.NewScript(aclLua + `
local e = denied('XADD', KEYS[1], '*', ARGV[2], ARGV[3]) or denied('SET', KEYS[2], '0-1', 'PX', ARGV[1])
` + addOnceLua(1, 2))

// redriveMarker returns the marker of dead-letter entry id on the way to
// target: a key in target's slot naming the dead-letter stream and the ID.
func (r *redriver) redriveMarker(target, id string) string {
	return slotPrefix(target, ":redriven:") + strconv.Itoa(len(r.q.key)) + ":" + r.q.key + ":" + id
}

// inSteps reads the entry (XRANGE), adds it to the target together with
// its marker unless the marker exists (redriveMarkScript; a plain XADD for
// entries too large for a script), and deletes it (XDEL). It returns like
// scripted, without code 1. The first call for a target checks that the
// user may run XADD, SET and XDEL (aclScript), so that a user without XDEL
// does not get a copy in the target per attempt.
func (r *redriver) inSteps(ctx context.Context, id, target string) (newID string, code int64, err error) {
	marker := r.redriveMarker(target, id)
	if !r.checked[target] {
		if err := checkACL(ctx, r.q.client, r.q.key,
			[]any{"XADD", target, "*", "f", "v"},
			[]any{"SET", marker, "0-1", "PX", "1"},
			[]any{"XDEL", r.q.key, id},
		); err != nil {
			return "", 0, err
		}
		r.checked[target] = true
	}
	fields, ok, err := r.readOrdered(ctx, id)
	if err != nil || !ok {
		return "", -1, err
	}
	if len(fields) == 0 {
		return "", 0, nil
	}
	added := true
	if len(fields) <= maxScriptArgs {
		argv := append([]any{MarkerTTL.Milliseconds()}, fields...)
		var v []any
		v, err = redriveMarkScript.Run(ctx, r.q.client, []string{target, marker}, argv...).Slice()
		if err == nil && len(v) == 2 {
			newID, _ = v[0].(string)
			flag, _ := v[1].(int64)
			added = flag == 1
		} else if err == nil {
			err = fmt.Errorf("unexpected script reply %v", v)
		}
	} else {
		newID, err = r.q.client.XAdd(ctx, &redis.XAddArgs{Stream: target, Values: fields}).Result()
	}
	if err != nil {
		return "", 0, err
	}
	n, err := r.q.client.XDel(ctx, r.q.key, id).Result()
	if err != nil {
		return newID, 0, fmt.Errorf("added to %s as %s but not deleted: %w", target, newID, err)
	}
	switch {
	case !added && n == 0:
		return "", -1, nil // an earlier attempt did it all
	case !added:
		r.q.log.DebugContext(ctx, "deadletter: already redriven by an earlier attempt: deleting only", "id", id, "target", target, "new_id", newID)
	case n == 0:
		r.q.log.WarnContext(ctx, "deadletter: redriven twice: the entry was removed by someone else meanwhile",
			"id", id, "target", target, "new_id", newID)
	}
	return newID, 0, nil
}

// readOrdered returns the entry's field, value pairs in stored order,
// provenance stripped (go-redis's XRANGE reply is a map, which loses the
// order).
func (r *redriver) readOrdered(ctx context.Context, id string) (pairs []any, ok bool, err error) {
	reply, err := r.q.client.Do(ctx, "XRANGE", r.q.key, id, id).Slice()
	if err != nil || len(reply) == 0 {
		return nil, false, err
	}
	entry, _ := reply[0].([]any)
	if len(entry) != 2 {
		return nil, false, fmt.Errorf("unexpected XRANGE reply %v", reply[0])
	}
	raw, _ := entry[1].([]any)
	for i := 0; i+1 < len(raw); i += 2 {
		name := fieldString(raw[i])
		if !strings.HasPrefix(name, midstream.DeadLetterPrefix) {
			pairs = append(pairs, name, fieldString(raw[i+1]))
		}
	}
	return pairs, true, nil
}

// Delete removes the given dead-letter entries (XDEL) and returns how many
// existed.
func (q *Queue) Delete(ctx context.Context, ids ...string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	norm := make([]string, len(ids))
	for i, id := range ids {
		nid, err := normID(id)
		if err != nil {
			return 0, fmt.Errorf("%w: delete: %w", midstream.ErrInvalidOption, err)
		}
		norm[i] = nid
	}
	n, err := q.client.XDel(ctx, q.key, norm...).Result()
	if err != nil {
		return 0, fmt.Errorf("deadletter: delete: %w", err)
	}
	return n, nil
}

// purgeScript deletes a stream and returns how many entries it held. XLEN
// fails on a key of another type, so such a key is left alone.
var purgeScript = redis.NewScript(`
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
`)

// Purge deletes the dead-letter stream (DEL) and returns how many entries it
// held. Consumer groups created on the dead-letter stream go with it.
func (q *Queue) Purge(ctx context.Context) (int64, error) {
	n, err := purgeScript.Run(ctx, q.client, []string{q.key}).Int64()
	if err != nil {
		return 0, fmt.Errorf("deadletter: purge: %w", err)
	}
	return n, nil
}
