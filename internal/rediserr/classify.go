package rediserr

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Class says what a loop should do about an error.
type Class int

// The classes. Every class but Canceled is retried after a backoff (see
// Backoff); they differ in what happens before the retry.
const (
	// Transient: retry the same thing after a backoff. The server is busy
	// or slow (LOADING, BUSY, a pool timeout), short of memory
	// (OOM: not fatal, memory may be freed by then; trimming frees some), or
	// lost a script (NOSCRIPT after SCRIPT FLUSH: go-redis's Script.Run
	// reloads it). Anything not classified otherwise is Transient.
	Transient Class = iota
	// Topology: the client talks to the wrong node, or to none. Call
	// Refresh, then retry after a backoff. Cluster redirections that
	// surface (MOVED, ASK), a replica or a cluster that cannot serve
	// (READONLY, CLUSTERDOWN, TRYAGAIN, MASTERDOWN), a closed client
	// (redis.ErrClosed, also a cluster's node client closed after the node
	// left), refused or failed dials, connections that end (io.EOF,
	// reset, broken pipe) and reads or writes that time out on a
	// connection (a node that stopped answering: frozen, cut off, or
	// just slow): a failover shows as any of these, so all of them
	// refresh the client's view (cheap: go-redis coalesces reloads).
	Topology
	// Config: Redis refuses the command in a way retrying cannot fix: a
	// missing permission (NOPERM, also raised inside a script; NOAUTH,
	// WRONGPASS), a key of another type (WRONGTYPE), an unknown, renamed or
	// disabled command. Retry a bounded number of times (Streak), then
	// return an error wrapping midstream.ErrMisconfigured (Fatal).
	Config
	// NoGroup: the consumer group or its stream is missing (NOGROUP, or a
	// blocked read UNBLOCKED because the stream was deleted). The caller
	// recreates them, then retries.
	NoGroup
	// Canceled: a context ended (context.Canceled, DeadlineExceeded). If it
	// is the caller's own ctx, the caller stops; otherwise (a per-call
	// timeout of its own) it treats the error as Transient.
	Canceled
)

// String returns the class's name in lower case, for logs.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Topology:
		return "topology"
	case Config:
		return "config"
	case NoGroup:
		return "nogroup"
	case Canceled:
		return "canceled"
	}
	return "unknown"
}

// Classify says what kind of error err is. Error replies from Redis are
// recognized by their code (the first word of the reply, found with
// errors.As through any wrapping), never by comparing whole messages;
// other errors by errors.Is and errors.As (redis.ErrClosed, *net.OpError,
// syscall errors, io.EOF, context errors). Classify(nil) is Transient: test
// for nil first.
//
// A loop that owns a ctx tests ctx.Err() before acting on the class: an
// operation cut short by the caller's own ctx may also surface as a failed
// dial (Topology).
func Classify(err error) Class {
	if err == nil {
		return Transient
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return classifyReply(reply.Error())
	}
	var op *net.OpError
	switch {
	case errors.Is(err, redis.ErrClosed), errors.Is(err, net.ErrClosed):
		return Topology
	case errors.As(err, &op) && op.Op == "dial":
		// Before the context errors: a dial timeout also matches
		// context.DeadlineExceeded.
		return Topology
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Canceled
	case errors.As(err, &op) && op.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		// A read or write deadline passed (i/o timeout): the node may be
		// gone without a word (kill of a host, partition, SIGSTOP).
		// go-redis hands over a read timeout as a bare
		// *poll.DeadlineExceededError (os.ErrDeadlineExceeded), not in a
		// *net.OpError.
		return Topology
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Topology
	}
	return Transient // redis.ErrPoolTimeout, anything unknown
}

// codes maps the error codes Redis starts its replies with to their class.
// The Transient ones are listed so that a code found inside a script's
// error (see classifyScript) ends the search.
var codes = map[string]Class{
	"NOPERM":      Config,
	"NOAUTH":      Config,
	"WRONGPASS":   Config,
	"WRONGTYPE":   Config,
	"NOGROUP":     NoGroup,
	"MOVED":       Topology,
	"ASK":         Topology,
	"READONLY":    Topology,
	"CLUSTERDOWN": Topology,
	"TRYAGAIN":    Topology,
	"MASTERDOWN":  Topology,
	"LOADING":     Transient,
	"BUSY":        Transient,
	"OOM":         Transient,
	"NOSCRIPT":    Transient,
	"MISCONF":     Transient,
	"NOREPLICAS":  Transient,
	"EXECABORT":   Transient,
}

