package rediserr

import (
	"fmt"

	"github.com/midstream-go/midstream"
)

// ConfigAttempts is how many Config errors in a row a loop retries before
// it gives up (see Streak): enough to ride out an ACL or a key being
// replaced, few enough that a misconfiguration surfaces within seconds.
const ConfigAttempts = 5

// Streak tracks whether a Config error persists: it counts the Config
// errors observed in a row, and a success or an error of another class
// starts the count over. The zero value is ready; it is not safe for
// concurrent use (one per loop, or per thing a loop retries).
type Streak struct{ n int }

// Observe records the outcome of one attempt (err nil for a success) and
// reports whether a Config error has now persisted for ConfigAttempts
// attempts in a row: then the loop returns Fatal(op, err).
func (s *Streak) Observe(err error) (fatal bool) {
	if err == nil || Classify(err) != Config {
		s.n = 0
		return false
	}
	s.n++
	return s.n >= ConfigAttempts
}

// Reset starts the count over.
func (s *Streak) Reset() { s.n = 0 }

// Fatal returns the error a loop ends with when a Config error persisted:
// it wraps midstream.ErrMisconfigured and err, with op saying what failed.
func Fatal(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", midstream.ErrMisconfigured, op, err)
}
