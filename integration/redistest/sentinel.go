package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/redisserver"
)

// Timing of the Sentinel sets StartSentinel starts.
const (
	// SentinelMaster is the name the Sentinels know the master by.
	SentinelMaster = "midstream"
	// sentinelDownAfter is down-after-milliseconds: a master that does not
	// answer for this long is subjectively down; with two of the three
	// Sentinels agreeing, a failover starts (the promotion follows about
	// one to three seconds after a kill on loopback).
	sentinelDownAfter = 1000 * time.Millisecond
	// sentinelFailoverTimeout is failover-timeout: how long a failover may
	// take to reconfigure the replicas, and half the time before the same
	// master may be failed over again.
	sentinelFailoverTimeout = 5 * time.Second
	// sentinelWait bounds the start of a set and each wait for a failover.
	sentinelWait = 60 * time.Second
)

// SentinelOption changes a Sentinel set StartSentinel starts.
type SentinelOption func(*sentinelConfig)

type sentinelConfig struct {
	replicas   int
	serverArgs []string
}

// WithReplicas sets how many replicas the master has (default 1).
func WithReplicas(n int) SentinelOption {
	return func(c *sentinelConfig) { c.replicas = n }
}

// WithServerArgs adds redis-server arguments to every data node (master and
// replicas), for example "--min-replicas-to-write", "1": the master then
// refuses writes (NOREPLICAS) while fewer replicas are connected and have
// acknowledged within min-replicas-max-lag seconds, the server-side fence
// that keeps a master cut off from its replicas (or one a failover left
// behind) from accepting writes the promoted replica will never have. The
// promoted replica keeps the setting too: it accepts writes only once
// enough replicas follow it.
func WithServerArgs(args ...string) SentinelOption {
	return func(c *sentinelConfig) { c.serverArgs = append(c.serverArgs, args...) }
}

// Sentinel is a real Redis Sentinel deployment on loopback: a master, its
// replicas and three Sentinels (quorum two) watching it, every process a
// redis-server child with its own directory, stopped by PID when the test
// ends. Data nodes write an AOF, fsynced on every write. Clients made by
// NewClient follow the master through the Sentinels (go-redis's failover
// client). Fault tests kill the master (KillMaster), or ask for a failover
// (Failover), wait for the promotion (WaitFailover) and bring the old
// master back as a replica (Restart).
type Sentinel struct {
	t         testing.TB
	mu        sync.Mutex
	nodes     []*redisserver.Server // data nodes: the first started as master
	sentinels []*redisserver.Server
	switches  []Switch
}

// Switch is a change of master a Sentinel announced (+switch-master).
type Switch struct {
	At       time.Time // when the harness received the announcement
	From, To string    // the old and the new master's address
}

// StartSentinel starts a master, its replicas (one unless WithReplicas says
// otherwise) and three Sentinels, and waits until every Sentinel knows the
// master, all its replicas and the two other Sentinels, so that a failover
// can start at once. It skips t when there is no redis-server (or fails it
// with MIDSTREAM_REQUIRE_REDIS=1); Sentinels run as redis-server
// --sentinel, so no other binary is needed.
func StartSentinel(t testing.TB, opts ...SentinelOption) *Sentinel {
	t.Helper()
	cfg := sentinelConfig{replicas: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.replicas < 1 {
		t.Fatalf("redistest: a Sentinel set needs at least one replica, not %d", cfg.replicas)
	}
	bin := binary()
	if bin == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("redistest: no redis-server on PATH (%s=1)", EnvRequire)
		}
		t.Skip("redistest: no redis-server on PATH for a Sentinel set")
	}
	s := &Sentinel{t: t}
	args := append([]string{
		// A node that comes back as a replica syncs at once, rather than
		// after Redis's default 5 s wait for more replicas.
		"--repl-diskless-sync-delay", "0",
	}, cfg.serverArgs...)
	master, err := redisserver.Start(redisserver.Config{Binary: bin, Dir: dataDir(t), Persist: true, Args: args})
	if err != nil {
		t.Fatalf("redistest: starting the master: %v", err)
	}
	stopAtEnd(t, master)
	s.nodes = append(s.nodes, master)
	host, port, _ := strings.Cut(master.Addr(), ":")
	for range cfg.replicas {
		r, err := redisserver.Start(redisserver.Config{Binary: bin, Dir: dataDir(t), Persist: true,
			Args: append(append([]string{}, args...), "--replicaof", host, port)})
		if err != nil {
			t.Fatalf("redistest: starting a replica: %v", err)
		}
		stopAtEnd(t, r)
		s.nodes = append(s.nodes, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sentinelWait)
	defer cancel()
	for _, n := range s.nodes[1:] {
		if err := waitReplicaSynced(ctx, n.Addr()); err != nil {
			t.Fatalf("redistest: %v", err)
		}
	}
	for range 3 {
		dir := dataDir(t)
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 2\n"+
			"sentinel down-after-milliseconds %[1]s %[4]d\n"+
			"sentinel failover-timeout %[1]s %[5]d\n"+
			"sentinel parallel-syncs %[1]s 1\n",
			SentinelMaster, host, port, sentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds())
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		sn, err := redisserver.Start(redisserver.Config{Binary: bin, Dir: dir, Sentinel: conf})
		if err != nil {
			t.Fatalf("redistest: starting a Sentinel: %v", err)
		}
		stopAtEnd(t, sn)
		s.sentinels = append(s.sentinels, sn)
	}
	if err := s.waitReady(ctx, master.Addr(), cfg.replicas); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.watch(t)
	t.Logf("redistest: Sentinel set: master %s, replicas %v, Sentinels %v", master.Addr(), s.NodeAddrs()[1:], s.SentinelAddrs())
	return s
}

