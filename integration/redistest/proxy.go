package redistest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy in front of a server, for fault tests: it
// can cut every connection, or lose the next reply the server sends.
type Proxy struct {
	l        net.Listener
	upstream string

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	loseNext bool
	wg       sync.WaitGroup
}

// StartProxy starts a proxy to the server's address; it stops when the test
// ends. Point a client at Proxy.Addr.
func (s *Server) StartProxy(t testing.TB) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{l: l, upstream: s.Addr(), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Cut closes every connection through the proxy; new ones are accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// LoseNextReply makes the proxy discard the next data the server sends on
// any connection and cut every connection: the server executed a command
// whose reply the client never gets.
func (p *Proxy) LoseNextReply() {
	p.mu.Lock()
	p.loseNext = true
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(server, client, false)
		go p.pipe(client, server, true)
	}
}

// pipe copies from src to dst until either closes; replies (server to
// client) can be lost on demand.
func (p *Proxy) pipe(dst, src net.Conn, replies bool) {
	defer p.wg.Done()
	defer p.forget(dst, src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if replies && p.takeLose() {
				p.Cut()
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF, a reset or a Cut: the pipe ends either way
			return
		}
	}
}

func (p *Proxy) takeLose() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	lose := p.loseNext
	p.loseNext = false
	return lose
}

func (p *Proxy) forget(a, b net.Conn) {
	_ = a.Close()
	_ = b.Close()
	p.mu.Lock()
	delete(p.conns, a)
	delete(p.conns, b)
	p.mu.Unlock()
}

func (p *Proxy) close() {
	_ = p.l.Close()
	p.Cut()
	p.wg.Wait()
}
