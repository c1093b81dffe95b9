package analysis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// spacingWindow is how far back ScrapeSpacing counts samples: long enough
// for two samples at a scrape interval of one minute.
const spacingWindow = 2 * time.Minute

// ScrapeSpacing measures how often Prometheus samples the request metrics
// of t's stable workload: the mean spacing of samples over the last two
// minutes, of the closest-sampled series there for all of them. ok is
// false when there is none to measure (a stable with no traffic, or
// younger than two minutes). Every built-in check reads rate() or
// counters over an interval, and an interval with fewer than two samples
// of a series reads nothing: an interval shorter than twice this spacing
// gives no data for ever.
func (a *Analyzer) ScrapeSpacing(ctx context.Context, t Target, at time.Time) (spacing time.Duration, ok bool, err error) {
	if a.Querier == nil {
		return 0, false, errors.New("no Prometheus to query")
	}
	stable := t
	stable.Canary = t.Stable
	sel := `istio_requests_total{` + istioSelector + `}`
	win := promDuration(spacingWindow)
	// Per series, the window over its samples in it; of the series there
	// for the whole window (at its start and now), the closest: a series
	// that missed scrapes, or one whose pod went away, reads wider.
	q, err := parseTemplate(`min(
	(`+strconv.Itoa(int(spacingWindow.Seconds()))+` / count_over_time(`+sel+`[`+win+`]))
	and `+sel+` offset `+win+`
	and `+sel+`
)`, vars(stable, spacingWindow))
	if err != nil {
		return 0, false, err
	}
	qctx, cancel := context.WithTimeout(ctx, a.queryTimeout(t.Interval))
	defer cancel()
	s, err := a.Querier.Query(qctx, q, at)
	if err != nil || !s.OK {
		return 0, false, err
	}
	return time.Duration(s.Value * float64(time.Second)).Round(time.Second), true, nil
}

// SpacingProblem says why interval is too short for samples spacing apart,
// or "" when it is not.
func SpacingProblem(interval, spacing time.Duration) string {
	if interval >= 2*spacing {
		return ""
	}
	return fmt.Sprintf("analysis.interval %s is less than twice the spacing of the request metrics' samples (%s, the scrape interval): every check would read fewer than two samples and find no data; set it to %s or more",
		interval, spacing, 2*spacing)
}
