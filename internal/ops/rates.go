package ops

import "time"

// StreamRate is a stream's summary with its rates since an earlier one.
type StreamRate struct {
	StreamSummary
	// AddedPerSec is how many entries were added per second (from
	// entries_added; Redis 7.0 and later).
	AddedPerSec float64 `json:"added_per_sec"`
	// DeliveredPerSec is how many entries its groups read per second, all
	// groups together (from entries_read).
	DeliveredPerSec float64 `json:"delivered_per_sec"`
}

// Rates pairs each stream of cur (taken at now) with its summary in prev
// (taken at then) and returns its rates; a stream new in cur, a counter
// that went back (the stream was recreated) or a zero interval rate 0.
func Rates(prev []StreamSummary, then time.Time, cur []StreamSummary, now time.Time) []StreamRate {
	before := make(map[string]StreamSummary, len(prev))
	for _, s := range prev {
		before[s.Stream] = s
	}
	secs := now.Sub(then).Seconds()
	out := make([]StreamRate, len(cur))
	for i, s := range cur {
		out[i].StreamSummary = s
		p, ok := before[s.Stream]
		if !ok || secs <= 0 {
			continue
		}
		if d := s.EntriesAdded - p.EntriesAdded; d > 0 {
			out[i].AddedPerSec = float64(d) / secs
		}
		if d := s.EntriesRead - p.EntriesRead; d > 0 {
			out[i].DeliveredPerSec = float64(d) / secs
		}
	}
	return out
}
