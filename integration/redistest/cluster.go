package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/midstream-go/midstream/internal/redisserver"
)

// Shape and timing of the local cluster.
const (
	clusterMasters = 3
	// clusterNodeTimeout is cluster-node-timeout: a master that does not
	// answer for this long is marked failed and its replica takes over
	// (about one to three node timeouts after the kill on loopback).
	clusterNodeTimeout = 1000 * time.Millisecond
	// clusterWait bounds creating the cluster and each wait for it to be
	// healthy again.
	clusterWait = 60 * time.Second
)

// Cluster is a real Redis Cluster on loopback: three masters with one
// replica each, every node a redis-server child process with its own
// directory (cluster config file and AOF, fsynced on every write). Run starts
// one per test binary when MIDSTREAM_REDIS_BACKEND=cluster; every test's
// Server shares it (Start flushes it first). Fault tests kill nodes with
// KillMasterOf and bring them back with Restart or Heal.
type Cluster struct {
	dir string
	mu  sync.Mutex // guards the nodes' processes
	rc  *redisserver.Cluster
}

// The cluster Run started, or why it could not (cluster mode only).
var (
	shared    *Cluster
	sharedErr error
)

// Run runs the tests of m and returns the exit code, for TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }
//
// With MIDSTREAM_REDIS_BACKEND=cluster it first starts a local Redis Cluster
// that every Start of the test binary then uses, and stops it (every node,
// by PID) after the tests. If the cluster cannot start, Start fails or skips
// each test with the reason (see MIDSTREAM_REQUIRE_REDIS). With any other
// backend it only runs the tests.
func Run(m interface{ Run() int }) int {
	if os.Getenv(EnvBackend) != "cluster" {
		return m.Run()
	}
	shared, sharedErr = startCluster()
	if sharedErr != nil {
		fmt.Fprintf(os.Stderr, "redistest: starting a cluster: %v\n", sharedErr)
	}
	code := m.Run()
	if shared != nil {
		if err := shared.close(); err != nil {
			fmt.Fprintf(os.Stderr, "redistest: stopping the cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// startCluster starts six nodes and joins them into a cluster with
// redis-cli --cluster create (redisserver.StartCluster).
func startCluster() (*Cluster, error) {
	bin := binary()
	if bin == "" {
		return nil, errors.New("no redis-server on PATH")
	}
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "midstream-cluster-")
	if err != nil {
		return nil, err
	}
	rc, err := redisserver.StartCluster(redisserver.ClusterConfig{Binary: bin, Dir: dir, Masters: clusterMasters, Replicas: 1,
		Persist: true, NodeTimeout: clusterNodeTimeout, Wait: clusterWait, Args: []string{
			// A replica may always be promoted, however long its link was
			// down in an earlier test.
			"--cluster-replica-validity-factor", "0",
			// A node that comes back as a replica syncs at once, rather
			// than after Redis's default 5 s wait for more replicas.
			"--repl-diskless-sync-delay", "0",
		}})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return &Cluster{dir: dir, rc: rc}, nil
}

// Addrs returns host:port of every node, masters and replicas.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rc.Addrs()
}

// NewClient returns a new cluster client seeded with every node, with opts
// applied. The caller closes it.
func (c *Cluster) NewClient(opts ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	// Maintenance notifications off: Redis 7.0 has none, and go-redis
	// v9.23's auto mode, falling back after the failed handshake, writes
	// the options it shares with a pinned connection (Conn) while that one
	// reads them (a data race inside go-redis that -race reports).
	o := &redis.ClusterOptions{Addrs: c.Addrs(),
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}
	for _, f := range opts {
		f(o)
	}
	return redis.NewClusterClient(o)
}

func (c *Cluster) node(addr string) (*redisserver.Server, error) {
	for _, n := range c.rc.Nodes {
		if n.Addr() == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redistest: %s is not a node of the cluster", addr)
}

// MasterOf returns the address of the master that serves key, as the node
// at any live address sees it.
func (c *Cluster) MasterOf(ctx context.Context, key string) (string, error) {
	var last error
	for _, addr := range c.Addrs() {
		addr, err := masterOf(ctx, addr, key)
		if err == nil {
			return addr, nil
		}
		last = err
	}
	return "", fmt.Errorf("redistest: master of %q: %w", key, last)
}

// masterOf asks the node at addr which master serves key's slot; a frozen
// node fails it quickly.
func masterOf(ctx context.Context, addr, key string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < r.Start || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role == "master" && n.Health == "online" {
					return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10)), nil
				}
			}
		}
	}
	return "", fmt.Errorf("slot %d is not served", slot)
}

