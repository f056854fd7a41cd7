package redistest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a loopback TCP proxy in front of a server, for fault tests: it
// can cut every connection, lose the next reply the server sends, delay
// every reply, or take the server away for a while (Pause and Resume). It
// counts the bytes it forwards each way.
type Proxy struct {
	l        net.Listener
	upstream string

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	loseNext bool
	paused   bool
	wg       sync.WaitGroup

	delay              atomic.Int64 // time.Duration replies are held back
	loseEvery          atomic.Int64 // LoseReplies: lose every n-th reply
	replies            atomic.Int64 // pieces of reply data seen, for loseEvery
	lost               atomic.Int64 // pieces of reply data LoseReplies lost
	toServer, toClient atomic.Int64 // bytes forwarded
}

// StartProxy starts a proxy to the server's address; it stops when the test
// ends. Point a client at Proxy.Addr. On the cluster backend it skips the
// test (a cluster client learns the nodes' own addresses).
func (s *Server) StartProxy(t testing.TB) *Proxy {
	t.Helper()
	s.SkipOnCluster("the test cuts connections through a proxy to one node")
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
	p.cutLocked()
}

func (p *Proxy) cutLocked() {
	for c := range p.conns {
		_ = c.Close()
	}
}

// LoseNextReply makes the proxy discard the next data the server sends on
// any connection and cut that connection: the server executed a command
// whose reply the client never gets. Other connections stay up, so a
// client's retry on a pooled connection reaches the server.
func (p *Proxy) LoseNextReply() {
	p.mu.Lock()
	p.loseNext = true
	p.mu.Unlock()
}

// LoseReplies makes the proxy lose every n-th piece of data the server
// sends (one read of a connection's replies: one reply, or several of a
// pipeline) and cut that connection, from now on: the server executed the
// commands whose replies the client never gets. 0 turns it off.
func (p *Proxy) LoseReplies(n int) {
	p.loseEvery.Store(int64(max(n, 0)))
}

// LostReplies returns how many pieces of reply data LoseReplies has lost.
func (p *Proxy) LostReplies() int64 { return p.lost.Load() }

// DelayReplies holds back every piece of data the server sends by d from
// when the proxy receives it (order is kept); 0 turns the delay off for
// data received from then on. Commands reach the server at once: the
// server acts on them, the client learns of it d later.
func (p *Proxy) DelayReplies(d time.Duration) {
	p.delay.Store(int64(max(d, 0)))
}

// Pause takes the server away, as in a failover or a partition: every
// connection through the proxy is cut and new ones are refused (accepted,
// then closed at once, before any data is forwarded) until Resume. A
// command written before the cut may or may not have reached the server;
// nothing sent during the pause does.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	p.cutLocked()
}

// Resume ends a Pause: new connections are forwarded again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Traffic returns the bytes forwarded so far from clients to the server
// (commands) and from the server to clients (replies).
func (p *Proxy) Traffic() (toServer, toClient int64) {
	return p.toServer.Load(), p.toClient.Load()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			_ = client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.paused { // paused while dialling
			p.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			continue
		}
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(server, client, false)
		go p.pipe(client, server, true)
	}
}

// chunk is data read from the server, due to be written to the client.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies from src to dst until either closes; replies (server to
// client) can be lost or delayed on demand.
func (p *Proxy) pipe(dst, src net.Conn, replies bool) {
	defer p.wg.Done()
	defer p.forget(dst, src)
	var out chan chunk
	if replies {
		// Replies go through a writer that holds each chunk until it is
		// due, so a delay keeps their order.
		out = make(chan chunk, 1024)
		written := make(chan struct{})
		go func() {
			defer close(written)
			failed := false
			for c := range out {
				if failed {
					continue
				}
				if wait := time.Until(c.due); wait > 0 {
					time.Sleep(wait)
				}
				if _, err := dst.Write(c.b); err != nil {
					failed = true
					_ = src.Close() // ends the reader too
					continue
				}
				p.toClient.Add(int64(len(c.b)))
			}
		}()
		defer func() {
			close(out)
			<-written
		}()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !replies {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
				p.toServer.Add(int64(n))
			} else {
				if p.takeLose() {
					return // this connection only: the deferred forget closes it
				}
				if n := p.loseEvery.Load(); n > 0 && p.replies.Add(1)%n == 0 {
					p.lost.Add(1)
					return // this connection only: the deferred forget closes it
				}
				b := make([]byte, n)
				copy(b, buf[:n])
				out <- chunk{b: b, due: time.Now().Add(time.Duration(p.delay.Load()))}
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
