// Package redisserver runs redis-server as a child process on a free
// loopback port, for tests and benchmarks.
package redisserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config says how to run the server.
type Config struct {
	// Binary is the redis-server executable (default: from PATH).
	Binary string
	// Dir holds the server's files (AOF, log). Required.
	Dir string
	// Persist turns the AOF on, fsynced before each reply ("always"), so a
	// SIGKILL of the server loses nothing it acknowledged. With "everysec" a
	// slow fsync lets Redis reply before writing, and a SIGKILL then loses
	// acknowledged writes. Without Persist nothing is written to disk.
	Persist bool
	// Args are extra redis-server arguments.
	Args []string
	// Sentinel, when set, is the path of a Sentinel configuration file: the
	// server runs in sentinel mode (redis-server FILE --sentinel), which
	// rewrites the file as it learns the masters, replicas and other
	// Sentinels. Persist is ignored then.
	Sentinel string
}

// Server is a running (or killed) redis-server.
type Server struct {
	cfg  Config
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been reaped
}

// Binary returns the redis-server on PATH, or "" if there is none.
func Binary() string {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return ""
	}
	return p
}

// Start starts a server on a free loopback port and waits until it answers.
func Start(cfg Config) (*Server, error) {
	if cfg.Binary == "" {
		cfg.Binary = Binary()
		if cfg.Binary == "" {
			return nil, errors.New("redisserver: no redis-server on PATH")
		}
	}
	if cfg.Dir == "" {
		return nil, errors.New("redisserver: Config.Dir is required")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, port: port}
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := WaitReady(s.Addr(), 15*time.Second); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Args returns the redis-server arguments for a server on 127.0.0.1:port
// with its files in dir.
func Args(port int, dir string, persist bool) []string {
	args := []string{
		"--bind", "127.0.0.1",
		"--port", fmt.Sprint(port),
		"--dir", dir,
		"--save", "",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--loglevel", "warning",
	}
	if persist {
		return append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	return append(args, "--appendonly", "no")
}

// Addr returns host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Log returns what the server wrote to its log file (redis.log in its
// directory) so far.
func (s *Server) Log() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, "redis.log"))
	return string(b), err
}

func (s *Server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.cfg.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append(Args(s.port, s.cfg.Dir, s.cfg.Persist && s.cfg.Sentinel == ""), s.cfg.Args...)
	if s.cfg.Sentinel != "" {
		// The configuration file comes first; the arguments override it.
		args = append([]string{s.cfg.Sentinel, "--sentinel"}, args...)
	}
	cmd := exec.Command(s.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("redisserver: starting %s: %w", s.cfg.Binary, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(s.done)
	return nil
}

// stop sends sig (and SIGCONT, in case the process is stopped) and waits
// for the process to be reaped.
func (s *Server) stop(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
	default:
		if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.cmd = nil
	return nil
}

// Running reports whether the server's process runs: it was started and
// has been neither stopped nor seen to exit.
func (s *Server) Running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the server's process if it runs (SIGSTOP freezes
// it, SIGCONT resumes it).
func (s *Server) Signal(sig syscall.Signal) error {
	if !s.Running() {
		return nil
	}
	return s.cmd.Process.Signal(sig)
}

// Kill stops the server with SIGKILL, as in a crash.
func (s *Server) Kill() error { return s.stop(syscall.SIGKILL) }

// Restart kills the server if it runs, starts it again on the same port and
// directory, and waits until it answers.
func (s *Server) Restart() error {
	if err := s.stop(syscall.SIGKILL); err != nil {
		return err
	}
	if err := s.start(); err != nil {
		return err
	}
	return WaitReady(s.Addr(), 15*time.Second)
}

// Close stops the server (SIGTERM) and reaps it.
func (s *Server) Close() error { return s.stop(syscall.SIGTERM) }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady waits until the server at addr answers PING (and has loaded its
// data set).
func WaitReady(addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redisserver: %s not ready after %s: %w", addr, timeout, err)
}
