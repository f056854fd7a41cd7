package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/internal/telemetry"
	"github.com/midstream-go/midstream/live"
)

// Entry fields, as in the article's layout.
const (
	FieldContent      = "content"      // the notification's text
	FieldRead         = "read"         // "true" or "false" as written; "true" counts as read
	FieldCreatedAt    = "createdAt"    // Unix milliseconds
	FieldMarkedReadID = "markedReadId" // in a read-marker entry: the ID marked read
	FieldReadAt       = "readAt"       // in a read-marker entry: Unix milliseconds
)

// ErrCountBudget is returned (wrapped) when a call would have to read more
// entries than the count budget allows: by UnreadCount when more entries
// follow the read watermark (the count it returns with it covers the
// entries read), and by List and Unread when more read markers than that
// wait to be folded (Sync folds them).
var ErrCountBudget = errors.New("notify: unread count budget exhausted")

// Notifier sends and lists per-user notifications kept in one stream per
// user. It is safe for concurrent use and never closes the client it was
// given.
type Notifier struct {
	client redis.UniversalClient
	cfg    config
	tel    *telemetry.Ops
}

// Notification is one notification as listed.
type Notification struct {
	ID        string
	Content   string
	CreatedAt time.Time // zero if the entry has no valid createdAt
	Read      bool
	Fields    map[string]string // every field of the entry (WithFields, WithValue)
}

// Page is one page of a list, newest first. Next is the cursor of the next
// (older) page, or "" when there is none.
type Page struct {
	Items []Notification
	Next  string
}

// New returns a Notifier over client. The caller keeps ownership of client.
// Bad options fail with an error wrapping midstream.ErrInvalidOption.
func New(client redis.UniversalClient, opts ...Option) (*Notifier, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	cfg := config{prefix: DefaultKeyPrefix, budget: DefaultCountBudget, window: DefaultMarkerWindow,
		markers: true, idemTTL: DefaultIdempotencyTTL}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	return &Notifier{client: client, cfg: cfg, tel: telemetry.NewOps(cfg.tp, cfg.mp)}, nil
}

// Stream returns the key of user's notification stream.
func (n *Notifier) Stream(user string) string { return n.cfg.prefix + user }

// Channel returns the pub/sub channel Send publishes user's notifications on.
func (n *Notifier) Channel(user string) string { return n.Stream(user) + ":live" }

// StateKey returns the hash holding user's read watermark ("upto") and fold
// cursor ("synced"): "{notifications:123}:notify-state" for the stream
// notifications:123. It shares the stream's cluster slot and is not under
// the stream's prefix, so a scan of notifications:* never meets it.
func (n *Notifier) StateKey(user string) string { return keys.Apart(n.Stream(user), "notify-state") }

// ReadSetKey returns the sorted set of user's notifications above the
// watermark that are marked read, beside StateKey.
func (n *Notifier) ReadSetKey(user string) string { return keys.Apart(n.Stream(user), "notify-read") }

func (n *Notifier) idemKey(user, key string) string {
	return keys.Apart(n.Stream(user), "notify-idem:"+strconv.Itoa(len(key))+":"+key)
}

// legacyKeys returns the keys in which earlier versions kept the read state:
// watermark, read set, fold cursor.
func (n *Notifier) legacyKeys(user string) [3]string {
	s := n.Stream(user)
	return [3]string{s + ":read-upto", s + ":read", s + ":read-synced"}
}

// keys returns stream, state hash and read set of user.
func (n *Notifier) keys(user string) ([]string, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", midstream.ErrInvalidOption)
	}
	s := n.Stream(user)
	if err := midstream.CheckStream(s); err != nil {
		return nil, err
	}
	return []string{s, n.StateKey(user), n.ReadSetKey(user)}, nil
}

func nowMillis() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// MarkRead marks the notification id of user read: in the read set, and,
// unless WithoutReadMarkers, with a read marker {markedReadId, readAt}
// appended to the stream the article's way, so that the article's
// getUnreadNotifications agrees. Marking an ID already read, a marker or an
// ID not in the stream does nothing. It then folds and advances the
// watermark by a bounded step (see Sync).
func (n *Notifier) MarkRead(ctx context.Context, user, id string) error {
	ks, err := n.keys(user)
	if err != nil {
		return err
	}
	pid, err := midstream.ParseID(id)
	if err != nil {
		return err
	}
	ctx, span := n.tel.Start(ctx, "mark_read", n.cfg.prefix, true)
	_, err = n.write(ctx, user, markReadScript, ks, pid.String(), n.markersArg(), nowMillis(), n.cfg.maxLen, stepEntries)
	if err != nil {
		err = fmt.Errorf("notify: mark %s read for %s: %w", id, user, err)
	}
	n.tel.End(span, err)
	return err
}

