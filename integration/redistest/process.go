package redistest

import (
	"os"
	"testing"

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
