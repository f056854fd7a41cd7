package redistest

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// TestContainerSurvivesKill runs the container backend through Start, and
// checks that an acknowledged write survives a SIGKILL and restart (AOF).
// It needs a Docker engine and a local image (.ci/docker.sh), so it runs only
// with MIDSTREAM_TEST_CONTAINER=1.
func TestContainerSurvivesKill(t *testing.T) {
	if os.Getenv("MIDSTREAM_TEST_CONTAINER") != "1" {
		t.Skip("set MIDSTREAM_TEST_CONTAINER=1 (and MIDSTREAM_REDIS_IMAGE, see .ci/docker.sh) to test the container backend")
	}
	t.Setenv(EnvBackend, "container")
	s := Start(t)
	if s.Backend != "container" {
		t.Fatalf("Backend = %q, want container", s.Backend)
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
	// A second restart, while running, must work as well.
	if err := s.Restart(); err != nil {
		t.Fatalf("second Restart: %v", err)
	}
	if got, err := s.Client.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET after second restart = %q, %v; want %q", got, err, "v")
	}
}
