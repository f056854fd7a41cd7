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
// MIDSTREAM_REDIS_BACKEND forces one of "url", "process" or "container".
// With MIDSTREAM_REQUIRE_REDIS=1 (set in CI) a missing server fails the test
// instead of skipping it.
//
// Spawned servers (process and container) can be killed and restarted on the
// same port and data directory, for fault tests.
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

	"github.com/midstream-go/midstream/internal/redisserver"
)

// Environment variables read by Start.
const (
	EnvURL     = "REDIS_URL"               // use this server instead of spawning one
	EnvBackend = "MIDSTREAM_REDIS_BACKEND" // force "url", "process" or "container"
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

// Server is a real Redis server for one test.
type Server struct {
	// Client is connected to the server. It is closed when the test ends.
	Client *redis.Client
	// Backend is "url", "process" or "container".
	Backend string

	t      testing.TB
	b      backend // nil for REDIS_URL
	url    string
	prefix string
	mu     sync.Mutex
}

// Addr returns host:port of the server.
func (s *Server) Addr() string {
	if s.b != nil {
		return s.b.addr()
	}
	return s.Client.Options().Addr
}

// Key returns name made unique to this test, so tests sharing a server
// (REDIS_URL) never see each other's keys. The result keeps name's Redis
// Cluster hash tag if it has one.
func (s *Server) Key(name string) string {
	return s.prefix + name
}

// NewClient returns a new client on the server with opts applied on top of the
// harness defaults. It is closed when the test ends.
func (s *Server) NewClient(opts ...func(*redis.Options)) *redis.Client {
	o := s.options()
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
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
	return &redis.Options{Addr: s.b.addr()}
}

// Kill stops the server abruptly with SIGKILL, as in a crash. The server
// writes and fsyncs its AOF before it replies, so every acknowledged write
// survives a Restart.
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
		err = fmt.Errorf("%s=%q: want url, process or container", EnvBackend, mode)
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
