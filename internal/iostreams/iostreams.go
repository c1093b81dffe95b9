// Package iostreams holds the standard streams a command writes to and what
// is known about them: whether they are terminals and whether colour is
// wanted. Commands never touch os.Stdout directly, so tests can run them
// against buffers with the terminal switched on or off.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the streams of one msctl invocation.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	noColor   bool
}

// System returns the process's streams, with terminal detection and the
// NO_COLOR convention (https://no-color.org) applied.
func System() *IOStreams {
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
		noColor:   noColor,
	}
}

// Test returns streams backed by buffers: stdin, stdout, stderr. None of them
// is a terminal until SetTTY says so.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks all three streams as terminals or not (for tests).
func (s *IOStreams) SetTTY(tty bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = tty, tty, tty
}

// DisableColor turns colour off whatever the terminal says (--no-color).
func (s *IOStreams) DisableColor() { s.noColor = true }

// IsStdinTTY reports whether a person can answer a prompt.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether results go to a terminal rather than a pipe.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether progress and logs go to a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorEnabled reports whether output may carry ANSI colours and spinners:
// only on a terminal, and never with NO_COLOR or --no-color.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// CanPrompt reports whether msctl may ask a question and wait for an answer.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stdoutTTY }

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