// onNode runs f on the node at addr.
func (c *Cluster) onNode(addr string, f func(*redisserver.Server) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.node(addr)
	if err != nil {
		return err
	}
	return f(n)
}

// Kill stops the node at addr with SIGKILL, as in a crash.
func (c *Cluster) Kill(addr string) error {
	return c.onNode(addr, (*redisserver.Server).Kill)
}

// Freeze stops the node at addr with SIGSTOP: it keeps its connections
// open but answers nothing, like a host cut off or hung, until Thaw (or
// Heal) resumes it.
func (c *Cluster) Freeze(addr string) error { return c.signal(addr, syscall.SIGSTOP) }

// Thaw resumes a node frozen by Freeze (SIGCONT).
func (c *Cluster) Thaw(addr string) error { return c.signal(addr, syscall.SIGCONT) }

func (c *Cluster) signal(addr string, sig syscall.Signal) error {
	return c.onNode(addr, func(n *redisserver.Server) error { return n.Signal(sig) })
}

// FailoverFrom has a replica of the master at addr take its place with
// CLUSTER FAILOVER, as an operator would before maintenance: the master
// stops taking writes until that replica has caught up, then the replica
// takes over and the old master follows it. It returns once the replica
// accepted the request (see WaitFailover).
func (c *Cluster) FailoverFrom(ctx context.Context, addr string) error {
	master := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer master.Close()
	id, err := master.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fmt.Errorf("redistest: failover from %s: %w", addr, err)
	}
	lines, err := master.Do(ctx, "CLUSTER", "REPLICAS", id).StringSlice()
	if err != nil {
		return fmt.Errorf("redistest: failover from %s: %w", addr, err)
	}
	for _, line := range lines {
		// <id> <ip:port@cport[,hostname]> <flags> ...
		f := strings.Fields(line)
		if len(f) < 3 || strings.Contains(f[2], "fail") {
			continue
		}
		replica, _, _ := strings.Cut(f[1], "@")
		r := redis.NewClient(&redis.Options{Addr: replica, MaxRetries: -1})
		err := r.Do(ctx, "CLUSTER", "FAILOVER").Err()
		_ = r.Close()
		if err != nil {
			return fmt.Errorf("redistest: failover from %s to %s: %w", addr, replica, err)
		}
		return nil
	}
	return fmt.Errorf("redistest: failover from %s: no replica up (%q)", addr, lines)
}

// KillMasterOf kills (SIGKILL) the master that serves key and returns its
// address. Its replica takes over after the node timeout (about 1-3 s).
func (c *Cluster) KillMasterOf(ctx context.Context, key string) (string, error) {
	addr, err := c.MasterOf(ctx, key)
	if err != nil {
		return "", err
	}
	return addr, c.Kill(addr)
}

// Restart starts the node at addr again on its port and directory (killing
// it first if it runs); it rejoins the cluster from its config file, as a
// replica when another node took its slots.
func (c *Cluster) Restart(addr string) error {
	return c.onNode(addr, (*redisserver.Server).Restart)
}

// WaitFailover waits until a master other than old serves key.
func (c *Cluster) WaitFailover(ctx context.Context, key, old string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	for {
		addr, err := c.MasterOf(ctx, key)
		if err == nil && addr != old {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("redistest: no failover of %q away from %s: %w (last: %v)", key, old, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Heal resumes every frozen node, restarts every node that is down and
// waits until the cluster is healthy (see WaitHealthy).
func (c *Cluster) Heal(ctx context.Context) error {
	c.mu.Lock()
	for _, n := range c.rc.Nodes {
		if err := n.Signal(syscall.SIGCONT); err != nil {
			c.mu.Unlock()
			return err
		}
		if !n.Running() {
			if err := n.Restart(); err != nil {
				c.mu.Unlock()
				return err
			}
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	return c.WaitHealthy(ctx)
}

// WaitHealthy waits until every node says cluster_state:ok with all 16384
// slots served, there are as many masters as at the start, each with a
// replica whose link to it is up, and every node knows every other one as
// connected.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.rc.WaitHealthy(ctx)
}

// flush deletes every key on every master and waits until the replicas
// have it too.
func (c *Cluster) flush(ctx context.Context) error {
	rdb := c.NewClient()
	defer rdb.Close()
	return rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if err := m.FlushAll(ctx).Err(); err != nil {
			return err
		}
		return m.Wait(ctx, 1, 5000).Err()
	})
}

// close stops every node (by PID) and removes the cluster's directory.
func (c *Cluster) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.rc.Close(), os.RemoveAll(c.dir))
}
