package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
)

// Environment of a worker process (see workerMain). The fault tests re-run
// the test binary with MIDSTREAM_TEST_WORKER=1 to get consumers that live in
// separate processes, so that they can be killed (SIGKILL), frozen (SIGSTOP)
// and resumed (SIGCONT) like real deployments.
const (
	envWorker          = "MIDSTREAM_TEST_WORKER" // "1": run a worker instead of the tests
	envWorkerAddr      = "REDIS_ADDR"            // host:port, or a redis:// URL
	envWorkerStream    = "STREAM"
	envWorkerGroup     = "GROUP"
	envWorkerName      = "NAME"
	envWorkerLedger    = "LEDGER"         // hash key: entry ID -> successful handler calls
	envWorkerSleep     = "HANDLER_SLEEP"  // duration each handler call takes
	envWorkerFail      = "HANDLER_FAIL"   // "1": every handler call fails, after sleeping
	envWorkerMinIdle   = "MIN_IDLE"       // consumer.WithMinIdle
	envWorkerClaim     = "CLAIM_INTERVAL" // consumer.WithClaimInterval
	envWorkerMaxDeliv  = "MAX_DELIVERIES" // consumer.WithMaxDeliveries
	envWorkerBackoff   = "RETRY_BACKOFF"  // consumer.WithRetryBackoff
	envWorkerConc      = "CONCURRENCY"    // consumer.WithConcurrency
	envWorkerBatch     = "BATCH_SIZE"     // consumer.WithBatchSize
	envWorkerLogLevel  = "LOG_LEVEL"      // slog level of the worker's log on stderr; default WARN
	workerReadyLine    = "ready"
	workerReadyTimeout = 30 * time.Second
)

// TestMain runs the tests, or, in a process started by startWorker, one
// worker.
func TestMain(m *testing.M) {
	if os.Getenv(envWorker) == "1" {
		os.Exit(workerMain())
	}
	os.Exit(m.Run())
}

// callsKey is the hash counting every handler call by entry ID (failed ones
// included), beside the ledger of successful ones.
func callsKey(ledger string) string { return ledger + ":calls" }

// callLogKey is the list where worker processes log each handler call that
// finished (see faultHandler.instance and parseCallLog).
func callLogKey(ledger string) string { return ledger + ":log" }

// Outcomes of a logged handler call.
const (
	callHandled = "handled" // recorded in the ledger, in the same transaction
	callFailed  = "failed"
)

// faultHandler is the handler of the fault tests, in worker processes and in
// process alike. Each call first counts itself in callsKey(ledger). An entry
// whose field "poison" is "1" then fails at once; in a worker process, one
// whose field "pill" is "1" makes the process exit (pillExitCode). Otherwise the call sleeps
// (to have work in flight when its process is killed or frozen), then fails
// if fail is set, else records the entry in the ledger (HINCRBY ledger id 1)
// before returning nil: an entry in the ledger was handled, whatever happens
// to its acknowledgement.
type faultHandler struct {
	rdb    redis.UniversalClient
	ledger string
	sleep  time.Duration
	fail   bool
	// onCall, when set, is called first with every message (in-process use).
	onCall func(m *consumer.Message)
	// instance, when set (worker processes: "pid/name"), makes every call
	// that finishes log itself in callLogKey(ledger): entry ID, instance,
	// start time in Unix nanoseconds and outcome. A successful call logs
	// itself in the same transaction as its ledger increment.
	instance string
}

// pillExitCode is the status of a worker process that met a crash pill
// (an entry whose field "pill" is "1").
const pillExitCode = 3

// errPoison is what a poison entry's handler returns.
var errPoison = errors.New("poison entry")

