package promserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Error types of Prometheus's API.
const (
	errBadData  = "bad_data"
	errExec     = "execution"
	errCanceled = "canceled"
	errTimeout  = "timeout"
	errInternal = "internal"
	errUnready  = "unavailable"
)

// errorStatus is the HTTP status Prometheus answers an error type with.
func errorStatus(typ string) int {
	switch typ {
	case errBadData:
		return http.StatusBadRequest
	case errExec:
		return http.StatusUnprocessableEntity
	case errCanceled:
		return 499 // nginx's "client closed request", as Prometheus
	case errTimeout, errUnready:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// apiError is a failed request: Prometheus's error type and the message.
type apiError struct {
	typ string
	err error
}

// response is the envelope of every API answer.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

// queryData is the data of a query's answer.
type queryData struct {
	ResultType string `json:"resultType"`
	Result     any    `json:"result"`
}

// result is what an endpoint gives: data or an error, and the engine's or
// the storage's annotations, rendered against query.
type result struct {
	data  any
	err   *apiError
	warns annotations.Annotations
	query string
}

// minTime and maxTime bound the API's optional time ranges: Prometheus's,
// for the same answers to requests without start or end. Functions, so
// that nothing is computed at package initialisation.
func minTime() time.Time { return time.Unix(math.MinInt64/1000+62135596801, 0).UTC() }
func maxTime() time.Time { return time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC() }

// maxPoints is Prometheus's bound on the points of a range query's series.
const maxPoints = 11000

// routes is the HTTP API. Every endpoint takes GET and POST with a form, as
// Prometheus does and as client_golang's API client sends.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := map[string]func(*http.Request) result{
		"/api/v1/query":               s.query,
		"/api/v1/query_range":         s.queryRange,
		"/api/v1/series":              s.series,
		"/api/v1/labels":              s.labelNames,
		"/api/v1/label/{name}/values": s.labelValues,
	}
	for path, f := range api {
		h := s.endpoint(f)
		mux.Handle("GET "+path, h)
		mux.Handle("POST "+path, h)
	}
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "Prometheus Server is Healthy.")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if s.isClosed() {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "Prometheus Server is Ready.")
	})
	return mux
}

// endpoint wraps an API function: it parses the form and writes the answer
// in Prometheus's JSON.
func (s *Server) endpoint(f func(*http.Request) result) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res result
		switch {
		case s.isClosed():
			res.err = &apiError{errUnready, errors.New("the metrics server is closed")}
		default:
			if err := r.ParseForm(); err != nil {
				res.err = &apiError{errBadData, fmt.Errorf("error parsing form values: %w", err)}
			} else {
				res = f(r)
			}
		}
		resp := response{Status: "success", Data: res.data}
		code := http.StatusOK
		if res.err != nil {
			resp = response{Status: "error", ErrorType: res.err.typ, Error: res.err.err.Error(), Data: res.data}
			code = errorStatus(res.err.typ)
		}
		resp.Warnings, resp.Infos = res.warns.AsStrings(res.query, 10, 10)
		b, err := json.Marshal(resp)
		if err != nil {
			s.log.Error("metrics API: encoding an answer", "url", r.URL.String(), "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(b)
	})
}

// query is /api/v1/query: an instant query at time (default now).
func (s *Server) query(r *http.Request) result {
	ts, err := timeParam(r, "time", time.Now())
	if err != nil {
		return result{err: badParam(err, "time")}
	}
	return s.runQuery(r, func(ctx context.Context, opts promql.QueryOpts, q string) (promql.Query, error) {
		return s.engine.NewInstantQuery(ctx, s.db, opts, q, ts)
	})
}

// queryRange is /api/v1/query_range: a query at every step from start to
// end.
func (s *Server) queryRange(r *http.Request) result {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return result{err: badParam(err, "start")}
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return result{err: badParam(err, "end")}
	}
	if end.Before(start) {
		return result{err: badParam(errors.New("end timestamp must not be before start time"), "end")}
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return result{err: badParam(err, "step")}
	}
	if step <= 0 {
		return result{err: badParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")}
	}
	if end.Sub(start)/step > maxPoints {
		return result{err: &apiError{errBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}}
	}
	return s.runQuery(r, func(ctx context.Context, opts promql.QueryOpts, q string) (promql.Query, error) {
		return s.engine.NewRangeQuery(ctx, s.db, opts, q, start, end, step)
	})
}