// phrases are the texts after "ERR " that say retrying cannot fix the
// command. Observed on Redis 7.0:
//
//	ERR unknown command 'flushall', with args beginning with:      (also a rename-command'ed one)
//	ERR unknown subcommand 'bogus'. Try XINFO HELP.
//	ERR Unknown Redis command called from script script: <sha>, on @user_script:1.
//	ERR The user executing the script can't run this command or subcommand script: <sha>, on @user_script:1.
//	ERR This instance has cluster support disabled      (a cluster client on a standalone server)
//
// The last is what a user without the right to run, say, XACK gets from a
// script calling redis.call('XACK', ...): a NOPERM without its code (Redis
// 6.2 wraps the same text in "ERR Error running script ...").
var phrases = []string{
	"unknown command",
	"unknown subcommand",
	"Unknown Redis command called from script",
	"The user executing the script can't run this command",
	"This instance has cluster support disabled",
}

// classifyReply classifies the text of an error reply.
func classifyReply(msg string) Class {
	code, rest, _ := strings.Cut(msg, " ")
	if c, ok := codes[code]; ok {
		return c
	}
	switch code {
	case "UNBLOCKED":
		// XREADGROUP blocked on a stream that was deleted (Redis 7.0:
		// "UNBLOCKED the stream key no longer exists"); CLIENT UNBLOCK
		// ... ERROR gives another text, a passing event.
		if strings.HasPrefix(rest, "the stream key no longer exists") {
			return NoGroup
		}
	case "ERR":
		return classifyERR(rest)
	}
	return Transient
}

// classifyERR classifies the text of an "ERR ..." reply, without "ERR ".
func classifyERR(rest string) Class {
	// Some servers and proxies put "ERR " before the code (go-redis's
	// HasErrorPrefix skips it for KVRocks).
	first, _, _ := strings.Cut(rest, " ")
	if c, ok := codes[first]; ok {
		return c
	}
	if c, ok := classifyPhrase(rest); ok {
		return c
	}
	if strings.HasPrefix(rest, "Error running script") {
		return classifyScript(rest)
	}
	return Transient
}

// classifyPhrase recognizes the Config texts after "ERR ".
func classifyPhrase(s string) (Class, bool) {
	for _, p := range phrases {
		if strings.HasPrefix(s, p) {
			return Config, true
		}
	}
	// A command disabled in the configuration (Redis 7.0: "ERR DEBUG
	// command not allowed. If the enable-debug-command option is set
	// ...", the same for MODULE).
	if _, after, ok := strings.Cut(s, " "); ok && strings.HasPrefix(after, "command not allowed") {
		return Config, true
	}
	return Transient, false
}

// classifyScript finds the error a script raised inside a Redis 6.x
// "ERR Error running script (call to f_<sha>): @user_script:1: <error>"
// reply, where <error> is a reply without its "-" ("WRONGTYPE ..."), with
// it ("-READONLY ..."), or a text ("@user_script: 1: The user executing the
// script can't run this command or subcommand"). Redis 7 keeps the inner
// error's code at the start of the reply instead.
func classifyScript(msg string) Class {
	for _, part := range strings.Split(msg, ": ") {
		part = strings.TrimLeft(part, "- ")
		first, _, _ := strings.Cut(part, " ")
		if c, ok := codes[first]; ok {
			return c
		}
		if c, ok := classifyPhrase(part); ok {
			return c
		}
	}
	return Transient
}

// notRunCodes are the error codes by which a node refuses a command
// without running it because another master serves, or is about to serve,
// the command's key.
var notRunCodes = map[string]bool{
	"MOVED": true, "READONLY": true,
	"TRYAGAIN": true, "CLUSTERDOWN": true, "MASTERDOWN": true,
}

// Redirected reports whether err is a reply by which a node refused a
// command without running it because another master serves the command's
// key now or once a failover ends (MOVED, READONLY, TRYAGAIN, CLUSTERDOWN,
// MASTERDOWN): sending the command again, to the master the client then
// knows, cannot run it twice. ASK is not one: it names no new master (the
// key's slot is being migrated; the same master keeps answering ASK until
// the move ends). A cluster client follows such replies itself; a command
// sent on one node's connection (a pinned connection, a node client) gets
// them.
func Redirected(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	code, _, _ := strings.Cut(reply.Error(), " ")
	return notRunCodes[code]
}
