package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/midstream-go/midstream"
)

// app is one run of the command: its flags, its streams and its client.
type app struct {
	in          io.Reader
	out, errOut io.Writer
	// interactive says whether in is a terminal a person answers on.
	interactive bool

	url            string
	cluster        []string
	sentinelMaster string
	sentinels      []string
	user, password string
	tls            bool
	timeout        time.Duration
	output         string

	client redis.UniversalClient
}

// run executes the command line args and returns the exit code: 0, 1 for
// an error, 2 for a usage error.
func run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	a := &app{in: in, out: out, errOut: errOut, interactive: isTerminal(in)}
	defer a.close()
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	if err := root.ExecuteContext(ctx); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "midstream: ") {
			msg = "midstream: " + msg
		}
		fmt.Fprintln(errOut, msg)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a bad command line.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "midstream",
		Short: "Inspect and operate Redis streams, consumer groups and dead letters",
		Long: `midstream inspects Redis streams, their consumer groups, pending entries and
dead-letter streams, redrives dead letters, tails streams live, and serves a
web dashboard with Prometheus metrics.

Connect with --url (or REDIS_URL): redis://[user:password@]host:port/db, or
rediss:// for TLS; with --cluster for a Redis Cluster (seed addresses); or
with --sentinel-master and --sentinel for Sentinel. Every command prints a
table by default and JSON with --output json (field names are stable; see
the package documentation).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", a.output)}
			}
			if a.timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %s: want > 0", a.timeout)}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.url, "url", "", "Redis URL (default $REDIS_URL, else redis://127.0.0.1:6379)")
	f.StringSliceVar(&a.cluster, "cluster", nil, "Redis Cluster seed addresses (host:port,...)")
	f.StringVar(&a.sentinelMaster, "sentinel-master", "", "Sentinel master name")
	f.StringSliceVar(&a.sentinels, "sentinel", nil, "Sentinel addresses (host:port,...)")
	f.StringVar(&a.user, "user", "", "ACL user (overrides the URL's)")
	f.StringVar(&a.password, "password", "", "password (overrides the URL's; default $REDIS_PASSWORD)")
	f.BoolVar(&a.tls, "tls", false, "use TLS with --cluster or --sentinel (rediss:// does it for --url)")
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "timeout of each Redis command")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(a.streamsCommand(), a.streamCommand(), a.pendingCommand(), a.entryCommand(),
		a.dlqCommand(), a.tailCommand(), a.topCommand(), a.dashboardCommand())
	return root
}

func (a *app) close() {
	if a.client != nil {
		_ = a.client.Close()
	}
}

// args checks a command's positional arguments, as a usage error.
func args(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// checkStream checks a stream name argument.
func checkStream(name string) error {
	if err := midstream.CheckStream(name); err != nil {
		return usageError{err}
	}
	return nil
}

// isTerminal reports whether f is a terminal (an *os.File on one).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}
