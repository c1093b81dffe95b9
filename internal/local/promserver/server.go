package promserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
)

// Defaults of Options.
const (
	DefaultScrapeInterval = time.Second
	DefaultRetention      = 24 * time.Hour
	// DefaultQueryTimeout bounds one query; the analysis's queries take
	// milliseconds.
	DefaultQueryTimeout = 10 * time.Second
	// DefaultMaxSamples bounds the samples one query holds in memory at
	// once (about 16 bytes each), against the laptop's memory rather than
	// a server's: Prometheus's own default is 50 million.
	DefaultMaxSamples = 2_000_000
)

// maxConcurrentQueries is how many queries run at once; more wait for a
// slot, within their timeout. The machine has few cores and the scrapes
// must keep their pace.
const maxConcurrentQueries = 4

// Target is an HTTP endpoint serving metrics in Prometheus's text or
// OpenMetrics format.
type Target struct {
	// Job and Instance become the job and instance labels of every series
	// scraped from the target; Instance defaults to the URL's host:port.
	Job, Instance string
	// URL is the full scrape URL, e.g. http://127.0.0.1:9464/metrics; its
	// query parameters are sent with every scrape.
	URL string
	// Labels are added to every series scraped from the target.
	Labels map[string]string
	// HonorLabels keeps the target's own label values where they conflict
	// with Job, Instance or Labels (Prometheus's honor_labels), as the
	// gateway's Istio metrics need; otherwise the target's values are kept
	// as exported_<name>.
	HonorLabels bool
}

// Options tune a Server; the zero value gives the defaults.
type Options struct {
	// ScrapeInterval is how often every target is scraped (default 1s).
	ScrapeInterval time.Duration
	// Retention is how long samples are kept (default 24h).
	Retention time.Duration
	// QueryTimeout bounds every query (default DefaultQueryTimeout); a
	// request's timeout parameter can shorten it.
	QueryTimeout time.Duration
	// MaxSamples bounds the samples one query may hold in memory (default
	// DefaultMaxSamples); a query over it fails with errorType execution.
	MaxSamples int
	// Log receives the scrape manager's, the TSDB's and the engine's logs;
	// nil discards them.
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = DefaultScrapeInterval
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = DefaultMaxSamples
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server scrapes its targets into a TSDB and answers PromQL queries on it.
type Server struct {
	log     *slog.Logger
	db      *tsdb.DB
	tracker *promql.ActiveQueryTracker
	engine  *promql.Engine
	parser  parser.Parser
	scrapes *scrape.Manager
	handler http.Handler

	mu      sync.Mutex
	groups  map[string][]*targetgroup.Group // by scrape pool
	changed chan struct{}                   // signalled when groups change
	ran     bool
	stop    context.CancelFunc // ends a running Run
	done    chan struct{}      // closed when Run has returned
	closed  bool
}

// Open opens (or creates) the TSDB in dir and prepares the scrape manager
// and the query engine; nothing is scraped until Run. Samples written by an
// earlier Server on the same dir are queryable. Only one Server at a time
// may use a dir.
func Open(dir string, o Options) (*Server, error) {
	o = o.withDefaults()
	// A registry of its own: the libraries register their metrics on it,
	// and two Servers in one process do not collide.
	reg := prometheus.NewRegistry()

	dbOpts := tsdb.DefaultOptions()
	dbOpts.RetentionDuration = o.Retention.Milliseconds()
	dbOpts.WALCompression = compression.Snappy
	db, err := tsdb.Open(dir, o.Log, reg, dbOpts, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics storage in %s: %w", dir, err)
	}
	s := &Server{log: o.Log, db: db, groups: map[string][]*targetgroup.Group{}, changed: make(chan struct{}, 1)}
	if err := s.build(dir, o, reg); err != nil {
		_ = db.Close()
		if s.tracker != nil {
			_ = s.tracker.Close()
		}
		return nil, err
	}
	s.changed <- struct{}{} // Run starts by sending the (empty) target set.
	return s, nil
}

// build makes the engine, the scrape manager and the handler on s.db.
func (s *Server) build(dir string, o Options, reg prometheus.Registerer) error {
	var err error
	// The tracker bounds concurrent queries and, after a crash, logs the
	// queries that were running (its file is queries.active in dir).
	if s.tracker, err = promql.NewActiveQueryTracker(dir, maxConcurrentQueries, o.Log); err != nil {
		return fmt.Errorf("metrics query log in %s: %w", dir, err)
	}
	s.parser = parser.NewParser(parser.Options{})
	step := o.ScrapeInterval.Milliseconds()
	s.engine = promql.NewEngine(promql.EngineOpts{
		Logger:                   o.Log,
		Reg:                      reg,
		MaxSamples:               o.MaxSamples,
		Timeout:                  o.QueryTimeout,
		ActiveQueryTracker:       s.tracker,
		NoStepSubqueryIntervalFn: func(int64) int64 { return step },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   s.parser,
	})

	cfg, err := scrapeConfig(o.ScrapeInterval, o.Log)
	if err != nil {
		return err
	}
	s.scrapes, err = scrape.NewManager(&scrape.Options{
		// Target changes reach the scrape loops within this, not
		// Prometheus's 5 s: a canary's process comes and goes in seconds.
		DiscoveryReloadInterval:  model.Duration(100 * time.Millisecond),
		DiscoveryReloadOnStartup: true,
	}, o.Log, nil, nil, s.db, reg)
	if err != nil {
		return fmt.Errorf("metrics scraper: %w", err)
	}
	if err := s.scrapes.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("metrics scraper: %w", err)
	}
	s.handler = s.routes()
	return nil
}

