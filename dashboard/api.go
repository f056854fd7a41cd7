package dashboard

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/internal/ops"
	"github.com/midstream-go/midstream/trim"
)

// CSRFHeader is the header every write action carries the page's
// anti-forgery token in.
const CSRFHeader = "X-Midstream-CSRF"

// maxWriteIDs bounds the dead letters one write action names.
const maxWriteIDs = 1000

// maxBody bounds a write action's request body.
const maxBody = 1 << 20

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	err    error
}

func (e apiError) Error() string { return e.err.Error() }

func badRequest(format string, args ...any) error {
	return apiError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// reply writes v as JSON, or err with a status: 400 for bad input, 404 for
// a missing stream, 500 otherwise (logged).
func (d *Dashboard) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		status := http.StatusInternalServerError
		var ae apiError
		switch {
		case errors.As(err, &ae):
			status = ae.status
		case errors.Is(err, midstream.ErrInvalidOption), errors.Is(err, midstream.ErrInvalidStream):
			status = http.StatusBadRequest
		case errors.Is(err, midstream.ErrNoStream):
			status = http.StatusNotFound
		}
		if status == http.StatusInternalServerError {
			d.cfg.logger.Warn("dashboard: request failed", "path", r.URL.Path, "error", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// streamParam returns the checked "stream" query parameter.
func streamParam(r *http.Request) (string, error) {
	s := r.URL.Query().Get("stream")
	if err := midstream.CheckStream(s); err != nil {
		return "", apiError{http.StatusBadRequest, err}
	}
	return s, nil
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	err := d.hist.sample(r.Context(), d.client, &d.cfg, d.cfg.interval)
	taken, truncated, streams := d.hist.view()
	d.reply(w, r, overview{Time: taken.UTC(), Patterns: d.cfg.patterns, Writable: d.cfg.writes,
		TokenRequired: d.cfg.writes && d.cfg.token != "", Truncated: truncated,
		IntervalMs: d.cfg.interval.Milliseconds(), Streams: streams}, err)
}

func (d *Dashboard) stream(w http.ResponseWriter, r *http.Request) {
	s, err := streamParam(r)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	det, err := ops.StreamInfo(r.Context(), d.client, s, trim.Policy{}, health.WithDeadLetterKey(r.URL.Query().Get("dlq")))
	d.reply(w, r, det, err)
}

func (d *Dashboard) pending(w http.ResponseWriter, r *http.Request) {
	s, err := streamParam(r)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	q := r.URL.Query()
	group := q.Get("group")
	if err := midstream.CheckName("group", group); err != nil {
		d.reply(w, r, nil, apiError{http.StatusBadRequest, err})
		return
	}
	limit, err := intParam(q.Get("limit"), ops.DefaultPendingLimit)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	page, err := ops.Pending(r.Context(), d.client, s, group, ops.PendingQuery{After: q.Get("after"),
		Consumer: q.Get("consumer"), Limit: limit, WithFields: q.Get("fields") == "1"})
	d.reply(w, r, page, err)
}

func (d *Dashboard) entry(w http.ResponseWriter, r *http.Request) {
	s, err := streamParam(r)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	e, ok, err := ops.GetEntry(r.Context(), d.client, s, r.URL.Query().Get("id"))
	if err == nil && !ok {
		err = apiError{http.StatusNotFound, errors.New("no such entry")}
	}
	d.reply(w, r, e, err)
}

// dlqPage is the JSON of api/dlq.
type dlqPage struct {
	Key     string           `json:"key"`
	Length  int64            `json:"length"`
	Entries []ops.DeadLetter `json:"entries"`
	Next    string           `json:"next"`
}

func (d *Dashboard) queue(stream, key string) (*deadletter.Queue, error) {
	if err := midstream.CheckStream(stream); err != nil {
		return nil, apiError{http.StatusBadRequest, err}
	}
	return deadletter.New(d.client, stream, deadletter.WithKey(key))
}

func (d *Dashboard) dlq(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dq, err := d.queue(q.Get("stream"), q.Get("dlq"))
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	limit, err := intParam(q.Get("limit"), 50)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	f := ops.DLQFilter{Group: q.Get("group"), Reason: q.Get("reason")}
	es, next, err := ops.ListDeadLetters(r.Context(), dq, f, q.Get("after"), limit)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	n, err := dq.Count(r.Context())
	d.reply(w, r, dlqPage{Key: dq.Key(), Length: n, Entries: es, Next: next}, err)
}

func intParam(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badRequest("limit %q: %v", s, err)
	}
	return n, nil
}

// writeRequest is the body of a write action.
type writeRequest struct {
	Stream string   `json:"stream"`
	DLQ    string   `json:"dlq"`
	IDs    []string `json:"ids"`
}

// write wraps a write action with its checks: write actions enabled, the
// request same-origin (net/http's cross-origin protection), the page's
// anti-forgery token, the bearer token when one is set, and a JSON body
// naming at most maxWriteIDs entries.
func (d *Dashboard) write(action func(*http.Request, *deadletter.Queue, []string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !d.cfg.writes {
			d.reply(w, r, nil, apiError{http.StatusForbidden, errors.New("read-only dashboard: write actions are not enabled")})
			return
		}
		if err := d.cop.Check(r); err != nil {
			d.reply(w, r, nil, apiError{http.StatusForbidden, fmt.Errorf("refused: %w", err)})
			return
		}
		if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(d.csrf)) != 1 {
			d.reply(w, r, nil, apiError{http.StatusForbidden, errors.New("refused: missing or wrong " + CSRFHeader + " header")})
			return
		}
		if d.cfg.token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(d.cfg.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="midstream"`)
				d.reply(w, r, nil, apiError{http.StatusUnauthorized, errors.New("refused: missing or wrong bearer token")})
				return
			}
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			d.reply(w, r, nil, apiError{http.StatusUnsupportedMediaType, errors.New("want application/json")})
			return
		}
		var req writeRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			d.reply(w, r, nil, badRequest("body: %v", err))
			return
		}
		if len(req.IDs) == 0 || len(req.IDs) > maxWriteIDs {
			d.reply(w, r, nil, badRequest("ids: want 1 to %d, got %d", maxWriteIDs, len(req.IDs)))
			return
		}
		for _, id := range req.IDs {
			if _, err := midstream.ParseID(id); err != nil {
				d.reply(w, r, nil, badRequest("ids: %v", err))
				return
			}
		}
		q, err := d.queue(req.Stream, req.DLQ)
		if err != nil {
			d.reply(w, r, nil, err)
			return
		}
		v, err := action(r, q, req.IDs)
		d.reply(w, r, v, err)
	}
}

func (d *Dashboard) redrive(r *http.Request, q *deadletter.Queue, ids []string) (any, error) {
	res, err := ops.Redrive(r.Context(), q, ids, d.cfg.redriveRate)
	d.cfg.logger.Info("dashboard: redrive", "stream", q.Source(), "ids", len(ids), "redriven", res.Redriven, "error", err)
	return res, err
}

// deleteResult is the JSON of api/dlq/delete.
type deleteResult struct {
	Deleted int64 `json:"deleted"`
}

func (d *Dashboard) delete(r *http.Request, q *deadletter.Queue, ids []string) (any, error) {
	n, err := q.Delete(r.Context(), ids...)
	d.cfg.logger.Info("dashboard: delete", "stream", q.Source(), "ids", len(ids), "deleted", n, "error", err)
	return deleteResult{Deleted: n}, err
}

func (d *Dashboard) tail(w http.ResponseWriter, r *http.Request) {
	s, err := streamParam(r)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	q := r.URL.Query()
	filter, err := ops.ParseFilters(q["filter"])
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	from := q.Get("from")
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		from = last // a reconnecting EventSource resumes after the last entry it got
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		d.reply(w, r, nil, errors.New("streaming unsupported"))
		return
	}
	select {
	case d.tails <- struct{}{}:
		defer func() { <-d.tails }()
	default:
		d.reply(w, r, nil, apiError{http.StatusServiceUnavailable, fmt.Errorf("too many live tails open (%d)", cap(d.tails))})
		return
	}
	ctx := r.Context()
	after, err := ops.StartID(ctx, d.client, s, from)
	if err != nil {
		d.reply(w, r, nil, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\nevent: ready\ndata: {\"after\":%q}\n\n", after)
	flusher.Flush()
	err = ops.Tail(ctx, d.client, s, ops.TailOptions{After: after, Filter: filter, OnRetry: func(err error) {
		d.cfg.logger.Warn("dashboard: tail read failed; retrying", "stream", s, "error", err)
	}}, func(e ops.Entry) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %s\nevent: entry\ndata: %s\n\n", e.ID, b); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(w, "event: failure\ndata: %q\n\n", err.Error())
		flusher.Flush()
	}
}