// runQuery builds a query with newQuery, runs it within the request's
// timeout and the engine's, and truncates its result to the limit.
func (s *Server) runQuery(r *http.Request, newQuery func(context.Context, promql.QueryOpts, string) (promql.Query, error)) result {
	limit, err := limitParam(r)
	if err != nil {
		return result{err: badParam(err, "limit")}
	}
	ctx := r.Context()
	if v := r.FormValue("timeout"); v != "" {
		timeout, err := parseDuration(v)
		if err == nil && timeout <= 0 {
			err = fmt.Errorf("timeout must be positive, got %s", timeout)
		}
		if err != nil {
			return result{err: badParam(err, "timeout")}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var lookback time.Duration
	if v := r.FormValue("lookback_delta"); v != "" {
		if lookback, err = parseDuration(v); err != nil {
			return result{err: &apiError{errBadData, fmt.Errorf("error parsing lookback delta duration: %w", err)}}
		}
	}
	q := r.FormValue("query")
	qry, err := newQuery(ctx, promql.NewPrometheusQueryOpts(false, lookback, nil), q)
	if err != nil {
		return result{err: constructionError(err), query: q}
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return result{err: execError(res.Err), warns: res.Warnings, query: q}
	}
	value, truncated := truncate(res.Value, limit)
	if truncated {
		res.Warnings.Add(errors.New("results truncated due to limit"))
	}
	// The result is encoded before qry.Close returns its memory to the
	// engine's pools, since the answer is written after this returns.
	b, err := json.Marshal(value)
	if err != nil {
		return result{err: &apiError{errInternal, err}, query: q}
	}
	return result{data: queryData{ResultType: string(res.Value.Type()), Result: json.RawMessage(b)}, warns: res.Warnings, query: q}
}

// truncate keeps the first limit series of a vector or matrix (limit 0:
// all), and gives empty results as [] like Prometheus.
func truncate(v any, limit int) (any, bool) {
	switch v := v.(type) {
	case promql.Vector:
		if v == nil {
			return promql.Vector{}, false
		}
		if limit > 0 && len(v) > limit {
			return v[:limit], true
		}
	case promql.Matrix:
		if v == nil {
			return promql.Matrix{}, false
		}
		if limit > 0 && len(v) > limit {
			return v[:limit], true
		}
	}
	return v, false
}

// series is /api/v1/series: the label sets of the series matching any of
// the match[] selectors.
func (s *Server) series(r *http.Request) result {
	if len(r.Form["match[]"]) == 0 {
		return result{err: &apiError{errBadData, errors.New("no match[] parameter provided")}}
	}
	sel, bad := s.selection(r)
	if bad != nil {
		return result{err: bad}
	}
	defer sel.querier.Close()
	hints := &storage.SelectHints{Start: sel.start, End: sel.end, Func: "series", Limit: hintLimit(sel.limit)}
	var set storage.SeriesSet
	if len(sel.matchers) == 1 {
		set = sel.querier.Select(r.Context(), false, hints, sel.matchers[0]...)
	} else {
		sets := make([]storage.SeriesSet, 0, len(sel.matchers))
		for _, m := range sel.matchers {
			sets = append(sets, sel.querier.Select(r.Context(), true, hints, m...))
		}
		set = storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	}
	var res result
	found := []labels.Labels{}
	for set.Next() {
		if sel.limit > 0 && len(found) == sel.limit {
			res.warns.Add(errors.New("results truncated due to limit"))
			break
		}
		found = append(found, set.At().Labels())
	}
	res.warns.Merge(set.Warnings())
	if err := set.Err(); err != nil {
		return result{err: execError(err), warns: res.warns}
	}
	res.data = found
	return res
}

// labelNames is /api/v1/labels.
func (s *Server) labelNames(r *http.Request) result {
	return s.labelList(r, func(ctx context.Context, q storage.Querier, h *storage.LabelHints, m []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, h, m...)
	})
}

// labelValues is /api/v1/label/{name}/values.
func (s *Server) labelValues(r *http.Request) result {
	name := r.PathValue("name")
	if len(name) > 3 && name[:3] == "U__" {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return result{err: &apiError{errBadData, fmt.Errorf("invalid label name: %q", name)}}
	}
	return s.labelList(r, func(ctx context.Context, q storage.Querier, h *storage.LabelHints, m []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, h, m...)
	})
}

