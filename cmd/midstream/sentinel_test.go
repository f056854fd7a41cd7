package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/ops/opstest"
	"github.com/midstream-go/midstream/internal/redisserver"
)

// TestCLISentinel connects through a Sentinel (redis-server in sentinel
// mode, monitoring a local server) and lists the server's streams.
func TestCLISentinel(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Backend != "process" {
		t.Skipf("needs a local redis-server process, have the %s backend", srv.Backend)
	}
	stream := srv.Key("{orders}")
	opstest.Build(t, srv.Client, stream)

	port, err := redisserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	host, masterPort, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor m %s %s 1\n", port, dir, host, masterPort)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer sentinel.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := sentinel.GetMasterAddrByName(context.Background(), "m").Result()
		if err == nil && len(got) == 2 && net.JoinHostPort(got[0], got[1]) == srv.Addr() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel at %s does not know the master: %v %v", addr, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var list streamsOutput
	cliJSON(t, "", &list, "--sentinel-master", "m", "--sentinel", addr, "streams", strings.TrimSuffix(stream, "{orders}")+"*")
	if len(list.Streams) != 1 || list.Streams[0].Stream != stream || list.Streams[0].Length != 10 {
		t.Fatalf("streams through the sentinel: %+v", list)
	}
	if _, errOut, code := cli(t, "", "", "--sentinel-master", "unknown", "--sentinel", addr, "streams"); code != 1 || errOut == "" {
		t.Errorf("an unknown master: exit %d, %q", code, errOut)
	}
}
