package producer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// refusingServer is a RESP2 server that refuses the first refuse XADDs it
// gets with READONLY (a master demoted by a failover) and adds the others,
// counting them by their last argument; WAIT answers 1.
type refusingServer struct {
	l      net.Listener
	mu     sync.Mutex
	refuse int
	added  map[string]int
	ran    chan string // each XADD added, once run
	// refusal is the reply to a refused XADD; "" for READONLY.
	refusal string
	// refused is called when the last refusal was sent.
	refused func()
}

func newRefusingServer(t *testing.T, refuse int, refused func()) *refusingServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &refusingServer{l: l, refuse: refuse, refused: refused, added: map[string]int{}, ran: make(chan string, 16)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *refusingServer) serve(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	for {
		args, err := readArray(rd)
		if err != nil {
			return
		}
		var reply string
		switch string(bytes.ToUpper([]byte(args[0]))) {
		case "XADD":
			s.mu.Lock()
			if s.refuse > 0 {
				s.refuse--
				if s.refuse == 0 && s.refused != nil {
					s.refused()
				}
				reply = "-READONLY You can't write against a read only replica.\r\n"
				if s.refusal != "" {
					reply = "-" + s.refusal + "\r\n"
				}
			} else {
				s.added[args[len(args)-1]]++
				reply = fmt.Sprintf("$3\r\n%d-0\r\n", len(s.added))
				s.ran <- args[len(args)-1]
			}
			s.mu.Unlock()
		case "WAIT":
			reply = ":1\r\n"
		case "PING":
			reply = "+PONG\r\n"
		default:
			reply = "-ERR unknown command\r\n"
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

func readArray(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[0] != '*' {
		return nil, fmt.Errorf("bad array %q", line)
	}
	n, err := strconv.Atoi(line[1 : len(line)-2])
	if err != nil {
		return nil, fmt.Errorf("bad array %q", line)
	}
	args := make([]string, n)
	for i := range args {
		if line, err = rd.ReadString('\n'); err != nil {
			return nil, err
		}
		size, _ := strconv.Atoi(line[1 : len(line)-2])
		b := make([]byte, size+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// cutConn writes, once cut is on, only the first command of the next
// write of more than one XADD, waits until the server ran it, and fails: the connection was
// reset in the middle of a pipeline.
type cutConn struct {
	net.Conn
	cut *cutState
}

type cutState struct {
	mu   sync.Mutex
	on   bool
	done bool
	ran  chan string
}

func (c *cutConn) Write(b []byte) (int, error) {
	c.cut.mu.Lock()
	cut := c.cut.on && !c.cut.done && bytes.Count(b, []byte("XADD")) > 1
	if cut {
		c.cut.done = true
	}
	c.cut.mu.Unlock()
	if !cut {
		return c.Conn.Write(b)
	}
	end := bytes.Index(b[1:], []byte("\r\n*5\r\n")) // the end of the first XADD (of 5 arguments)
	if end < 0 {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(b[:end+3])
	if err != nil {
		return n, err
	}
	<-c.cut.ran
	c.Conn.Close()
	return n, errors.New("write: connection reset by peer")
}

// TestSendDurableWriteFailsAfterRefusal: a durable pipeline that the node
// refused (READONLY) is sent again; if that send fails part way through
// its write (the first XADD reached the server and ran), the commands must
// not be taken for refused again (their errors of the refused send left in
// place) and sent a third time: the first entry would be added twice.
func TestSendDurableWriteFailsAfterRefusal(t *testing.T) {
	cut := &cutState{}
	// The first send is refused; the next write of the XADDs is cut.
	srv := newRefusingServer(t, 2, func() {
		cut.mu.Lock()
		cut.on = true
		cut.mu.Unlock()
	})
	cut.ran = srv.ran
	rdb := redis.NewClient(&redis.Options{
		Addr: srv.l.Addr().String(), MaxRetries: -1, Protocol: 2, DisableIdentity: true,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err != nil {
				return nil, err
			}
			return &cutConn{Conn: c, cut: cut}, nil
		},
	})
	defer rdb.Close()
	s := &sender{client: rdb, stream: "s", durable: &durability{replicas: 1, timeout: time.Second}}
	ctx := context.Background()
	a := redis.NewStringCmd(ctx, "XADD", "s", "*", "v", "a")
	b := redis.NewStringCmd(ctx, "XADD", "s", "*", "v", "b")
	s.send(ctx, a, b)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.added["a"] > 1 {
		t.Errorf("entry a added %d times (errors: %v, %v)", srv.added["a"], a.Err(), b.Err())
	}
	if a.Err() == nil || b.Err() == nil {
		t.Errorf("a send cut in its write returned no error: %v, %v", a.Err(), b.Err())
	}
}

// TestSendDurableRefusals: a durable send refused with READONLY is sent
// again until the node takes it; one refused with ASK (its slot being
// migrated: no new master to go to) fails at once with the ASK, sent once.
func TestSendDurableRefusals(t *testing.T) {
	for _, tc := range []struct {
		refusal   string
		refuse    int
		wantSends int // XADDs refused
		wantErr   bool
	}{
		{"", 2, 2, false},
		{"ASK 3999 127.0.0.1:1", 3, 1, true},
	} {
		srv := newRefusingServer(t, tc.refuse, nil)
		srv.refusal = tc.refusal
		rdb := redis.NewClient(&redis.Options{Addr: srv.l.Addr().String(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
		s := &sender{client: rdb, stream: "s", durable: &durability{replicas: 1, timeout: time.Second}}
		ctx := context.Background()
		a := redis.NewStringCmd(ctx, "XADD", "s", "*", "v", "a")
		s.send(ctx, a)
		srv.mu.Lock()
		refused, added := tc.refuse-srv.refuse, srv.added["a"]
		srv.mu.Unlock()
		_ = rdb.Close()
		if refused != tc.wantSends || (a.Err() != nil) != tc.wantErr {
			t.Errorf("refusal %q: %d sends refused, err %v; want %d refused, error %v", tc.refusal, refused, a.Err(), tc.wantSends, tc.wantErr)
		}
		if want := map[bool]int{true: 0, false: 1}[tc.wantErr]; added != want {
			t.Errorf("refusal %q: entry added %d times, want %d", tc.refusal, added, want)
		}
	}
}