// watch records the changes of master the first Sentinel announces, until
// t ends.
func (s *Sentinel) watch(t testing.TB) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].Addr()})
	sub := sc.Subscribe(context.Background(), "+switch-master")
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatalf("redistest: subscribing to the Sentinel's +switch-master: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.Channel() {
			// "<name> <old ip> <old port> <new ip> <new port>"
			f := strings.Fields(m.Payload)
			if len(f) != 5 || f[0] != SentinelMaster {
				continue
			}
			s.mu.Lock()
			s.switches = append(s.switches, Switch{At: time.Now(),
				From: net.JoinHostPort(f[1], f[2]), To: net.JoinHostPort(f[3], f[4])})
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = sub.Close()
		_ = sc.Close()
		<-done
	})
}

// Switches returns the changes of master the first Sentinel announced since
// the start, oldest first. A master that stalls for longer than
// down-after-milliseconds (1 s) is failed over too: on a loaded machine a
// test may see more switches than it caused.
func (s *Sentinel) Switches() []Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Switch(nil), s.switches...)
}

// waitReplicaSynced waits until the replica at addr has its link to its
// master up and the first sync done.
func waitReplicaSynced(ctx context.Context, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	for {
		info, err := rdb.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") &&
			strings.Contains(info, "master_sync_in_progress:0") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s not in sync: %w (last: %v %q)", addr, ctx.Err(), err, info)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReady waits until every Sentinel reports master as the master, with
// replicas replicas it does not consider down, and knows the two other
// Sentinels.
func (s *Sentinel) waitReady(ctx context.Context, master string, replicas int) error {
	var last error
	for {
		last = nil
		for _, addr := range s.SentinelAddrs() {
			if err := sentinelReady(ctx, addr, master, replicas, len(s.sentinels)-1); err != nil {
				last = fmt.Errorf("Sentinel %s: %w", addr, err)
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Sentinel set not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func sentinelReady(ctx context.Context, addr, master string, replicas, others int) error {
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer sc.Close()
	got, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return err
	}
	if a := net.JoinHostPort(got[0], got[1]); a != master {
		return fmt.Errorf("master %s, want %s", a, master)
	}
	rs, err := sc.Replicas(ctx, SentinelMaster).Result()
	if err != nil {
		return err
	}
	up := 0
	for _, r := range rs {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			up++
		}
	}
	if up < replicas {
		return fmt.Errorf("%d replicas up, want %d", up, replicas)
	}
	ss, err := sc.Sentinels(ctx, SentinelMaster).Result()
	if err != nil {
		return err
	}
	if len(ss) < others {
		return fmt.Errorf("knows %d other Sentinels, want %d", len(ss), others)
	}
	return nil
}

// SentinelAddrs returns host:port of the three Sentinels.
func (s *Sentinel) SentinelAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		addrs[i] = n.Addr()
	}
	return addrs
}

// NodeAddrs returns host:port of the data nodes, the one started as master
// first.
func (s *Sentinel) NodeAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// NewClient returns a new failover client (redis.NewFailoverClient) that
// finds the master through the Sentinels and follows it across failovers,
// with short dial, read and write timeouts (1 s) so a dead master is noticed
// quickly, and opts applied. It is closed when the test ends.
func (s *Sentinel) NewClient(opts ...func(*redis.FailoverOptions)) *redis.Client {
	o := &redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: s.SentinelAddrs(),
		DialTimeout:   time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
	}
	for _, f := range opts {
		f(o)
	}
	// go-redis turns maintenance notifications off for failover clients
	// itself (see Cluster.NewClient for why they must be off).
	c := redis.NewFailoverClient(o)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// NodeClient returns a new client on the data node at addr, whatever its
// role. The caller closes it.
func (s *Sentinel) NodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
}

// MasterAddr returns the master's address as the first Sentinel that
// answers reports it.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, addr := range s.SentinelAddrs() {
		m, err := sentinelMaster(ctx, addr)
		if err == nil {
			return m, nil
		}
		last = err
	}
	return "", fmt.Errorf("redistest: no Sentinel reports the master: %w", last)
}

func sentinelMaster(ctx context.Context, addr string) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer sc.Close()
	got, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(got[0], got[1]), nil
}