// labelList answers with the sorted union of list over the match[]
// selectors (or over all series without one).
func (s *Server) labelList(r *http.Request, list func(context.Context, storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error)) result {
	sel, bad := s.selection(r)
	if bad != nil {
		return result{err: bad}
	}
	defer sel.querier.Close()
	if len(sel.matchers) == 0 {
		sel.matchers = [][]*labels.Matcher{nil}
	}
	var res result
	union := map[string]bool{}
	for _, m := range sel.matchers {
		names, warns, err := list(r.Context(), sel.querier, &storage.LabelHints{Limit: hintLimit(sel.limit)}, m)
		res.warns.Merge(warns)
		if err != nil {
			return result{err: execError(err), warns: res.warns}
		}
		for _, n := range names {
			union[n] = true
		}
	}
	names := make([]string, 0, len(union))
	for n := range union {
		names = append(names, n)
	}
	slices.Sort(names)
	if sel.limit > 0 && len(names) > sel.limit {
		names = names[:sel.limit]
		res.warns.Add(errors.New("results truncated due to limit"))
	}
	res.data = names
	return res
}

// selection is what the metadata endpoints share: a limit (0: none), the
// match[] selectors, and a querier over start to end (default: all time),
// which the caller closes.
type selection struct {
	limit      int
	start, end int64 // milliseconds
	matchers   [][]*labels.Matcher
	querier    storage.Querier
}

// selection reads a metadata request's parameters and opens its querier.
func (s *Server) selection(r *http.Request) (selection, *apiError) {
	var sel selection
	limit, err := limitParam(r)
	if err != nil {
		return sel, badParam(err, "limit")
	}
	start, err := timeParam(r, "start", minTime())
	if err != nil {
		return sel, badParam(err, "start")
	}
	end, err := timeParam(r, "end", maxTime())
	if err != nil {
		return sel, badParam(err, "end")
	}
	if m := r.Form["match[]"]; len(m) > 0 {
		if sel.matchers, err = s.parser.ParseMetricSelectors(m); err != nil {
			return sel, badParam(err, "match[]")
		}
		for _, ms := range sel.matchers {
			if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
				return sel, &apiError{errBadData, errors.New("match[] must contain at least one non-empty matcher")}
			}
		}
	}
	sel.limit, sel.start, sel.end = limit, timestamp.FromTime(start), timestamp.FromTime(end)
	if sel.querier, err = s.db.Querier(sel.start, sel.end); err != nil {
		return sel, execError(err)
	}
	return sel, nil
}

// constructionError maps a failure to build a query: a timeout or a
// cancellation while it waited for a query slot, else a bad query.
// (Prometheus calls a deadline passed in the queue bad data; it is a
// timeout.)
func constructionError(err error) *apiError {
	var timeout promql.ErrQueryTimeout
	var canceled promql.ErrQueryCanceled
	if errors.As(err, &timeout) || errors.As(err, &canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return execError(err)
	}
	return &apiError{errBadData, fmt.Errorf("invalid parameter %q: %w", "query", err)}
}

// execError maps a failed query to Prometheus's error type for it.
func execError(err error) *apiError {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		storeErr promql.ErrStorage
	)
	switch {
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &apiError{errCanceled, err}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{errTimeout, err}
	case errors.As(err, &storeErr):
		return &apiError{errInternal, err}
	}
	return &apiError{errExec, err}
}

func badParam(err error, name string) *apiError {
	return &apiError{errBadData, fmt.Errorf("invalid parameter %q: %w", name, err)}
}

// timeParam is the time in the named form value, or def when it is empty.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	return parseTime(v)
}

// parseTime reads a time as the API takes it: Unix seconds with up to
// millisecond fractions, or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(t)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTime().Format(time.RFC3339Nano):
		return minTime(), nil
	case maxTime().Format(time.RFC3339Nano):
		return maxTime(), nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration reads a duration as the API takes it: seconds, or a
// Prometheus duration such as 5m.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if math.IsNaN(d) || d >= math.MaxInt64 || d < math.MinInt64 {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(d), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// limitParam is the limit form value; 0 means none.
func limitParam(r *http.Request) (int, error) {
	v := r.FormValue("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = errors.New("limit must be non-negative")
	}
	return n, err
}

// hintLimit asks the storage for one more than limit, so that a truncation
// can be noticed.
func hintLimit(limit int) int {
	if limit > 0 {
		return limit + 1
	}
	return 0
}
