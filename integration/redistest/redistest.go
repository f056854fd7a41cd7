// Package redistest starts real Redis servers for tests.
//
// Start gives each test a client on a fresh, isolated Redis server. The server
// comes from, in order of preference:
//
//  1. REDIS_URL, when set: a server the caller runs. It is shared, so tests
//     isolate themselves by key name (see Server.Key); it is never flushed.
//  2. A redis-server binary on PATH, spawned on a free loopback port with its
//     own temporary directory and AOF enabled. It is stopped and reaped when
//     the test ends.
//  3. testcontainers-go, when a Docker engine is reachable. The container runs
//     with host networking on a free loopback port (see container.go).
//
// MIDSTREAM_REDIS_BACKEND forces one of "url", "process" or "container", or
// selects "cluster": a local Redis Cluster (three masters, one replica each)
// that Run starts once per test binary and every test shares; Start flushes
// it. Tests that need one node (ACL users, a proxy, Kill and Restart of the
// whole server) call SkipOnCluster.
// With MIDSTREAM_REQUIRE_REDIS=1 (set in CI) a missing server fails the test
// instead of skipping it.
//
// Spawned servers (process and container) can be killed and restarted on the
// same port and data directory, for fault tests.
//
// StartSentinel starts a Sentinel deployment (a master, its replicas and
// three Sentinels, all redis-server processes) for one test, whatever the
// backend; see Sentinel.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/midstream-go/midstream/internal/redisserver"
)

// Environment variables read by Start.
const (
	EnvURL     = "REDIS_URL"               // use this server instead of spawning one
	EnvBackend = "MIDSTREAM_REDIS_BACKEND" // force "url", "process", "container" or "cluster"
	EnvRequire = "MIDSTREAM_REQUIRE_REDIS" // "1": no server is a failure, not a skip
	EnvImage   = "MIDSTREAM_REDIS_IMAGE"   // image for the container backend
	EnvBinary  = "MIDSTREAM_REDIS_SERVER"  // redis-server binary (default: from PATH)
	defImage   = "redis:7"                 // default image for the container backend
	readyWait  = 15 * time.Second          // how long a spawned server may take to start
)

// ErrNotRestartable is returned by Kill and Restart on a server the harness
// did not start (REDIS_URL).
var ErrNotRestartable = errors.New("redistest: server was not started by the harness")

// backend is one way of running a server.
type backend interface {
	// addr is host:port of the server.
	addr() string
	// kill stops the server abruptly (SIGKILL): nothing is flushed on the way down.
	kill() error
	// restart starts the server again on the same address and data directory,
	// after kill or while running (then it kills it first).
	restart() error
	// close stops the server for good and releases everything it holds.
	close() error
	// name says which backend this is, for logs.
	name() string
}

// Server is a real Redis server (or cluster) for one test.
type Server struct {
	// Client is connected to the server: a *redis.Client, or a
	// *redis.ClusterClient on the cluster backend. It is closed when the
	// test ends.
	Client redis.UniversalClient
	// Backend is "url", "process", "container" or "cluster".
	Backend string
	// Cluster is the shared cluster on the cluster backend, nil otherwise.
	Cluster *Cluster

	t      testing.TB
	b      backend // nil for REDIS_URL
	url    string
	prefix string
	mu     sync.Mutex
}

// Addr returns host:port of the server; on the cluster backend, the
// addresses of all the cluster's nodes joined by commas.
func (s *Server) Addr() string {
	switch {
	case s.Cluster != nil:
		return strings.Join(s.Cluster.Addrs(), ",")
	case s.b != nil:
		return s.b.addr()
	}
	return s.options().Addr
}

// SkipOnCluster skips the test on the cluster backend, saying why it cannot
// run there.
func (s *Server) SkipOnCluster(why string) {
	s.t.Helper()
	if s.Cluster != nil {
		s.t.Skipf("redistest: not on a cluster: %s", why)
	}
}

// Key returns name made unique to this test, so tests sharing a server
// (REDIS_URL) never see each other's keys. The result keeps name's Redis
// Cluster hash tag if it has one.
func (s *Server) Key(name string) string {
	return s.prefix + name
}

