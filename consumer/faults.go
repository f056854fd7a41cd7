package consumer

import (
	"context"
	"sync"

	"github.com/midstream-go/midstream/internal/rediserr"
)

// The paths of a running consumer whose errors are tracked apart.
const (
	opRead    = "read"
	opRecover = "recreate the group"
	opAck     = "acknowledge"
	opClaim   = "claim"
	opAudit   = "audit"
	opLease   = "extend leases"
	opMove    = "dead-letter"
	opRetry   = "retry"
	opStart   = "start a reclaimed entry"
)

// errClass is what an error from Redis calls for (see package rediserr).
type errClass = rediserr.Class

const (
	classTransient = rediserr.Transient // retry with backoff
	classTopology  = rediserr.Topology  // refresh the client's view of the servers, then retry
	classConfig    = rediserr.Config    // retrying cannot fix it: surfaced
	classNoGroup   = rediserr.NoGroup   // the group (or stream) is gone: recreate it
)

// classify sorts err.
func classify(err error) errClass { return rediserr.Classify(err) }

// configAttempts is how many times in a row one path of a running consumer
// meets a configuration error (NOPERM, WRONGTYPE, an unknown command…)
// before Run stops and returns it.
const configAttempts = rediserr.ConfigAttempts

// faults watches the errors of a running consumer's paths: a
// configuration error that persists on one path for configAttempts
// attempts in a row stops Run, which returns it wrapped in
// midstream.ErrMisconfigured.
type faults struct {
	mu     sync.Mutex
	streak map[string]int
	stop   context.CancelCauseFunc // nil while not running
}

// observe records the outcome of one attempt of op (err nil: success) and
// returns err's class.
func (f *faults) observe(op string, err error) errClass {
	if err == nil {
		f.mu.Lock()
		delete(f.streak, op)
		f.mu.Unlock()
		return classTransient
	}
	class := classify(err)
	f.mu.Lock()
	defer f.mu.Unlock()
	if class != classConfig {
		delete(f.streak, op)
		return class
	}
	if f.streak == nil {
		f.streak = make(map[string]int)
	}
	f.streak[op]++
	if f.streak[op] >= configAttempts && f.stop != nil {
		f.stop(rediserr.Fatal("consumer: "+op, err))
	}
	return class
}

// start arms f for one Run.
func (f *faults) start(stop context.CancelCauseFunc) {
	f.mu.Lock()
	f.streak, f.stop = nil, stop
	f.mu.Unlock()
}

// refresh makes the client look up the cluster's topology again after a
// topology error (a dead master is otherwise noticed only by go-redis's
// periodic reload).
func (c *Consumer) refresh(ctx context.Context) { rediserr.Refresh(ctx, c.client) }
