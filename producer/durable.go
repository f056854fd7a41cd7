package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// Bounds of WithDurable.
const (
	// MaxDurableReplicas bounds the replicas WithDurable waits for.
	MaxDurableReplicas = 64
	// MaxDurableTimeout bounds how long one publish waits for them.
	MaxDurableTimeout = time.Minute
)

// ErrNotDurable is wrapped by the error of a durable publish (WithDurable)
// whose entries were written to the master but not confirmed by enough
// replicas in time. The entries are in the stream (their IDs are returned
// with the error) but a failover may lose them; see DurabilityError.
var ErrNotDurable = errors.New("producer: not confirmed by enough replicas")

// DurabilityError is the error of a durable publish whose entries the
// master added but too few replicas confirmed within the timeout, or whose
// WAIT failed (Err). The entries are in the master's stream: Publish and
// PublishBatch return their IDs with it. Until a replica has them, a
// failover (the master dies and a replica that lacks them is promoted) loses
// them. Publishing again may add them twice; with an idempotency key or an
// explicit ID it does not.
type DurabilityError struct {
	// Acked is how many replicas confirmed the write (WAIT's reply); zero
	// when WAIT failed.
	Acked int
	// Want is how many WithDurable asked for.
	Want int
	// Err is WAIT's own error, nil when it answered with too few replicas.
	Err error
}

func (e *DurabilityError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v: waiting for %d replicas: %v", ErrNotDurable, e.Want, e.Err)
	}
	return fmt.Sprintf("%v: %d of %d replicas confirmed", ErrNotDurable, e.Acked, e.Want)
}

// Unwrap returns ErrNotDurable and WAIT's error, if any.
func (e *DurabilityError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrNotDurable, e.Err}
	}
	return []error{ErrNotDurable}
}

// durability is the setting of WithDurable.
type durability struct {
	replicas int
	timeout  time.Duration
}

// WithDurable makes every publish wait, after its XADD, until at least
// replicas replicas of the stream's master have it (WAIT replicas timeout,
// on the connection that wrote it), for at most timeout. Coalesced publishes
// and a PublishBatch share one WAIT. If fewer replicas confirm in time, the
// call returns the entries' IDs with a *DurabilityError (ErrNotDurable).
// PublishIn and PublishAt do not wait: neither for the delayed entry they
// store nor for its XADD when it is moved to the stream.
//
// What it guarantees: an entry whose publish returned no error was on the
// master and on at least replicas replicas at that moment, so a failover
// that promotes one of those replicas keeps it. Redis Cluster and Sentinel
// promote the most up-to-date replica they can reach; with replicas equal
// to the number of replicas, any promoted one has it. Under Sentinel, count
// every replica: SENTINEL FAILOVER promotes a replica while the old master
// still runs and takes writes from clients that have not yet heard of the
// switch; a replica still following the old master confirms those, then
// resyncs from the promoted one and drops them (with two replicas and
// WithDurable(1), a failover test lost hundreds of entries so confirmed;
// with WithDurable(2), or one replica and WithDurable(1), none). What it
// does not: WAIT
// is not a consensus write. The write is visible on the master before the
// replicas confirm, and an entry reported as not durable may or may not
// survive. A replica confirms receipt, not an fsync (WAITAOF, on Redis 7.2
// and later, is not used). A master cut off from its replicas keeps
// accepting writes until it notices (Cluster: cluster-node-timeout;
// Sentinel: min-replicas-to-write) and those fail here as not durable.
//
// The XADDs and WAIT go to the node the client takes for the stream's
// master. If that node refuses every XADD without writing it (MOVED or
// READONLY after a failover the client has not heard of yet), the publish
// is sent again, up to three times, to the master the client learns of
// (a cluster client is refreshed and given up to a second each time). A
// durable publish does not follow ASK: while the stream's slot is being
// migrated to another master, one that meets ASK fails with it at once.
//
// replicas is 1 to MaxDurableReplicas, timeout more than zero and at most
// MaxDurableTimeout. The client must be a *redis.Client (also the one a
// Sentinel failover client is) or a *redis.ClusterClient; New refuses a Ring.
func WithDurable(replicas int, timeout time.Duration) Option {
	return func(cfg *config) {
		switch {
		case replicas < 1 || replicas > MaxDurableReplicas:
			cfg.fail("durable: replicas %d not in [1, %d]", replicas, MaxDurableReplicas)
		case timeout <= 0 || timeout > MaxDurableTimeout:
			cfg.fail("durable: timeout %s not in (0, %s]", timeout, MaxDurableTimeout)
		case timeout%time.Millisecond != 0:
			cfg.fail("durable: timeout %s is not a whole number of milliseconds", timeout)
		default:
			cfg.durable = &durability{replicas: replicas, timeout: timeout}
		}
	}
}