// NewClient returns a new client on the server with opts applied on top of the
// harness defaults. It is closed when the test ends. On the cluster backend
// it skips the test: use NewUniversalClient for a client of either kind.
func (s *Server) NewClient(opts ...func(*redis.Options)) *redis.Client {
	s.t.Helper()
	s.SkipOnCluster("the test needs a client of one node")
	o := s.options()
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewUniversalClient returns a new client like Client (a cluster client on
// the cluster backend), with opts applied. It is closed when the test ends.
func (s *Server) NewUniversalClient(opts ...func(*redis.UniversalOptions)) redis.UniversalClient {
	// Maintenance notifications off, as for every client of the harness
	// (see Cluster.NewClient).
	o := redis.UniversalOptions{MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}
	if s.Cluster != nil {
		o.Addrs = s.Cluster.Addrs()
		o.IsClusterMode = true
	} else {
		so := s.options()
		o.Addrs = []string{so.Addr}
		o.Username, o.Password, o.DB = so.Username, so.Password, so.DB
		o.TLSConfig = so.TLSConfig
	}
	for _, f := range opts {
		f(&o)
	}
	c := redis.NewUniversalClient(&o)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) options() *redis.Options {
	if s.url != "" {
		o, err := redis.ParseURL(s.url)
		if err != nil {
			s.t.Fatalf("redistest: %s: %v", EnvURL, err)
		}
		return o
	}
	// Maintenance notifications off, as for cluster clients (see
	// Cluster.NewClient): the go-redis fallback races with pinned
	// connections.
	return &redis.Options{Addr: s.b.addr(),
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}}
}

// Kill stops the server abruptly with SIGKILL, as in a crash. The server
// writes and fsyncs its AOF before it replies, so every acknowledged write
// survives a Restart. On the cluster backend it returns ErrNotRestartable:
// kill nodes through Cluster.
func (s *Server) Kill() error {
	if s.b == nil {
		return ErrNotRestartable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.kill()
}

// Restart starts the server again on the same address and data directory
// (killing it first if it runs) and waits until it answers PING.
func (s *Server) Restart() error {
	if s.b == nil {
		return ErrNotRestartable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.b.restart(); err != nil {
		return err
	}
	return redisserver.WaitReady(s.b.addr(), readyWait)
}

// Start returns a fresh real Redis server for t. See the package doc for where
// the server comes from. It skips t when there is none, or fails it when
// MIDSTREAM_REQUIRE_REDIS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, prefix: uniquePrefix(t)}
	mode := os.Getenv(EnvBackend)
	if mode == "cluster" {
		return startOnCluster(t, s)
	}
	url := os.Getenv(EnvURL)
	if mode == "" {
		switch {
		case url != "":
			mode = "url"
		case binary() != "":
			mode = "process"
		default:
			mode = "container"
		}
	}
	var err error
	switch mode {
	case "url":
		if url == "" {
			err = fmt.Errorf("%s=url but %s is empty", EnvBackend, EnvURL)
			break
		}
		s.url = url
	case "process":
		var bin = binary()
		if bin == "" {
			err = errors.New("no redis-server on PATH")
			break
		}
		s.b, err = startProcess(t, bin)
	case "container":
		image := os.Getenv(EnvImage)
		if image == "" {
			image = defImage
		}
		s.b, err = startContainer(t, image)
	default:
		err = fmt.Errorf("%s=%q: want url, process, container or cluster", EnvBackend, mode)
	}
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("redistest: no Redis server (%s=1): %v", EnvRequire, err)
		}
		t.Skipf("redistest: no Redis server: %v (install redis-server, set %s, or start Docker)", err, EnvURL)
	}
	s.Backend = mode
	if s.b != nil {
		b := s.b
		t.Cleanup(func() {
			if err := b.close(); err != nil {
				t.Errorf("redistest: stopping %s server: %v", b.name(), err)
			}
		})
		if err := redisserver.WaitReady(b.addr(), readyWait); err != nil {
			t.Fatalf("redistest: %s server did not start: %v", b.name(), err)
		}
	}
	s.Client = s.NewClient()
	if err := s.Client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: PING %s server: %v", mode, err)
	}
	t.Logf("redistest: %s server at %s", mode, s.Addr())
	return s
}

// startOnCluster gives t the shared cluster (see Run), healed (killed nodes
// restarted) and flushed.
func startOnCluster(t testing.TB, s *Server) *Server {
	t.Helper()
	c, err := shared, sharedErr
	if c == nil && err == nil {
		err = errors.New("no cluster: call redistest.Run(m) from TestMain")
	}
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("redistest: no Redis Cluster (%s=1): %v", EnvRequire, err)
		}
		t.Skipf("redistest: no Redis Cluster: %v", err)
	}
	ctx := context.Background()
	if err := c.Heal(ctx); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	if err := c.flush(ctx); err != nil {
		t.Fatalf("redistest: flushing the cluster: %v", err)
	}
	s.Backend, s.Cluster = "cluster", c
	cc := c.NewClient()
	t.Cleanup(func() { _ = cc.Close() })
	s.Client = cc
	if err := cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() }); err != nil {
		t.Fatalf("redistest: PING cluster: %v", err)
	}
	t.Logf("redistest: cluster at %s", s.Addr())
	return s
}

func binary() string {
	if b := os.Getenv(EnvBinary); b != "" {
		return b
	}
	return redisserver.Binary()
}

// uniquePrefix returns "test:<name>:<random>:" with characters that would make
// redis-cli output hard to read replaced.
func uniquePrefix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r <= ' ' || r == '{' || r == '}' || r == ':' {
			return '_'
		}
		return r
	}, t.Name())
	return "test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}
