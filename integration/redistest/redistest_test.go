package redistest

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSpawnedServerSurvivesKill checks each spawned backend through Start: an
// acknowledged write survives a SIGKILL and a restart (AOF), and a restart
// while running works too. The container backend needs a Docker engine and a
// local image (.ci/docker.sh), so it runs only with MIDSTREAM_TEST_CONTAINER=1.
func TestSpawnedServerSurvivesKill(t *testing.T) {
	for _, backend := range []string{"process", "container"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "container" && os.Getenv("MIDSTREAM_TEST_CONTAINER") != "1" {
				t.Skip("set MIDSTREAM_TEST_CONTAINER=1 (and MIDSTREAM_REDIS_IMAGE, see .ci/docker.sh) to test the container backend")
			}
			t.Setenv(EnvBackend, backend)
			s := Start(t)
			if s.Backend != backend {
				t.Fatalf("Backend = %q, want %s", s.Backend, backend)
			}
			ctx := context.Background()
			key := s.Key("k")
			if err := s.Client.Set(ctx, key, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
				c.Close()
				t.Fatal("server still accepts connections after Kill")
			}
			if err := s.Restart(); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			got, err := s.Client.Get(ctx, key).Result()
			if err != nil || got != "v" {
				t.Fatalf("GET after restart = %q, %v; want %q", got, err, "v")
			}
			if err := s.Restart(); err != nil {
				t.Fatalf("second Restart: %v", err)
			}
			if got, err := s.Client.Get(ctx, key).Result(); err != nil || got != "v" {
				t.Fatalf("GET after second restart = %q, %v; want %q", got, err, "v")
			}
		})
	}
}

func TestKeyIsUniquePerTest(t *testing.T) {
	a := &Server{prefix: uniquePrefix(t)}
	b := &Server{prefix: uniquePrefix(t)}
	if a.Key("x") == b.Key("x") {
		t.Fatalf("two servers share key %q", a.Key("x"))
	}
	if k := a.Key("{orders}:dlq"); !strings.HasSuffix(k, "{orders}:dlq") || strings.Count(k, "{") != 1 {
		t.Fatalf("Key dropped or duplicated the hash tag: %q", k)
	}
}

func TestURLServerIsNotRestartable(t *testing.T) {
	s := &Server{}
	if err := s.Kill(); err != ErrNotRestartable {
		t.Fatalf("Kill on a REDIS_URL server: %v", err)
	}
	if err := s.Restart(); err != ErrNotRestartable {
		t.Fatalf("Restart on a REDIS_URL server: %v", err)
	}
}

// TestProxyDelayAndPause: DelayReplies holds replies back (commands still
// run at once), Pause makes commands fail until Resume, Traffic counts.
func TestProxyDelayAndPause(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	p := s.StartProxy(t)
	c := s.NewClient(func(o *redis.Options) { o.Addr = p.Addr(); o.MaxRetries = -1; o.ReadTimeout = 2 * time.Second })
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	key := s.Key("k")
	p.DelayReplies(300 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- c.Set(ctx, key, "v", 0).Err() }()
	// The command runs at once; its reply comes later.
	deadline := time.Now().Add(250 * time.Millisecond)
	for s.Client.Get(ctx, key).Val() != "v" {
		if time.Now().After(deadline) {
			t.Fatal("the delayed command did not reach the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("reply arrived before the delay (%v)", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.DelayReplies(0)

	p.Pause()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING through a paused proxy succeeded")
	}
	p.Resume()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
	if up, down := p.Traffic(); up == 0 || down == 0 {
		t.Fatalf("traffic %d up, %d down", up, down)
	}
}
