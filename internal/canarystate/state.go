// Package canarystate is a canary's state object: its schema, phases and
// encoding, and the compare-and-swap store that keeps one per service in
// the service's namespace. The driver (internal/canary) writes it; deploy
// reads it to refuse a deploy while a canary runs; status, explain and the
// dashboard read it. The same schema is written locally to a file.
//
// It holds no logic of its own about steps or verdicts and never talks to
// Prometheus.
package canarystate

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/config"
)

// SchemaVersion is the version of State's encoding; a reader refuses a
// newer one rather than misread it.
const SchemaVersion = 1

// Phase is where a canary stands.
type Phase string

// The phases. Succeeded, RolledBack, Aborted and Inconclusive are terminal.
const (
	Progressing  Phase = "Progressing"
	Paused       Phase = "Paused"
	Promoting    Phase = "Promoting"
	Succeeded    Phase = "Succeeded"
	RollingBack  Phase = "RollingBack"
	RolledBack   Phase = "RolledBack"
	Aborted      Phase = "Aborted"
	Inconclusive Phase = "Inconclusive"
)

// Open reports whether a canary in this state still takes requests and
// still keeps deploys away: one in progress, or an inconclusive one kept
// running.
func (s *State) Open() bool { return !s.Phase.Terminal() || s.Kept }

// Terminal reports whether the canary has ended.
func (p Phase) Terminal() bool {
	switch p {
	case Succeeded, RolledBack, Aborted, Inconclusive:
		return true
	}
	return false
}

// Action is what another process asks of a running canary.
type Action string

// The actions.
const (
	ActionPromote Action = "promote"
	ActionPause   Action = "pause"
	ActionResume  Action = "resume"
	ActionAbort   Action = "abort"
)

// Same reports whether r and o are the one request.
func (r *Request) Same(o *Request) bool {
	return r != nil && o != nil && r.Action == o.Action && r.Full == o.Full && r.By == o.By && r.At.Equal(o.At)
}

