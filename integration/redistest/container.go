package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	dockercontainer "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/midstream-go/midstream/internal/redisserver"
)

const (
	// envRyukDisabled turns off Ryuk, testcontainers' garbage collector
	// container. It would be pulled from a registry; the harness removes its
	// containers itself.
	envRyukDisabled = "TESTCONTAINERS_RYUK_DISABLED"
	// containerDir is the data directory inside the container. It lives in
	// the container's own filesystem, which survives kill and restart.
	containerDir = "/data"
	// readyLine is what redis-server logs (at level notice) once it serves.
	readyLine = "Ready to accept connections"
	// dockerWait bounds reaching the Docker engine, so that a missing or hung
	// engine is a quick error rather than a stuck test.
	dockerWait = 5 * time.Second
	// opWait bounds one container operation: create and start, kill, or stop
	// and remove.
	opWait = readyWait + 15*time.Second
)

// container runs redis-server in a Docker container with testcontainers-go.
// The container uses the host's network, so the server listens on a host
// loopback port just like the process backend. Images are never pulled: the
// image must exist locally (see .ci/redis-image.sh).
type container struct {
	p    *testcontainers.DockerProvider
	c    *testcontainers.DockerContainer
	port int
}

// startContainer runs a server from image, which must exist locally, on a free
// loopback port. It fails within dockerWait when no Docker engine answers.
func startContainer(t testing.TB, image string) (backend, error) {
	if os.Getenv(envRyukDisabled) == "" {
		if err := os.Setenv(envRyukDisabled, "true"); err != nil {
			return nil, err
		}
	}
	p, err := newProvider(tclog.TestLogger(t))
	if err != nil {
		return nil, err
	}
	b := &container{p: p}
	if err := b.create(image, t.Name()); err != nil {
		return nil, errors.Join(err, b.close())
	}
	return b, nil
}

// newProvider connects to the local Docker engine, giving up after dockerWait.
// Containers it creates default to the host network, so testcontainers never
// looks for or creates a bridge network.
func newProvider(logger tclog.Logger) (*testcontainers.DockerProvider, error) {
	type result struct {
		p   *testcontainers.DockerProvider
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := testcontainers.NewDockerProvider(
			testcontainers.WithLogger(logger),
			testcontainers.WithDefaultBridgeNetwork("host"),
		)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), dockerWait)
			err = p.Health(ctx)
			cancel()
		}
		if err != nil {
			err = fmt.Errorf("no Docker engine: %w", err)
		}
		if err == nil {
			err = checkProvider(p)
		}
		if err != nil && p != nil {
			_ = p.Close()
			p = nil
		}
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-time.After(dockerWait):
		go func() { // close the provider if it turns up late
			if r := <-ch; r.p != nil {
				_ = r.p.Close()
			}
		}()
		return nil, fmt.Errorf("no Docker engine answered within %s", dockerWait)
	}
}

// checkProvider refuses setups the backend cannot honour: Ryuk enabled (its
// image would be pulled) or an engine on another machine (host networking
// would put the server on that machine's loopback).
func checkProvider(p *testcontainers.DockerProvider) error {
	if !p.Config().RyukDisabled {
		return fmt.Errorf("the Ryuk reaper is enabled; set %s=true", envRyukDisabled)
	}
	host := p.Client().DaemonHost()
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("engine address %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		return nil
	case "tcp", "http", "https":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("engine at %s is not on this machine; host networking needs a local engine", host)
}

// create creates and starts the container on a free port, and waits until the
// server logs that it is ready.
func (b *container) create(image, testName string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opWait)
	defer cancel()
	// Checked here, so a missing image is an error instead of a pull.
	if _, err := b.p.Client().ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %s is not available locally (images are never pulled; build one with .ci/redis-image.sh and set %s): %w", image, EnvImage, err)
	}
	port, err := redisserver.FreePort()
	if err != nil {
		return err
	}
	b.port = port
	c, err := b.p.CreateContainer(ctx, testcontainers.ContainerRequest{
		Image: image,
		// Only arguments: both the image built by .ci/redis-image.sh and the
		// official image run redis-server with them. Notice level logs readyLine.
		Cmd:             append(redisserver.Args(port, containerDir, true), "--loglevel", "notice"),
		Labels:          map[string]string{"midstream-go.redistest": testName},
		AlwaysPullImage: false, // never pull; see the ImageInspect above
		HostConfigModifier: func(hc *dockercontainer.HostConfig) {
			hc.NetworkMode = "host"
		},
		WaitingFor: readyLog(1),
	})
	if c != nil {
		b.c = c.(*testcontainers.DockerContainer)
	}
	if err != nil {
		return err
	}
	return b.c.Start(ctx)
}

// readyLog waits until the container's log holds n ready lines: the log
// keeps the lines of earlier starts.
func readyLog(n int) wait.Strategy {
	return wait.ForLog(readyLine).WithOccurrence(n).WithStartupTimeout(readyWait)
}

// readyLines counts the ready lines in the container's log.
func (b *container) readyLines(ctx context.Context) (int, error) {
	r, err := b.c.Logs(ctx)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	log, err := io.ReadAll(r)
	return bytes.Count(log, []byte(readyLine)), err
}

func (b *container) name() string { return "container" }
func (b *container) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// kill sends SIGKILL to the server, as docker kill does, and waits until the
// container has stopped.
func (b *container) kill() error {
	ctx, cancel := context.WithTimeout(context.Background(), opWait)
	defer cancel()
	st, err := b.c.State(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		return nil
	}
	api := b.p.Client()
	wr := api.ContainerWait(ctx, b.c.GetContainerID(), client.ContainerWaitOptions{})
	if _, err := api.ContainerKill(ctx, b.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("container kill: %w", err)
	}
	select {
	case <-wr.Result:
		return nil
	case err := <-wr.Error:
		return fmt.Errorf("container wait: %w", err)
	}
}

// restart starts the same container again: same port, same /data.
func (b *container) restart() error {
	if err := b.kill(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opWait)
	defer cancel()
	n, err := b.readyLines(ctx)
	if err != nil {
		return fmt.Errorf("container logs: %w", err)
	}
	b.c.WaitingFor = readyLog(n + 1)
	return b.c.Start(ctx)
}

// close stops and removes the container, and closes the provider.
func (b *container) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), opWait)
	defer cancel()
	var err error
	if b.c != nil {
		err = b.c.Terminate(ctx)
	}
	return errors.Join(err, b.p.Close())
}