func (h *faultHandler) Handle(ctx context.Context, m *consumer.Message) error {
	start := time.Now()
	if h.onCall != nil {
		h.onCall(m)
	}
	if err := h.rdb.HIncrBy(ctx, callsKey(h.ledger), m.ID, 1).Err(); err != nil {
		return err
	}
	if m.Field("pill") == "1" && h.instance != "" {
		// A crash pill: the worker process dies while handling it.
		os.Exit(pillExitCode)
	}
	if m.Field("poison") == "1" {
		h.logCall(ctx, m.ID, start, callFailed)
		return errPoison
	}
	if h.sleep > 0 {
		t := time.NewTimer(h.sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if h.fail {
		h.logCall(ctx, m.ID, start, callFailed)
		return errors.New("late failure")
	}
	if h.instance == "" {
		return h.rdb.HIncrBy(ctx, h.ledger, m.ID, 1).Err()
	}
	tx := h.rdb.TxPipeline()
	tx.HIncrBy(ctx, h.ledger, m.ID, 1)
	tx.RPush(ctx, callLogKey(h.ledger), h.callRecord(m.ID, start, callHandled))
	_, err := tx.Exec(ctx)
	return err
}

func (h *faultHandler) callRecord(id string, start time.Time, outcome string) string {
	return fmt.Sprintf("%s %s %d %s", id, h.instance, start.UnixNano(), outcome)
}

// logCall logs a call that failed (best effort: the log is for reports).
func (h *faultHandler) logCall(ctx context.Context, id string, start time.Time, outcome string) {
	if h.instance != "" {
		_ = h.rdb.RPush(ctx, callLogKey(h.ledger), h.callRecord(id, start, outcome)).Err()
	}
}

// loggedCall is one record of callLogKey.
type loggedCall struct {
	id, instance, outcome string
	start                 time.Time
}

// instanceName names a worker process in the call log.
func instanceName(pid int, name string) string { return fmt.Sprintf("%d/%s", pid, name) }

// parseCallLog parses the records of callLogKey.
func parseCallLog(records []string) ([]loggedCall, error) {
	out := make([]loggedCall, 0, len(records))
	for _, r := range records {
		f := strings.Fields(r)
		if len(f) != 4 {
			return nil, fmt.Errorf("call log record %q", r)
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("call log record %q: %w", r, err)
		}
		out = append(out, loggedCall{id: f[0], instance: f[1], start: time.Unix(0, ns), outcome: f[3]})
	}
	return out, nil
}

// workerMain runs one consumer configured by the environment until SIGTERM
// (or SIGINT), then shuts it down gracefully and returns 0. It prints
// "ready" on stdout once the consumer is registered in its group. Problems go to stderr with a non-zero status.
func workerMain() int {
	if err := runWorker(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

func runWorker() error {
	env := func(k string) (string, error) {
		v := os.Getenv(k)
		if v == "" {
			return "", fmt.Errorf("%s not set", k)
		}
		return v, nil
	}
	var errs []error
	must := func(k string) string {
		v, err := env(k)
		errs = append(errs, err)
		return v
	}
	addr, stream, group, name, ledger := must(envWorkerAddr), must(envWorkerStream), must(envWorkerGroup), must(envWorkerName), must(envWorkerLedger)
	dur := func(k string) time.Duration {
		v := os.Getenv(k)
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		errs = append(errs, err)
		return d
	}
	num := func(k string) int {
		v := os.Getenv(k)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		errs = append(errs, err)
		return n
	}
	level := slog.LevelWarn
	if v := os.Getenv(envWorkerLogLevel); v != "" {
		errs = append(errs, level.UnmarshalText([]byte(v)))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := []consumer.Option{
		consumer.WithName(name),
		consumer.WithStart(consumer.StartBeginning),
		consumer.WithBlock(100 * time.Millisecond),
		consumer.WithLogger(log),
	}
	if d := dur(envWorkerMinIdle); d > 0 {
		opts = append(opts, consumer.WithMinIdle(d))
	}
	if d := dur(envWorkerClaim); d > 0 {
		opts = append(opts, consumer.WithClaimInterval(d))
	}
	if d := dur(envWorkerBackoff); d > 0 {
		opts = append(opts, consumer.WithRetryBackoff(d))
	}
	if n := num(envWorkerMaxDeliv); n > 0 {
		opts = append(opts, consumer.WithMaxDeliveries(n))
	}
	if n := num(envWorkerConc); n > 0 {
		opts = append(opts, consumer.WithConcurrency(n))
	}
	if n := num(envWorkerBatch); n > 0 {
		opts = append(opts, consumer.WithBatchSize(n))
	}
	sleep := dur(envWorkerSleep)
	if err := errors.Join(errs...); err != nil {
		return err
	}

	var ropts *redis.Options
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			return err
		}
		ropts = o
	} else {
		ropts = &redis.Options{Addr: addr}
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()

	h := &faultHandler{rdb: rdb, ledger: ledger, sleep: sleep, fail: os.Getenv(envWorkerFail) == "1",
		instance: instanceName(os.Getpid(), name)}
	c, err := consumer.New(rdb, stream, group, h, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	started := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()

	// Ready once the consumer shows in the group (Run registers it with
	// XGROUP CREATECONSUMER when it starts; a reused name exists before:
	// then once Run has had time to start).
	for ready := false; !ready; {
		select {
		case err := <-errc:
			return fmt.Errorf("Run returned before it was ready: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		infos, err := rdb.XInfoConsumers(ctx, stream, group).Result()
		if err != nil {
			continue // the group may not exist yet
		}
		for _, ci := range infos {
			if ci.Name == name && (ci.Idle < time.Since(started) || time.Since(started) > 200*time.Millisecond) {
				ready = true
			}
		}
	}
	fmt.Println(workerReadyLine)
	if err := <-errc; err != nil {
		return fmt.Errorf("Run: %w", err)
	}
	return nil
}
