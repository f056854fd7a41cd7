package ops

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// Entry is one stream entry.
type Entry struct {
	Stream string `json:"stream"`
	ID     string `json:"id"`
	// Time is when Redis added it, by its ID.
	Time   time.Time         `json:"time"`
	Fields map[string]string `json:"fields"`
}

// NewEntry converts an entry as go-redis returns it.
func NewEntry(stream string, m redis.XMessage) Entry {
	e := Entry{Stream: stream, ID: m.ID, Fields: midstream.Values(m.Values).Map()}
	if id, err := midstream.ParseID(m.ID); err == nil {
		e.Time = id.Time().UTC()
	}
	return e
}

// GetEntry returns the entry id of stream, and whether it exists.
func GetEntry(ctx context.Context, client redis.UniversalClient, stream, id string) (Entry, bool, error) {
	p, err := midstream.ParseID(id)
	if err != nil {
		return Entry{}, false, fmt.Errorf("%w: %w", midstream.ErrInvalidOption, err)
	}
	ms, err := client.XRange(ctx, stream, p.String(), p.String()).Result()
	if err != nil {
		return Entry{}, false, fmt.Errorf("XRANGE %s: %w", stream, err)
	}
	if len(ms) == 0 {
		return Entry{}, false, nil
	}
	return NewEntry(stream, ms[0]), true, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
