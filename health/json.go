package health

import (
	"encoding/json"
	"errors"
	"time"
)

// The mirrors of the exported types that carry the JSON field names (see
// the package documentation, "JSON").
type (
	streamJSON struct {
		Stream       string           `json:"stream"`
		Length       int64            `json:"length"`
		LastID       string           `json:"last_id"`
		EntriesAdded int64            `json:"entries_added"`
		Time         time.Time        `json:"time"`
		DeadLetter   DeadLetterHealth `json:"dead_letter"`
		Groups       []GroupHealth    `json:"groups"`
	}
	groupJSON struct {
		Name                    string           `json:"name"`
		ConsumerCount           int64            `json:"consumer_count"`
		Pending                 int64            `json:"pending"`
		OldestPendingID         string           `json:"oldest_pending_id"`
		OldestPendingAgeMs      int64            `json:"oldest_pending_age_ms"`
		OldestPendingIdleMs     int64            `json:"oldest_pending_idle_ms"`
		OldestPendingDeliveries int64            `json:"oldest_pending_deliveries"`
		LastDeliveredID         string           `json:"last_delivered_id"`
		EntriesRead             *int64           `json:"entries_read"`
		Lag                     *int64           `json:"lag"`
		Consumers               []ConsumerHealth `json:"consumers"`
	}
	consumerJSON struct {
		Name       string `json:"name"`
		Pending    int64  `json:"pending"`
		IdleMs     int64  `json:"idle_ms"`
		InactiveMs int64  `json:"inactive_ms"`
	}
	deadLetterJSON struct {
		Key    string `json:"key"`
		Length int64  `json:"length"`
	}
)

// MarshalJSON writes the snapshot in its documented JSON form (see the
// package documentation, "JSON").
func (s StreamHealth) MarshalJSON() ([]byte, error) {
	groups := s.Groups
	if groups == nil {
		groups = []GroupHealth{}
	}
	return json.Marshal(streamJSON{Stream: s.Stream, Length: s.Length, LastID: s.LastID,
		EntriesAdded: s.EntriesAdded, Time: s.Time, DeadLetter: s.DeadLetter, Groups: groups})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (s *StreamHealth) UnmarshalJSON(b []byte) error {
	var j streamJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = StreamHealth{Stream: j.Stream, Length: j.Length, LastID: j.LastID, EntriesAdded: j.EntriesAdded,
		Time: j.Time, DeadLetter: j.DeadLetter, Groups: j.Groups}
	return nil
}

// MarshalJSON writes the group in its documented JSON form: durations in
// milliseconds, lag and entries_read null when Redis could not tell them.
func (g GroupHealth) MarshalJSON() ([]byte, error) {
	j := groupJSON{Name: g.Name, ConsumerCount: g.ConsumerCount, Pending: g.Pending,
		OldestPendingID: g.OldestPendingID, OldestPendingAgeMs: g.OldestPendingAge.Milliseconds(),
		OldestPendingIdleMs: g.OldestPendingIdle.Milliseconds(), OldestPendingDeliveries: g.OldestPendingDeliveries,
		LastDeliveredID: g.LastDeliveredID, Consumers: g.Consumers}
	if g.LagKnown {
		j.Lag = &g.Lag
	}
	if g.EntriesReadKnown {
		j.EntriesRead = &g.EntriesRead
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (g *GroupHealth) UnmarshalJSON(b []byte) error {
	var j groupJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*g = GroupHealth{Name: j.Name, ConsumerCount: j.ConsumerCount, Pending: j.Pending,
		OldestPendingID: j.OldestPendingID, OldestPendingAge: time.Duration(j.OldestPendingAgeMs) * time.Millisecond,
		OldestPendingIdle:       time.Duration(j.OldestPendingIdleMs) * time.Millisecond,
		OldestPendingDeliveries: j.OldestPendingDeliveries, LastDeliveredID: j.LastDeliveredID, Consumers: j.Consumers}
	if j.Lag != nil {
		g.Lag, g.LagKnown = *j.Lag, true
	}
	if j.EntriesRead != nil {
		g.EntriesRead, g.EntriesReadKnown = *j.EntriesRead, true
	}
	return nil
}

// MarshalJSON writes the consumer in its documented JSON form.
func (c ConsumerHealth) MarshalJSON() ([]byte, error) {
	return json.Marshal(consumerJSON{Name: c.Name, Pending: c.Pending, IdleMs: c.Idle.Milliseconds(), InactiveMs: c.Inactive.Milliseconds()})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (c *ConsumerHealth) UnmarshalJSON(b []byte) error {
	var j consumerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = ConsumerHealth{Name: j.Name, Pending: j.Pending, Idle: time.Duration(j.IdleMs) * time.Millisecond,
		Inactive: time.Duration(j.InactiveMs) * time.Millisecond}
	return nil
}

// MarshalJSON writes the dead-letter stream's key and length.
func (d DeadLetterHealth) MarshalJSON() ([]byte, error) {
	return json.Marshal(deadLetterJSON(d))
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (d *DeadLetterHealth) UnmarshalJSON(b []byte) error {
	var j deadLetterJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = DeadLetterHealth(j)
	return nil
}

// partitionedJSON is the JSON form of PartitionedHealth.
type partitionedJSON struct {
	Stream     string         `json:"stream"`
	Time       time.Time      `json:"time"`
	Total      StreamHealth   `json:"total"`
	Partitions []StreamHealth `json:"partitions"`
	Errors     []*string      `json:"errors,omitempty"`
}

// MarshalJSON writes the snapshot in its documented JSON form (see the
// package documentation, "JSON"): the logical stream's name, the time,
// the total and the partitions, each in StreamHealth's form, and, when a
// partition could not be read, the errors (the text of Errors[i], null for
// a partition that was read).
func (p PartitionedHealth) MarshalJSON() ([]byte, error) {
	parts := p.Partitions
	if parts == nil {
		parts = []StreamHealth{}
	}
	var errs []*string
	if p.Errors != nil {
		errs = make([]*string, len(p.Errors))
		for i, err := range p.Errors {
			if err != nil {
				msg := err.Error()
				errs[i] = &msg
			}
		}
	}
	return json.Marshal(partitionedJSON{Stream: p.Stream, Time: p.Time, Total: p.Total, Partitions: parts, Errors: errs})
}

// UnmarshalJSON reads the form MarshalJSON writes; an error comes back as
// an error with the same text.
func (p *PartitionedHealth) UnmarshalJSON(b []byte) error {
	var j partitionedJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = PartitionedHealth{Stream: j.Stream, Time: j.Time, Total: j.Total, Partitions: j.Partitions}
	if j.Errors != nil {
		p.Errors = make([]error, len(j.Errors))
		for i, msg := range j.Errors {
			if msg != nil {
				p.Errors[i] = errors.New(*msg)
			}
		}
	}
	return nil
}
