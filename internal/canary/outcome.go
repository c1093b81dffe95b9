package canary

import (
	"fmt"

	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/errkind"
)

// OutcomeError is how a canary that did not succeed ended, or where it
// stopped: rolled back or aborted (exit 3), paused awaiting approval (4),
// inconclusive (5), timed out (6).
type OutcomeError struct {
	Service string
	Phase   canarystate.Phase
	Reason  string
	// TimedOut is set when the run's --timeout ended it.
	TimedOut bool
}

func (e *OutcomeError) Error() string {
	return fmt.Sprintf("canary of %s %s: %s", e.Service, describePhase(e.Phase), e.Reason)
}

// ErrorKind maps the outcome to its exit code.
func (e *OutcomeError) ErrorKind() errkind.Kind {
	switch {
	case e.TimedOut:
		return errkind.Timeout
	case e.Phase == canarystate.Paused:
		return errkind.Paused
	case e.Phase == canarystate.Inconclusive:
		return errkind.Inconclusive
	case e.Phase == canarystate.RolledBack, e.Phase == canarystate.Aborted:
		return errkind.RolledBack
	}
	return errkind.Failure
}

func describePhase(p canarystate.Phase) string {
	switch p {
	case canarystate.RolledBack:
		return "rolled back"
	case canarystate.Aborted:
		return "aborted"
	case canarystate.Paused:
		return "paused"
	case canarystate.Inconclusive:
		return "inconclusive"
	}
	return string(p)
}

// Outcome turns a state into the error its phase means, nil for success
// and for a canary still progressing.
func Outcome(st *canarystate.State) error {
	switch st.Phase {
	case canarystate.Succeeded, canarystate.Progressing, canarystate.Promoting, canarystate.RollingBack:
		return nil
	}
	return &OutcomeError{Service: st.Service, Phase: st.Phase, Reason: st.Reason}
}