// SetTargets replaces the set of scraped targets; it is safe while Run is
// running. A target that is gone gets staleness markers about two scrape
// intervals later, as in Prometheus. A bad target is an error naming it,
// and then the set in use does not change.
func (s *Server) SetTargets(ts []Target) error {
	groups, err := targetGroups(ts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.groups = groups
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default: // already signalled; Run reads the latest groups
	}
	return nil
}

// Run scrapes the targets until ctx ends or Close is called, then stops
// the scrape loops and returns nil. A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.ran {
		s.mu.Unlock()
		return errors.New("metrics server: Run called on a closed or already run server")
	}
	s.ran = true
	ctx, s.stop = context.WithCancel(ctx)
	done := make(chan struct{})
	s.done = done
	s.mu.Unlock()
	defer close(done)

	tsets := make(chan map[string][]*targetgroup.Group)
	ended := make(chan error, 1)
	go func() { ended <- s.scrapes.Run(tsets) }()
	for {
		select {
		case <-ctx.Done():
			s.scrapes.Stop()
			<-ended
			return nil
		case err := <-ended:
			return fmt.Errorf("metrics scraper stopped: %v", err)
		case <-s.changed:
			s.mu.Lock()
			groups := s.groups
			s.mu.Unlock()
			select {
			case tsets <- groups:
			case <-ctx.Done():
			}
		}
	}
}

// Handler serves the query part of Prometheus's HTTP API and its readiness
// and health endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops a running Run, waits for it, and closes the TSDB, which keeps
// what was scraped for the next Open of the same dir.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return errors.Join(s.tracker.Close(), s.db.Close())
}

// isClosed reports whether Close has been called.
func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// scrapeConfig is the scrape manager's configuration: one pool for targets
// whose labels are overridden by ours, one for those that keep their own.
// It goes through config.Load, so every default and check is Prometheus's.
func scrapeConfig(interval time.Duration, log *slog.Logger) (*config.Config, error) {
	d := model.Duration(interval).String()
	yaml := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
scrape_configs:
  - job_name: %[2]s
    honor_timestamps: false
  - job_name: %[3]s
    honor_labels: true
    honor_timestamps: false
`, d, poolOwnLabels, poolHonorLabels)
	cfg, err := config.Load(yaml, log)
	if err != nil {
		return nil, fmt.Errorf("scrape interval %s: %w", interval, err)
	}
	return cfg, nil
}
