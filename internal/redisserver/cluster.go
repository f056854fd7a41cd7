package redisserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterConfig says how to run a local Redis Cluster.
type ClusterConfig struct {
	// Binary is the redis-server executable (default: from PATH); redis-cli
	// is taken from beside it, else from PATH.
	Binary string
	// Dir holds the nodes' files, node i's in Dir/<i>. Required; it must
	// exist, and the caller removes it.
	Dir string
	// Masters is the number of masters (default 3, at least 3 as
	// redis-cli --cluster create requires).
	Masters int
	// Replicas is the number of replicas of each master (0 or more).
	Replicas int
	// Persist turns every node's AOF on (see Config.Persist).
	Persist bool
	// NodeTimeout is cluster-node-timeout (default 1 s): a master that does
	// not answer for this long is marked failed and a replica takes over.
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
	// Wait bounds creating the cluster and waiting for it to be healthy
	// (default 60 s).
	Wait time.Duration
}

// Cluster is a Redis Cluster of redis-server child processes on loopback.
type Cluster struct {
	// Nodes are the nodes in creation order: the masters first, then the
	// replicas (as redis-cli --cluster create assigns them on one host).
	Nodes    []*Server
	masters  int
	replicas int
}

// StartCluster starts the nodes cfg describes, joins them into a cluster
// with redis-cli --cluster create (the masters splitting the 16384 slots
// evenly) and waits until it is healthy (see WaitHealthy). On failure it
// stops every node it started.
func StartCluster(cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Binary == "" {
		if cfg.Binary = Binary(); cfg.Binary == "" {
			return nil, errors.New("redisserver: no redis-server on PATH")
		}
	}
	if cfg.Dir == "" {
		return nil, errors.New("redisserver: ClusterConfig.Dir is required")
	}
	if cfg.Masters == 0 {
		cfg.Masters = 3
	}
	if cfg.Masters < 3 || cfg.Replicas < 0 {
		return nil, fmt.Errorf("redisserver: a cluster needs at least 3 masters and no negative replica count, not %d and %d", cfg.Masters, cfg.Replicas)
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 60 * time.Second
	}
	cli := filepath.Join(filepath.Dir(cfg.Binary), "redis-cli")
	if _, err := os.Stat(cli); err != nil {
		if cli, err = exec.LookPath("redis-cli"); err != nil {
			return nil, errors.New("redisserver: no redis-cli beside redis-server or on PATH")
		}
	}
	c := &Cluster{masters: cfg.Masters, replicas: cfg.Replicas}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	for i := range cfg.Masters * (1 + cfg.Replicas) {
		d := filepath.Join(cfg.Dir, strconv.Itoa(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
		args := append([]string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(d, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(cfg.NodeTimeout.Milliseconds(), 10),
		}, cfg.Args...)
		s, err := Start(Config{Binary: cfg.Binary, Dir: d, Persist: cfg.Persist, Args: args})
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(cfg.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Wait)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redisserver: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Addrs returns host:port of every node, in creation order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Close stops every node (SIGTERM, by PID) and reaps it. It leaves the
// directory to the caller.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}

// WaitHealthy waits until every node says cluster_state:ok with all 16384
// slots served, there are as many masters as at the start, each with its
// replicas linked to it, and every node knows every other one as connected.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisserver: cluster not healthy: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	addrs := c.Addrs()
	masters := 0
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		err := nodeHealthy(ctx, rdb, len(addrs), c.replicas)
		if err == nil {
			var role []any
			if role, err = rdb.Do(ctx, "ROLE").Slice(); err == nil && len(role) > 0 && role[0] == "master" {
				masters++
			}
		}
		_ = rdb.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	if masters != c.masters {
		return fmt.Errorf("%d masters, want %d", masters, c.masters)
	}
	return nil
}

// nodeHealthy checks one node (see WaitHealthy) of a cluster of nodes nodes
// whose masters have replicas replicas each.
func nodeHealthy(ctx context.Context, rdb *redis.Client, nodes, replicas int) error {
	info, err := rdb.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_known_nodes:" + strconv.Itoa(nodes)} {
		if !strings.Contains(info, want+"\r\n") {
			return fmt.Errorf("CLUSTER INFO lacks %s", want)
		}
	}
	conf, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(conf), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[7] != "connected" || strings.Contains(f[2], "fail") {
			return fmt.Errorf("CLUSTER NODES: %s", line)
		}
	}
	repl, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	switch {
	case strings.Contains(repl, "role:slave"):
		if !strings.Contains(repl, "master_link_status:up") || strings.Contains(repl, "master_sync_in_progress:1") {
			return errors.New("replica's link to its master is not up")
		}
	case !strings.Contains(repl, "connected_slaves:"+strconv.Itoa(replicas)+"\r\n"):
		return fmt.Errorf("master without its %d connected replica(s)", replicas)
	}
	return nil
}