// Request is an action written into the state for the driver to carry out.
type Request struct {
	Action Action `json:"action"`
	// Full skips the remaining steps and analysis (promote only).
	Full bool      `json:"full,omitempty"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// Traffic is the split the driver last set: the canary's weight in
// percent, whether the A/B match of its step is on, and the mirrored
// percent.
type Traffic struct {
	Weight int  `json:"weight"`
	Match  bool `json:"match,omitempty"`
	Mirror int  `json:"mirror,omitempty"`
}

// Step is one step of the plan as the state records it.
type Step struct {
	Kind   config.StepKind `json:"kind"`
	Weight int             `json:"weight,omitempty"`
	// Pause is the pause's length; 0 with Kind pause is a manual gate.
	Pause time.Duration `json:"pause,omitempty"`
	// Match is the A/B match of a match step.
	Match      *config.Match `json:"match,omitempty"`
	Iterations int           `json:"iterations,omitempty"`
	Mirror     int           `json:"mirror,omitempty"`
}

// String says the step the way people read it.
func (s Step) String() string {
	switch s.Kind {
	case config.StepPause:
		if s.Pause == 0 {
			return "pause until approved"
		}
		return "pause " + s.Pause.String()
	case config.StepMatch:
		return fmt.Sprintf("A/B match for %d intervals", s.Iterations)
	case config.StepMirror:
		return fmt.Sprintf("mirror %d%%", s.Mirror)
	}
	return fmt.Sprintf("weight %d%%", s.Weight)
}

// Analysis is how a canary's checks are made and judged. It is pinned in
// the state when the canary starts, as its steps are: a project file
// changed, or broken, mid-canary changes nothing about a canary in
// progress.
type Analysis struct {
	// Interval is an analysis interval: a step's length, the point
	// estimate's window, and the unit of the counters' limits.
	Interval time.Duration `json:"interval"`
	// CheckEvery is how often the metrics are checked within an interval.
	CheckEvery time.Duration       `json:"checkEvery"`
	Metrics    []analysis.Metric   `json:"metrics"`
	Sequential analysis.Sequential `json:"sequential"`
	// MaxFailedChecks is how many failed intervals the threshold rule
	// survives; MaxNoDataChecks and MaxErrorChecks how many intervals with
	// too little data, or with Prometheus not answering, before the canary
	// is inconclusive.
	MaxFailedChecks int `json:"maxFailedChecks"`
	MaxNoDataChecks int `json:"maxNoDataChecks"`
	MaxErrorChecks  int `json:"maxErrorChecks"`
	// KeepInconclusive leaves an inconclusive canary running instead of
	// rolling it back.
	KeepInconclusive bool `json:"keepInconclusive,omitempty"`
}

// Counters count a canary's checks that kept it from advancing.
type Counters struct {
	// Failed counts failed checks under the threshold rule.
	Failed int `json:"failed"`
	// NoData counts intervals with too little data to decide.
	NoData int `json:"noData"`
	// Errors counts checks Prometheus could not answer.
	Errors int `json:"errors"`
}

// Finished is a canary that ended, kept in the state's history.
type Finished struct {
	Phase       Phase     `json:"phase"`
	Reason      string    `json:"reason"`
	CanaryImage string    `json:"canaryImage"`
	StartedAt   time.Time `json:"startedAt"`
	EndedAt     time.Time `json:"endedAt"`
}

// State is one service's canary.
type State struct {
	SchemaVersion int    `json:"schemaVersion"`
	Service       string `json:"service"`
	Phase         Phase  `json:"phase"`
	// Reason says in one line why the canary is paused or ended, or why it
	// is rolling back.
	Reason string `json:"reason,omitempty"`
	// Ending is the terminal phase a rollback ends in: RolledBack,
	// Aborted or Inconclusive.
	Ending Phase `json:"ending,omitempty"`
	// Kept is set on an Inconclusive canary left running (onInconclusive:
	// keep): it still takes promote and abort.
	Kept bool `json:"kept,omitempty"`

	Steps []Step `json:"steps"`
	// Analysis is the analysis the canary started with; nil in a state
	// written before msctl pinned it.
	Analysis *Analysis `json:"analysis,omitempty"`
	// Step is the index of the current step.
	Step        int       `json:"step"`
	StepStarted time.Time `json:"stepStarted"`
	// Iteration counts the analysis intervals passed in this step, and
	// IntervalStarted is when the current one began.
	Iteration       int       `json:"iteration"`
	IntervalStarted time.Time `json:"intervalStarted"`
	// Gate is set while a manual pause awaits approval.
	Gate    bool    `json:"gate,omitempty"`
	Traffic Traffic `json:"traffic"`
	// FullSince is when the canary began to take every request: from
	// then the stable has none, and a relative check compares with the
	// stable's last interval before it.
	FullSince time.Time `json:"fullSince,omitzero"`
	// PausedAt is when the current pause (Phase Paused) began; Waited is
	// the time spent in earlier ones. Neither counts against --timeout:
	// a person deciding is not the canary being slow.
	PausedAt time.Time     `json:"pausedAt,omitzero"`
	Waited   time.Duration `json:"waited,omitempty"`
	// StepWaited is Waited when the current step began: a timed pause
	// step counts only time it was not paused by a person.
	StepWaited time.Duration `json:"stepWaited,omitempty"`
	// Unwatched is the time no driver watched the canary (counted from
	// UpdatedAt when one takes it over), StepUnwatched its value when the
	// current step began: a timed pause counts only time the canary was
	// watched, so a rerun after the CI runner died waits the rest of it.
	Unwatched     time.Duration `json:"unwatched,omitempty"`
	StepUnwatched time.Duration `json:"stepUnwatched,omitempty"`

	CanaryImage string `json:"canaryImage"`
	// StableImage and StableRevision are the stable's before the canary,
	// until it succeeds: what a rollback or an abort restores.
	StableImage    string `json:"stableImage"`
	StableRevision int    `json:"stableRevision"`
	// PromotedRevision is the stable's revision once a promotion has
	// upgraded it to the canary's image, before the promotion is done.
	PromotedRevision int `json:"promotedRevision,omitempty"`

	Counters Counters `json:"counters"`
	// AnalysisSince is when the sequential test's counts start.
	AnalysisSince time.Time `json:"analysisSince"`
	// Checks are the latest checks, newest last, with their queries,
	// values, thresholds and reasons.
	Checks []analysis.Check `json:"checks,omitempty"`

	Request *Request `json:"request,omitempty"`
	// Driver is the lock identity of the process driving the canary.
	Driver      string    `json:"driver,omitempty"`
	DriverSince time.Time `json:"driverSince,omitzero"`

	StartedAt time.Time `json:"startedAt"`
	// UpdatedAt is when a driver last wrote the state (requests from
	// other processes leave it alone).
	UpdatedAt time.Time `json:"updatedAt"`
	// History holds the last few finished canaries of the service.
	History []Finished `json:"history,omitempty"`
}

// MaxChecks and MaxHistory bound what a state keeps, so the object stays
// well under the API server's size limit however long a canary runs.
const (
	MaxChecks  = 100
	MaxHistory = 5
)

// Record appends checks, keeping the newest MaxChecks.
func (s *State) Record(checks ...analysis.Check) {
	s.Checks = append(s.Checks, checks...)
	if over := len(s.Checks) - MaxChecks; over > 0 {
		s.Checks = append([]analysis.Check(nil), s.Checks[over:]...)
	}
}

// CurrentStep is the step the canary is at, or a zero Step past the end.
func (s *State) CurrentStep() Step {
	if s.Step < 0 || s.Step >= len(s.Steps) {
		return Step{}
	}
	return s.Steps[s.Step]
}

// Encode writes the state as JSON.
func Encode(s *State) ([]byte, error) {
	s.SchemaVersion = SchemaVersion
	return json.Marshal(s)
}

// Decode reads a state, refusing a newer schema.
func Decode(b []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("canary state is not valid JSON: %w", err)
	}
	if s.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("canary state has schema version %d; this msctl reads up to %d: upgrade msctl", s.SchemaVersion, SchemaVersion)
	}
	return &s, nil
}