// MarkAllRead marks every notification of user read: the watermark moves
// to the stream's last entry. Unless WithoutReadMarkers, it first appends
// a read marker for each notification among the WithMarkerWindow newest
// entries that has none there (at most that many: bounded work), so that
// the article's reader, which looks at the 100 newest entries, sees none
// unread.
func (n *Notifier) MarkAllRead(ctx context.Context, user string) error {
	ks, err := n.keys(user)
	if err != nil {
		return err
	}
	window := n.cfg.window
	if !n.cfg.markers {
		window = 0
	}
	ctx, span := n.tel.Start(ctx, "mark_all_read", n.cfg.prefix, true)
	_, err = n.write(ctx, user, markAllReadScript, ks, window, nowMillis(), n.cfg.maxLen)
	if err != nil {
		err = fmt.Errorf("notify: mark all read for %s: %w", user, err)
	}
	n.tel.End(span, err)
	return err
}

// Sync folds the read markers other clients appended (the article's
// markNotificationRead) into user's read state and moves the watermark
// over the read entries after it, in steps of a bounded number of entries,
// one script each, until done or ctx ends. List, Unread and UnreadCount
// honour markers that are not folded yet, reading them on every call: Sync
// (which MarkRead and MarkAllRead do a step of) keeps that work small for
// streams other clients write to. Sync also finishes a migration from the
// earlier layout's keys that was interrupted.
func (n *Notifier) Sync(ctx context.Context, user string) error {
	ks, err := n.keys(user)
	if err != nil {
		return err
	}
	// Keys of the earlier layout left by an interrupted migration are
	// brought over (again: it is idempotent) and deleted.
	l, err := n.legacy(ctx, n.legacyKeys(user))
	if err != nil {
		return fmt.Errorf("notify: sync %s: %w", user, err)
	}
	if l.found != [3]bool{} {
		if err := n.init(ctx, user, ks); err != nil {
			return fmt.Errorf("notify: sync %s: %w", user, err)
		}
	}
	for {
		done, err := n.write(ctx, user, syncScript, ks, stepEntries)
		if err != nil {
			return fmt.Errorf("notify: sync %s: %w", user, err)
		}
		if done == 1 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (n *Notifier) markersArg() string {
	if n.cfg.markers {
		return "1"
	}
	return "0"
}

// write runs a write script; when it reports a state that needs
// initializing (-1), it initializes it and runs the script again.
func (n *Notifier) write(ctx context.Context, user string, s *redis.Script, ks []string, args ...any) (int64, error) {
	for range 2 {
		r, err := s.Run(ctx, n.client, ks, args...).Int64()
		if err != nil || r != -1 {
			return r, err
		}
		if err := n.init(ctx, user, ks); err != nil {
			return 0, err
		}
	}
	return 0, errors.New("state not initialized")
}

// init creates user's state, bringing over the state earlier versions kept
// under the stream's own prefix (watermark, read set, fold cursor), which
// it then deletes: the read set first, the state hash (which takes the
// watermark) next, the old keys last, so that a crash between two steps
// loses nothing and a repeat does no harm.
func (n *Notifier) init(ctx context.Context, user string, ks []string) error {
	old := n.legacyKeys(user)
	l, err := n.legacy(ctx, old)
	if err != nil {
		return err
	}
	members := make([]redis.Z, 0, len(l.read))
	for id := range l.read {
		if pid, err := midstream.ParseID(id); err == nil && l.wm.Compare(pid) < 0 {
			members = append(members, redis.Z{Member: padID(pid)})
		}
	}
	for len(members) > 0 {
		chunk := members[:min(len(members), 1000)]
		members = members[len(chunk):]
		if err := n.client.ZAdd(ctx, ks[2], chunk...).Err(); err != nil {
			return err
		}
	}
	if err := initScript.Run(ctx, n.client, ks, l.wm.String(), l.synced.String()).Err(); err != nil {
		return err
	}
	for i, found := range l.found {
		if found {
			if err := n.client.Del(ctx, old[i]).Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Live follows user's notifications from from (an entry ID, live.Now or
// live.Beginning) with the guarantees of live.Subscribe: in ID order, each
// once, across lost connections. Read-marker entries are not delivered;
// decode entries with Decode.
func (n *Notifier) Live(ctx context.Context, user, from string) (*live.Subscription, error) {
	if _, err := n.keys(user); err != nil {
		return nil, err
	}
	opts := append([]live.Option{live.WithFilter(skipMarkers)}, n.cfg.liveOps...)
	return live.Subscribe(ctx, n.client, n.Stream(user), n.Channel(user), from, opts...)
}

func skipMarkers(_ context.Context, page []midstream.Entry) ([]midstream.Entry, error) {
	out := page[:0]
	for _, e := range page {
		if _, marker := e.Fields[FieldMarkedReadID]; !marker {
			out = append(out, e)
		}
	}
	return out, nil
}

// Decode turns an entry of a notification stream into a Notification. Read
// reflects only the entry's own read field: List and Unread also apply the
// read watermark, the read set and read markers.
func Decode(e midstream.Entry) Notification {
	nt := Notification{ID: e.ID, Content: e.Fields[FieldContent], Read: e.Fields[FieldRead] == "true", Fields: e.Fields}
	if ms, err := strconv.ParseInt(e.Fields[FieldCreatedAt], 10, 64); err == nil {
		nt.CreatedAt = time.UnixMilli(ms)
	}
	return nt
}

// fields converts a go-redis message's values.
func fields(m redis.XMessage) map[string]string { return midstream.Values(m.Values).Map() }
