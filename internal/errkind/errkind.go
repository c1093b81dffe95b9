// Package errkind lets an error say what kind of failure it is (bad input, a
// timeout, a held lock, a canary outcome), so that the command line turns
// errors into exit codes in one place without knowing every domain's error
// types. Domain packages mark their errors; only internal/cli reads the kind.
package errkind

import (
	"errors"
	"fmt"
)

// Kind is what went wrong, as far as a caller deciding what to do next
// cares: retry, fix the input, wait for a lock, approve a canary.
type Kind int

// The kinds. Failure is every error that says nothing more.
const (
	Failure Kind = iota
	// BadInput is a mistake of the caller: flags, arguments, project file,
	// a revision or service that does not exist.
	BadInput
	// Timeout is work that did not finish within its deadline.
	Timeout
	// LockHeld is a service locked by another run.
	LockHeld
	// RolledBack is a canary that failed its analysis and was rolled back,
	// or was aborted.
	RolledBack
	// Paused is a canary waiting for approval.
	Paused
	// Inconclusive is a canary whose analysis had too little data to decide.
	Inconclusive
)

// Marked is an error that knows its kind.
type Marked interface {
	error
	ErrorKind() Kind
}

// Of returns the kind of the first marked error in err's chain, or Failure.
func Of(err error) Kind {
	var m Marked
	if errors.As(err, &m) {
		return m.ErrorKind()
	}
	return Failure
}

// Mark wraps err so that Of reports kind; the message is err's own.
func Mark(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &marked{kind: kind, err: err}
}

type marked struct {
	kind Kind
	err  error
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() error   { return m.err }
func (m *marked) ErrorKind() Kind { return m.kind }

// BadInputf is a BadInput error formatted as fmt.Errorf does, so that %w
// keeps the cause: the one way to say the caller is at fault.
func BadInputf(format string, args ...any) error {
	return Mark(BadInput, fmt.Errorf(format, args...))
}
