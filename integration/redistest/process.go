package redistest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/redisserver"
)

// process runs redis-server as a child process (package redisserver).
type process struct{ *redisserver.Server }

func startProcess(t testing.TB, bin string) (backend, error) {
	s, err := redisserver.Start(redisserver.Config{Binary: bin, Dir: dataDir(t), Persist: true})
	if err != nil {
		return nil, err
	}
	return process{s}, nil
}

// dataDir returns a fresh directory for the server's files, in /dev/shm when
// there is one: the AOF is fsynced on every write, which costs nothing there
// and still survives a SIGKILL of the server.
func dataDir(t testing.TB) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "midstream-redistest-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func (p process) name() string   { return "process" }
func (p process) addr() string   { return p.Addr() }
func (p process) kill() error    { return p.Kill() }
func (p process) restart() error { return p.Restart() }
func (p process) close() error   { return p.Close() }

// StartReplica starts a redis-server replicating the server (REPLICAOF), in
// its own directory, and waits until its link to the server is up and the
// first sync is done. It is stopped when t ends. It returns the replica's
// address. It skips t on backends other than process.
func (s *Server) StartReplica(t testing.TB) string {
	t.Helper()
	p, ok := s.b.(process)
	if !ok {
		t.Skipf("redistest: StartReplica needs the process backend, not %s", s.Backend)
	}
	host, port, _ := strings.Cut(p.Addr(), ":")
	r, err := redisserver.Start(redisserver.Config{Binary: binary(), Dir: dataDir(t), Persist: true,
		Args: []string{"--replicaof", host, port}})
	if err != nil {
		t.Fatalf("redistest: starting a replica: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rdb.Close()
	deadline := time.Now().Add(readyWait)
	for {
		info, err := rdb.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0") {
			return r.Addr()
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: replica %s not in sync after %s: %v\n%s", r.Addr(), readyWait, err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
