package redistest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// process runs redis-server as a child process.
type process struct {
	bin     string
	dir     string
	port    int
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has been reaped
}

func startProcess(t testing.TB, bin string) (backend, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &process{bin: bin, dir: dataDir(t), port: port}
	p.logPath = filepath.Join(p.dir, "redis.log")
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
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

func (p *process) name() string { return "process" }
func (p *process) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

func (p *process) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, serverArgs(p.port, p.dir)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.bin, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(p.done)
	return nil
}

// stop sends sig and waits for the process to be reaped.
func (p *process) stop(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	select {
	case <-p.done:
	default:
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.cmd = nil
	return nil
}

func (p *process) kill() error { return p.stop(syscall.SIGKILL) }

func (p *process) restart() error {
	if err := p.stop(syscall.SIGKILL); err != nil {
		return err
	}
	return p.start()
}

func (p *process) close() error { return p.stop(syscall.SIGTERM) }
