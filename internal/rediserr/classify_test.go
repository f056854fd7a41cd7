package rediserr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/rediserr"
)

// reply is an error reply as go-redis hands it over: a type with the
// RedisError marker method.
type reply string

func (e reply) Error() string { return string(e) }
func (reply) RedisError()     {}

var _ redis.Error = reply("")

// The texts are Redis 7.0.15's replies unless the name says otherwise.
var classifyCases = []struct {
	name string
	err  error
	want rediserr.Class
}{
	// Config.
	{"NOPERM command", reply("NOPERM this user has no permissions to run the 'xack' command"), rediserr.Config},
	{"NOPERM key", reply("NOPERM this user has no permissions to access one of the keys used as arguments"), rediserr.Config},
	{"NOPERM eval", reply("NOPERM this user has no permissions to run the 'evalsha' command"), rediserr.Config},
	{"NOPERM in a script, 7.0", reply("ERR The user executing the script can't run this command or subcommand script: cea63c776e5f2bfbbd2fd9831cbf1aca41d44d5d, on @user_script:1."), rediserr.Config},
	{"NOPERM in a script, pcall", reply("ERR The user executing the script can't run this command or subcommand"), rediserr.Config},
	{"NOPERM in a script, 6.2", reply("ERR Error running script (call to f_9d8e7d9ded2347cdbe71587a84c735eb5b08877b): @user_script:1: @user_script: 1: The user executing the script can't run this command or subcommand"), rediserr.Config},
	{"NOPERM in a script, 7.2 style", reply("NOPERM User limited has no permissions to run the 'xack' command script: cea63c776e5f2bfbbd2fd9831cbf1aca41d44d5d, on @user_script:1."), rediserr.Config},
	{"NOAUTH", reply("NOAUTH Authentication required."), rediserr.Config},
	{"WRONGPASS", reply("WRONGPASS invalid username-password pair or user is disabled."), rediserr.Config},
	{"WRONGTYPE", reply("WRONGTYPE Operation against a key holding the wrong kind of value"), rediserr.Config},
	{"WRONGTYPE in a script", reply("WRONGTYPE Operation against a key holding the wrong kind of value script: 0ee52ba57d0a87eee2bde3f08233569cf987e34a, on @user_script:1."), rediserr.Config},
	{"WRONGTYPE in a script, 6.2", reply("ERR Error running script (call to f_0ee52ba57d0a87eee2bde3f08233569cf987e34a): @user_script:1: WRONGTYPE Operation against a key holding the wrong kind of value"), rediserr.Config},
	{"WRONGTYPE after ERR (proxies)", reply("ERR WRONGTYPE Operation against a key holding the wrong kind of value"), rediserr.Config},
	{"unknown or renamed command", reply("ERR unknown command 'flushall', with args beginning with: "), rediserr.Config},
	{"unknown subcommand", reply("ERR unknown subcommand 'bogus'. Try XINFO HELP."), rediserr.Config},
	{"unknown command in a script", reply("ERR Unknown Redis command called from script script: c034e59665af1503b026d74b6c6b93fcc3282e71, on @user_script:1."), rediserr.Config},
	{"disabled command", reply(`ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.`), rediserr.Config},
	{"cluster client on a standalone server", reply("ERR This instance has cluster support disabled"), rediserr.Config},
	{"wrapped", fmt.Errorf("trim %s: %w", "s", reply("NOPERM this user has no permissions to run the 'eval' command")), rediserr.Config},
	{"joined", errors.Join(errors.New("first"), reply("WRONGTYPE Operation against a key holding the wrong kind of value")), rediserr.Config},

	// NoGroup.
	{"NOGROUP", reply("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option"), rediserr.NoGroup},
	{"NOGROUP in a script", reply("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option script: ffb2c627e22872a889b9910ba6c271b46724124c, on @user_script:1."), rediserr.NoGroup},
	{"NOGROUP while blocked", reply("NOGROUP the consumer group this client was blocked on no longer exists"), rediserr.NoGroup},
	{"stream deleted while blocked", reply("UNBLOCKED the stream key no longer exists"), rediserr.NoGroup},
	{"NOGROUP in a script, 6.2", reply("ERR Error running script (call to f_ffb2c627e22872a889b9910ba6c271b46724124c): @user_script:1: NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option"), rediserr.NoGroup},

	// Topology.
	{"MOVED", reply("MOVED 3999 127.0.0.1:6381"), rediserr.Topology},
	{"ASK", reply("ASK 3999 127.0.0.1:6381"), rediserr.Topology},
	{"READONLY", reply("READONLY You can't write against a read only replica."), rediserr.Topology},
	{"READONLY in a script, 6.2", reply("ERR Error running script (call to f_ab5a402eac2ea8cb211185723d9390126aed2cfa): @user_script:1: -READONLY You can't write against a read only replica."), rediserr.Topology},
	{"CLUSTERDOWN", reply("CLUSTERDOWN The cluster is down"), rediserr.Topology},
	{"TRYAGAIN", reply("TRYAGAIN Multiple keys request during rehashing of slot"), rediserr.Topology},
	{"MASTERDOWN", reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), rediserr.Topology},
	{"closed client", redis.ErrClosed, rediserr.Topology},
	{"closed client, wrapped", fmt.Errorf("scan: %w", redis.ErrClosed), rediserr.Topology},
	{"closed connection", &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}, rediserr.Topology},
	{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, rediserr.Topology},
	{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}, rediserr.Topology},
	{"reset", &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, rediserr.Topology},
	{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}}, rediserr.Topology},
	{"EOF", io.EOF, rediserr.Topology},
	{"unexpected EOF", fmt.Errorf("reading reply: %w", io.ErrUnexpectedEOF), rediserr.Topology},

	// Transient.
	{"LOADING", reply("LOADING Redis is loading the dataset in memory"), rediserr.Transient},
	{"BUSY", reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."), rediserr.Transient},
	{"OOM", reply("OOM command not allowed when used memory > 'maxmemory'."), rediserr.Transient},
	{"OOM in a script", reply("OOM command not allowed when used memory > 'maxmemory'. script: ab5a402eac2ea8cb211185723d9390126aed2cfa, on @user_script:1."), rediserr.Transient},
	{"NOSCRIPT", redis.ErrNoScript, rediserr.Transient},
	{"MISCONF", reply("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), rediserr.Transient},
	{"max clients", reply("ERR max number of clients reached"), rediserr.Transient},
	{"other UNBLOCKED", reply("UNBLOCKED client unblocked via CLIENT UNBLOCK"), rediserr.Transient},
	{"BUSYGROUP", reply("BUSYGROUP Consumer Group name already exists"), rediserr.Transient},
	{"other ERR", reply("ERR Invalid stream ID specified as stream command argument"), rediserr.Transient},
	{"script error of its own", reply("ERR Error running script (call to f_x): @user_script:3: user_script:3: attempt to compare nil with number"), rediserr.Transient},
	{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, rediserr.Topology},
	{"write timeout", &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}, rediserr.Topology},
	{"read timeout as go-redis returns it", os.ErrDeadlineExceeded, rediserr.Topology},
	{"read timeout as go-redis returns it, wrapped", fmt.Errorf("trim s: %w", os.ErrDeadlineExceeded), rediserr.Topology},
	{"pool timeout", redis.ErrPoolTimeout, rediserr.Transient},
	{"unknown", errors.New("something else"), rediserr.Transient},
	{"nil", nil, rediserr.Transient},

	// Canceled.
	{"canceled", context.Canceled, rediserr.Canceled},
	{"deadline", fmt.Errorf("pass: %w", context.DeadlineExceeded), rediserr.Canceled},
}

func TestClassify(t *testing.T) {
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := rediserr.Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[rediserr.Class]string{
		rediserr.Transient: "transient", rediserr.Topology: "topology", rediserr.Config: "config",
		rediserr.NoGroup: "nogroup", rediserr.Canceled: "canceled", rediserr.Class(-1): "unknown",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d: %q, want %q", int(c), got, want)
		}
	}
}

// TestRedirected: the replies by which a node refuses a command it did not
// run because another master serves its key (now or after a failover) are
// told apart from every other error (ASK, a reply that ran or may have
// run, a connection error; a wrapped reply is found).
func TestRedirected(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{reply("MOVED 4867 127.0.0.1:36549"), true},
		{reply("ASK 4867 127.0.0.1:36549"), false}, // no new master: the slot is being migrated
		{reply("READONLY You can't write against a read only replica."), true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{reply("CLUSTERDOWN The cluster is down"), true},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{fmt.Errorf("producer: publish: %w", reply("MOVED 1 127.0.0.1:1")), true},
		{reply("NOREPLICAS Not enough good replicas to write."), false},
		{reply("ERR MOVED is not a thing here"), false},
		{reply("OOM command not allowed when used memory > 'maxmemory'."), false},
		{reply("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{io.EOF, false},
		{errors.New("MOVED 1 127.0.0.1:1"), false}, // not a reply
		{nil, false},
	} {
		if got := rediserr.Redirected(tc.err); got != tc.want {
			t.Errorf("Redirected(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
