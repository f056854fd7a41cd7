package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
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

// ErrCountBudget is returned (wrapped) by UnreadCount when more entries
// follow the read watermark than the count budget allows it to read; the
// count it returns with it is a lower bound.
var ErrCountBudget = errors.New("notify: unread count budget exhausted")

// Notifier sends and lists per-user notifications kept in one stream per
// user. It is safe for concurrent use and never closes the client it was
// given.
type Notifier struct {
	client redis.UniversalClient
	cfg    config
}

// Notification is one notification as listed.
type Notification struct {
	ID        string
	Content   string
	CreatedAt time.Time // zero if the entry has no valid createdAt
	Read      bool
	Fields    map[string]string // every field of the entry
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
	cfg := config{prefix: DefaultKeyPrefix, budget: DefaultCountBudget}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	return &Notifier{client: client, cfg: cfg}, nil
}

// Stream returns the key of user's notification stream.
func (n *Notifier) Stream(user string) string { return n.cfg.prefix + user }

// Channel returns the pub/sub channel Send publishes user's notifications on.
func (n *Notifier) Channel(user string) string { return n.Stream(user) + ":live" }

func (n *Notifier) keys(user string) ([]string, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", midstream.ErrInvalidOption)
	}
	s := n.Stream(user)
	if err := midstream.CheckStream(s); err != nil {
		return nil, err
	}
	return []string{s, s + ":read-upto", s + ":read", s + ":read-synced"}, nil
}

// Send adds a notification for user ({content, read: "false", createdAt})
// and publishes {"id": ..., "content": ...} on its channel, atomically, and
// returns its ID. With WithMaxLen the stream is trimmed on the way.
func (n *Notifier) Send(ctx context.Context, user, content string) (string, error) {
	keys, err := n.keys(user)
	if err != nil {
		return "", err
	}
	created := strconv.FormatInt(time.Now().UnixMilli(), 10)
	id, err := sendScript.Run(ctx, n.client, []string{keys[0], n.Channel(user)},
		content, created, strconv.FormatInt(n.cfg.maxLen, 10)).Text()
	if err != nil {
		return "", fmt.Errorf("notify: send to %s: %w", user, err)
	}
	return id, nil
}

// MarkRead marks the notification id of user read. Marking an ID at or
// below the read watermark, or twice, does nothing.
func (n *Notifier) MarkRead(ctx context.Context, user, id string) error {
	keys, err := n.keys(user)
	if err != nil {
		return err
	}
	pid, err := midstream.ParseID(id)
	if err != nil {
		return err
	}
	if err := markReadScript.Run(ctx, n.client, keys, pid.String()).Err(); err != nil {
		return fmt.Errorf("notify: mark %s read for %s: %w", id, user, err)
	}
	return nil
}

// MarkAllRead marks every notification of user read.
func (n *Notifier) MarkAllRead(ctx context.Context, user string) error {
	keys, err := n.keys(user)
	if err != nil {
		return err
	}
	if err := markAllReadScript.Run(ctx, n.client, keys).Err(); err != nil {
		return fmt.Errorf("notify: mark all read for %s: %w", user, err)
	}
	return nil
}

// UnreadCount returns how many notifications of user are unread. It reads
// only the entries after the read watermark, at most the count budget of
// them; when more follow, it returns the count so far and an error wrapping
// ErrCountBudget.
func (n *Notifier) UnreadCount(ctx context.Context, user string) (int64, error) {
	keys, err := n.keys(user)
	if err != nil {
		return 0, err
	}
	res, err := unreadCountScript.Run(ctx, n.client, keys, n.cfg.budget).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("notify: unread count for %s: %w", user, err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("notify: unread count for %s: unexpected reply %v", user, res)
	}
	if res[1] == 1 {
		return res[0], fmt.Errorf("%w: more than %d entries after the watermark", ErrCountBudget, n.cfg.budget)
	}
	return res[0], nil
}

// List returns up to limit notifications of user, newest first, starting
// after cursor ("" for the newest). Read-marker entries are never listed.
// limit is from 1 to MaxListLimit.
func (n *Notifier) List(ctx context.Context, user, cursor string, limit int) (Page, error) {
	return n.list(ctx, user, cursor, limit, false)
}

// Unread is List restricted to unread notifications. It reads nothing at or
// below the read watermark.
func (n *Notifier) Unread(ctx context.Context, user, cursor string, limit int) (Page, error) {
	return n.list(ctx, user, cursor, limit, true)
}

func (n *Notifier) list(ctx context.Context, user, cursor string, limit int, unreadOnly bool) (Page, error) {
	keys, err := n.keys(user)
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
	state, err := stateScript.Run(ctx, n.client, keys).Slice()
	if err != nil {
		return Page{}, fmt.Errorf("notify: read state of %s: %w", user, err)
	}
	if len(state) != 2 {
		return Page{}, fmt.Errorf("notify: read state of %s: unexpected reply %v", user, state)
	}
	wmStr, _ := state[0].(string)
	wm, err := midstream.ParseID(wmStr)
	if err != nil {
		return Page{}, err
	}
	readSet := map[string]bool{}
	if members, ok := state[1].([]any); ok {
		for _, m := range members {
			if s, ok := m.(string); ok {
				readSet[s] = true
			}
		}
	}
	start := "-"
	if unreadOnly {
		start = "(" + wm.String()
	}
	var page Page
	for {
		msgs, err := n.client.XRevRangeN(ctx, keys[0], end, start, int64(limit)).Result()
		if err != nil {
			return Page{}, fmt.Errorf("notify: list %s: %w", user, err)
		}
		for _, m := range msgs {
			end = "(" + m.ID
			nt, ok := decode(keys[0], m)
			if !ok {
				continue // a read marker
			}
			id, err := midstream.ParseID(m.ID)
			if err != nil {
				return Page{}, err
			}
			nt.Read = nt.Read || id.Compare(wm) <= 0 || readSet[m.ID]
			if unreadOnly && nt.Read {
				continue
			}
			page.Items = append(page.Items, nt)
			if len(page.Items) == limit {
				page.Next = m.ID
				return page, nil
			}
		}
		if len(msgs) < limit {
			return page, nil
		}
	}
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

// decode converts a go-redis message; ok is false for read markers.
func decode(stream string, m redis.XMessage) (Notification, bool) {
	f := make(map[string]string, len(m.Values))
	for k, v := range m.Values {
		if s, ok := v.(string); ok {
			f[k] = s
		} else {
			f[k] = fmt.Sprint(v)
		}
	}
	if _, marker := f[FieldMarkedReadID]; marker {
		return Notification{}, false
	}
	return Decode(midstream.Entry{Stream: stream, ID: m.ID, Fields: f}), true
}