func (s *Sentinel) node(addr string) (*redisserver.Server, error) {
	for _, n := range s.nodes {
		if n.Addr() == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redistest: %s is not a data node of the Sentinel set", addr)
}

// Kill stops the data node at addr with SIGKILL, as in a crash.
func (s *Sentinel) Kill(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(addr)
	if err != nil {
		return err
	}
	return n.Kill()
}

// KillMaster kills (SIGKILL) the current master and returns its address.
// The Sentinels see it down after down-after-milliseconds (1 s) and promote
// a replica.
func (s *Sentinel) KillMaster(ctx context.Context) (string, error) {
	addr, err := s.MasterAddr(ctx)
	if err != nil {
		return "", err
	}
	return addr, s.Kill(addr)
}

// Failover asks a Sentinel for a failover of the master (SENTINEL
// FAILOVER): a replica is promoted without the master being down, and the
// old master, still running, is later turned into its replica by the
// Sentinels. It retries while a failover is already in progress (INPROG)
// and returns the master's address before the failover.
func (s *Sentinel) Failover(ctx context.Context) (string, error) {
	old, err := s.MasterAddr(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, sentinelWait)
	defer cancel()
	for {
		var last error
		for _, addr := range s.SentinelAddrs() {
			sc := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
			last = sc.Failover(ctx, SentinelMaster).Err()
			_ = sc.Close()
			if last == nil {
				return old, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("redistest: SENTINEL FAILOVER: %w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitFailover waits until every Sentinel reports a master other than old
// and that node says it is a master (ROLE), and returns its address.
func (s *Sentinel) WaitFailover(ctx context.Context, old string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, sentinelWait)
	defer cancel()
	var last error
	for {
		addr, err := s.agreedMaster(ctx)
		switch {
		case err != nil:
			last = err
		case addr == old:
			last = fmt.Errorf("the Sentinels still report %s", old)
		default:
			if last = isMaster(ctx, addr); last == nil {
				return addr, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("redistest: no failover away from %s: %w (last: %v)", old, ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agreedMaster returns the master every Sentinel reports, or an error if
// one does not answer or they disagree.
func (s *Sentinel) agreedMaster(ctx context.Context) (string, error) {
	var master string
	for _, addr := range s.SentinelAddrs() {
		m, err := sentinelMaster(ctx, addr)
		if err != nil {
			return "", fmt.Errorf("Sentinel %s: %w", addr, err)
		}
		if master != "" && m != master {
			return "", fmt.Errorf("the Sentinels disagree: %s and %s", master, m)
		}
		master = m
	}
	return master, nil
}

func isMaster(ctx context.Context, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer rdb.Close()
	role, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil {
		return fmt.Errorf("ROLE on %s: %w", addr, err)
	}
	if len(role) == 0 || role[0] != "master" {
		return fmt.Errorf("%s is not a master: ROLE %v", addr, role)
	}
	return nil
}

// Restart starts the data node at addr again on its port and directory
// (killing it first if it runs) and, when the Sentinels report another
// node as the master, makes it that master's replica (REPLICAOF) at once,
// as a supervisor that reads the Sentinels' view would: left alone, a node
// restarted with its old master role would be converted by the Sentinels
// only after several seconds, accepting writes meanwhile. It waits until
// the node is in sync with the master.
func (s *Sentinel) Restart(ctx context.Context, addr string) error {
	s.mu.Lock()
	n, err := s.node(addr)
	if err == nil {
		err = n.Restart()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	master, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	if master == addr {
		return nil
	}
	host, port, _ := strings.Cut(master, ":")
	rdb := s.NodeClient(addr)
	defer rdb.Close()
	if err := rdb.ReplicaOf(ctx, host, port).Err(); err != nil {
		return fmt.Errorf("redistest: REPLICAOF %s on %s: %w", master, addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, sentinelWait)
	defer cancel()
	return waitReplicaSynced(ctx, addr)
}

// WaitReplicas waits until the master the Sentinels report has n replicas
// whose link is up (INFO replication's connected_slaves), the node it was
// started with included when it came back as a replica.
func (s *Sentinel) WaitReplicas(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, sentinelWait)
	defer cancel()
	var last error
	for {
		master, err := s.MasterAddr(ctx)
		if err == nil {
			rdb := s.NodeClient(master)
			var info string
			info, err = rdb.Info(ctx, "replication").Result()
			_ = rdb.Close()
			if err == nil && !strings.Contains(info, "connected_slaves:"+strconv.Itoa(n)+"\r\n") {
				err = fmt.Errorf("master %s: want %d connected replicas", master, n)
			}
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Logs returns the log of every Sentinel and data node, each headed by its
// role and address, for a failed test to show.
func (s *Sentinel) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i, n := range append(append([]*redisserver.Server{}, s.sentinels...), s.nodes...) {
		role := "Sentinel"
		if i >= len(s.sentinels) {
			role = "data node"
		}
		text, err := n.Log()
		if err != nil {
			text = err.Error()
		}
		fmt.Fprintf(&b, "--- %s %s:\n%s", role, n.Addr(), text)
	}
	return b.String()
}

// stopAtEnd stops n (by its PID) when t ends, before its directory is
// removed: the Sentinels, started last, stop first.
func stopAtEnd(t testing.TB, n *redisserver.Server) {
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("redistest: stopping %s: %v", n.Addr(), err)
		}
	})
}
