package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/spf13/cobra"
)

// Exit codes. They are part of msctl's contract with CI pipelines: see the
// README and `msctl --help`. The canary codes are reserved for the canary
// commands; nothing else may use them.
const (
	ExitOK           = 0
	ExitFailure      = 1
	ExitUsage        = 2 // bad usage or bad input: flags, arguments, config
	ExitRolledBack   = 3 // the canary failed its analysis and was rolled back
	ExitPaused       = 4 // the canary is paused, awaiting approval
	ExitInconclusive = 5 // analysis had too little data to decide
	ExitTimedOut     = 6 // the rollout or canary did not finish in time
	ExitLockHeld     = 7 // another run holds the service's lock
	ExitInterrupted  = 130
)

const exitCodesHelp = `Exit codes:
  0    success
  1    failure
  2    bad usage or bad input (flags, arguments, project file)
  3    canary rolled back
  4    canary paused, awaiting approval
  5    canary analysis inconclusive
  6    timed out
  7    lock held by another run
  130  interrupted (Ctrl-C or SIGTERM)`

// UsageError is a mistake in how msctl was called: an unknown command or
// flag, a bad flag value, wrong arguments.
type UsageError struct {
	Err error
	// Cmd is the command whose --help the message points to.
	Cmd *cobra.Command
}

func (e *UsageError) Error() string {
	if e.Cmd == nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("%v (see '%s --help')", e.Err, e.Cmd.CommandPath())
}

func (e *UsageError) Unwrap() error { return e.Err }

// ErrorKind marks usage errors as bad input.
func (e *UsageError) ErrorKind() errkind.Kind { return errkind.BadInput }

// silentError carries an exit code for a failure the command has already
// reported in full (config validate prints every problem itself).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode is the one place that turns an error into an exit code: from
// the kind the error says it is (see internal/errkind), then from the
// context's own errors.
func exitCode(err error) int {
	var silent *silentError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &silent):
		return silent.code
	}
	switch errkind.Of(err) {
	case errkind.BadInput:
		return ExitUsage
	case errkind.Timeout:
		return ExitTimedOut
	case errkind.LockHeld:
		return ExitLockHeld
	case errkind.RolledBack:
		return ExitRolledBack
	case errkind.Paused:
		return ExitPaused
	case errkind.Inconclusive:
		return ExitInconclusive
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimedOut
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	}
	return ExitFailure
}