// checkDurableClient refuses WithDurable on a client whose commands cannot
// be pinned to the stream's master.
func checkDurableClient(client redis.UniversalClient) error {
	switch client.(type) {
	case *redis.Client, *redis.ClusterClient:
		return nil
	}
	return fmt.Errorf("%w: durable: %T cannot pin a WAIT to the stream's master (use a *redis.Client or *redis.ClusterClient)", midstream.ErrInvalidOption, client)
}

// sender sends XADD commands: one alone, more in one pipeline, and with
// durability set, waits for the replicas after them.
type sender struct {
	client  redis.UniversalClient
	stream  string
	durable *durability // nil: no WAIT
}

// send runs cmds; their results (and, when durable, the WAIT's verdict as
// the error of each XADD that succeeded) are in the commands.
func (s *sender) send(ctx context.Context, cmds ...*redis.StringCmd) {
	if s.durable != nil {
		s.sendDurable(ctx, cmds)
		return
	}
	if len(cmds) == 1 {
		_ = s.client.Process(ctx, cmds[0])
		return
	}
	pipe := s.client.Pipeline()
	for _, cmd := range cmds {
		_ = pipe.Process(ctx, cmd)
	}
	_, _ = pipe.Exec(ctx)
}

// Bounds of a durable send that the node refused without writing.
const (
	// redirectAttempts bounds how many times a durable send is made again
	// after the node refused every XADD without running it (MOVED,
	// READONLY, ...: see rediserr.Redirected), each time to the master
	// the client knows of after a refresh.
	redirectAttempts = 3
	// redirectWait bounds how long a cluster client is given, before each
	// such attempt, to learn of another master for the stream.
	redirectWait = time.Second
)

// sendDurable sends cmds and then WAIT on one connection to the stream's
// master: WAIT counts the replicas that have everything this connection
// wrote. A node that refuses every XADD as not its own (the client's view
// of the servers is out of date after a failover) wrote nothing: the send
// is made again to the master the client learns of, as a cluster client
// follows a redirection itself.
func (s *sender) sendDurable(ctx context.Context, cmds []*redis.StringCmd) {
	for attempt := 1; ; attempt++ {
		node, err := s.master(ctx)
		if err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			return
		}
		if !s.sendDurableTo(ctx, node, cmds) || attempt == redirectAttempts {
			return
		}
		rediserr.Refresh(ctx, s.client)
		if !s.awaitOtherMaster(ctx, node, attempt) {
			return
		}
		// Clear the refusals: go-redis leaves a command's error in place
		// when it fails a pipeline as a whole (a dial or a write that
		// failed, perhaps after the first commands reached the server), and
		// a refusal left from this attempt would pass for one of the next.
		for _, cmd := range cmds {
			cmd.SetErr(nil)
		}
	}
}

// sendDurableTo sends cmds and WAIT on one connection of node (see
// sendDurable). It reports whether the node refused every command without
// running it (rediserr.Redirected), leaving their errors in the commands.
func (s *sender) sendDurableTo(ctx context.Context, node *redis.Client, cmds []*redis.StringCmd) (redirected bool) {
	conn := node.Conn()
	defer conn.Close()
	pipe := conn.Pipeline()
	for _, cmd := range cmds {
		_ = pipe.Process(ctx, cmd)
	}
	_, _ = pipe.Exec(ctx)
	written, refused := 0, 0
	for _, cmd := range cmds {
		switch err := cmd.Err(); {
		case err == nil:
			written++
		case rediserr.Redirected(err):
			refused++
		}
	}
	if written == 0 {
		return refused == len(cmds)
	}
	d := s.durable
	// go-redis reads WAIT's reply with a deadline past the timeout.
	acked, err := conn.Wait(ctx, d.replicas, d.timeout).Result()
	if err == nil && acked >= int64(d.replicas) {
		return false
	}
	rediserr.RefreshAfter(ctx, s.client, err)
	derr := &DurabilityError{Acked: int(acked), Want: d.replicas, Err: err}
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			cmd.SetErr(derr)
		}
	}
	return false
}

// awaitOtherMaster waits, after a refused send to old, until the client
// may send to the stream's new master: for a cluster client, until its
// view (being refreshed) names another master for the stream, for at most
// redirectWait; for another client (a Sentinel failover client redials
// the master the Sentinels name), a short pause growing with attempt. It
// reports false when ctx ended.
func (s *sender) awaitOtherMaster(ctx context.Context, old *redis.Client, attempt int) bool {
	c, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return rediserr.Sleep(ctx, time.Duration(attempt)*100*time.Millisecond)
	}
	deadline := time.Now().Add(redirectWait)
	for {
		if node, err := c.MasterForKey(ctx, s.stream); err == nil && node != old {
			return true
		}
		if time.Now().After(deadline) {
			return ctx.Err() == nil // send once more; the node answers again
		}
		if !rediserr.Sleep(ctx, 20*time.Millisecond) {
			return false
		}
	}
}

// master returns the client of the node that holds the stream.
func (s *sender) master(ctx context.Context) (*redis.Client, error) {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, s.stream)
	case *redis.Client:
		return c, nil
	}
	return nil, checkDurableClient(s.client)
}
