package cli

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/output"
)

// canaryStates print as a table of canaries, or as JSON documents.
type canaryStates []*canarystate.State

func (c canaryStates) Table() output.TableData {
	t := output.TableData{Header: []string{"SERVICE", "PHASE", "STEP", "STABLE/CANARY", "CANARY", "STABLE", "LAST CHECKS", "DRIVER"}}
	for _, st := range c {
		step := "-"
		if len(st.Steps) > 0 {
			step = fmt.Sprintf("%d/%d %s", st.Step+1, len(st.Steps), st.CurrentStep())
		}
		driver := "-"
		if st.Driver != "" {
			driver = fmt.Sprintf("%s since %s", st.Driver, st.DriverSince.UTC().Format(time.RFC3339))
		}
		phase := string(st.Phase)
		if st.Reason != "" {
			phase += ": " + st.Reason
		}
		t.Rows = append(t.Rows, []string{st.Service, phase, step, fmt.Sprintf("%d/%d", 100-st.Traffic.Weight, st.Traffic.Weight),
			st.CanaryImage, st.StableImage, lastChecks(st.Checks), driver})
	}
	return t
}

// lastChecks is the newest check of each metric, value against threshold.
func lastChecks(checks []analysis.Check) string {
	seen := map[string]bool{}
	var parts []string
	for i := len(checks) - 1; i >= 0; i-- {
		c := checks[i]
		if seen[c.Metric] {
			continue
		}
		seen[c.Metric] = true
		parts = append([]string{fmt.Sprintf("%s %s %s", c.Metric, value(c), c.Decision)}, parts...)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func value(c analysis.Check) string {
	v := "no data"
	if c.Value != nil {
		v = strconv.FormatFloat(float64(*c.Value), 'f', 2, 64)
	}
	switch {
	case c.Min != nil:
		v += " (min " + strconv.FormatFloat(float64(*c.Min), 'g', -1, 64) + ")"
	case c.Max != nil:
		v += " (max " + strconv.FormatFloat(float64(*c.Max), 'g', -1, 64) + ")"
	}
	return v
}

// explanation prints every check of a canary with its reasons.
type explanation struct{ *canarystate.State }

func (e explanation) Text() string {
	var b strings.Builder
	st := e.State
	fmt.Fprintf(&b, "Canary of %s: %s -> %s, %s", st.Service, st.StableImage, st.CanaryImage, st.Phase)
	if st.Reason != "" {
		fmt.Fprintf(&b, " (%s)", st.Reason)
	}
	b.WriteString("\n")
	if len(st.Checks) == 0 {
		b.WriteString("No checks yet.\n")
	}
	for _, c := range st.Checks {
		fmt.Fprintf(&b, "\n%s  %s  %s (%s rule)\n  why:      %s\n  value:    %s over %s, %s requests, %s errors\n",
			c.At.UTC().Format(time.RFC3339), c.Metric, strings.ToUpper(string(c.Decision)), c.Rule, c.Reason, value(c), c.Window,
			strconv.FormatFloat(c.Requests, 'f', 0, 64), strconv.FormatFloat(c.Errors, 'f', 0, 64))
		if c.Rule == analysis.DecisionSequential {
			fmt.Fprintf(&b, "  evidence: %.3g against a bar of %.3g (since %s: %s requests, %s errors)\n", float64(c.Evidence), 1/c.Alpha,
				c.Since.UTC().Format(time.RFC3339), strconv.FormatFloat(c.TotalRequests, 'f', 0, 64), strconv.FormatFloat(c.TotalErrors, 'f', 0, 64))
		}
		fmt.Fprintf(&b, "  query:    %s\n", strings.Join(strings.Fields(c.Query), " "))
	}
	return b.String()
}

// canaryReport writes what CI asked for while a canary runs: NDJSON
// events, then a Markdown summary and JUnit XML at the end. Progress lines
// go to stderr unless -q.
type canaryReport struct {
	mu         sync.Mutex
	f          *Factory
	eventsPath string
	events     io.Writer
	openErr    error
	closers    []io.Closer
	summary    string
	junit      string
}

func newCanaryReport(f *Factory, events, summary, junit string) (*canaryReport, error) {
	r := &canaryReport{f: f, summary: summary, junit: junit, eventsPath: events}
	if events == "-" {
		r.events = f.IO.Out
	}
	return r, nil
}

// open creates the events file at the first event, so a run refused at
// once leaves an earlier file as it was.
func (r *canaryReport) open() {
	if r.events != nil || r.eventsPath == "" || r.openErr != nil {
		return
	}
	file, err := os.Create(r.eventsPath)
	if err != nil {
		r.openErr = fmt.Errorf("--events %s: %v", r.eventsPath, unwrapPathError(err))
		return
	}
	r.events, r.closers = file, append(r.closers, file)
}

func (r *canaryReport) event(e canary.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open()
	if r.events != nil {
		b, _ := json.Marshal(e)
		fmt.Fprintf(r.events, "%s\n", b)
	}
	if !r.f.Quiet() {
		fmt.Fprintf(r.f.IO.ErrOut, "%s %s step %d: %s\n", e.Time.UTC().Format("15:04:05"), e.Service, e.Step+1, e.Message)
	}
}

func (r *canaryReport) close() {
	for _, c := range r.closers {
		_ = c.Close()
	}
}

// finish writes the summary and the JUnit file for the final state.
func (r *canaryReport) finish(st *canarystate.State, outcome error) error {
	if r.openErr != nil {
		return r.openErr
	}
	if r.summary != "" {
		f, err := os.OpenFile(r.summary, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("--summary %s: %v", r.summary, unwrapPathError(err))
		}
		_, werr := io.WriteString(f, markdownSummary(st, outcome))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("--summary %s: %v", r.summary, werr)
		}
	}
	if r.junit != "" {
		b, err := junitReport(st)
		if err != nil {
			return err
		}
		if err := os.WriteFile(r.junit, b, 0o644); err != nil {
			return fmt.Errorf("--junit %s: %v", r.junit, unwrapPathError(err))
		}
	}
	return nil
}

func markdownSummary(st *canarystate.State, outcome error) string {
	var b strings.Builder
	icon := map[canarystate.Phase]string{canarystate.Succeeded: "✅", canarystate.RolledBack: "⏪", canarystate.Aborted: "⏹",
		canarystate.Inconclusive: "❔", canarystate.Paused: "⏸"}[st.Phase]
	fmt.Fprintf(&b, "### %s Canary of `%s`: %s\n\n", icon, st.Service, st.Phase)
	if st.Reason != "" {
		fmt.Fprintf(&b, "%s\n\n", st.Reason)
	} else if outcome != nil {
		fmt.Fprintf(&b, "%s\n\n", outcome)
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n| canary | `%s` |\n| stable | `%s` (revision %d) |\n| step | %d of %d |\n| traffic | %d%% canary |\n\n",
		st.CanaryImage, st.StableImage, st.StableRevision, st.Step+1, len(st.Steps), st.Traffic.Weight)
	if len(st.Checks) > 0 {
		b.WriteString("| time | metric | decision | value | requests | why |\n|---|---|---|---|---|---|\n")
		for _, c := range st.Checks {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.At.UTC().Format("15:04:05"), c.Metric, c.Decision, value(c),
				strconv.FormatFloat(c.Requests, 'f', 0, 64), strings.ReplaceAll(c.Reason, "|", `\|`))
		}
		b.WriteString("\n")
	}
	return b.String()
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	Output    string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
}

// junitReport makes each check a test case: failed checks fail, no-data
// and errors are skipped.
func junitReport(st *canarystate.State) ([]byte, error) {
	s := junitSuite{Name: "canary " + st.Service}
	for _, c := range st.Checks {
		tc := junitCase{Name: fmt.Sprintf("%s at %s", c.Metric, c.At.UTC().Format(time.RFC3339)), Classname: "msctl.canary." + st.Service,
			Output: strings.Join(strings.Fields(c.Query), " ")}
		switch c.Decision {
		case analysis.Fail:
			tc.Failure = &junitMessage{Message: c.Reason}
			s.Failures++
		case analysis.NoData, analysis.Error, analysis.Hold:
			tc.Skipped = &junitMessage{Message: string(c.Decision) + ": " + c.Reason}
			s.Skipped++
		}
		s.Cases = append(s.Cases, tc)
	}
	s.Tests = len(s.Cases)
	b, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
