package config

import (
	"fmt"
	"strings"

	"github.com/msctl/msctl/internal/errkind"
)

// Problem is one thing wrong with the project file or an override of it.
type Problem struct {
	// Source is the file name, or the flag or variable the value came from.
	Source string `json:"source"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	// Path is the key at fault, e.g. services[1].ports.grpc.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Source)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is bad input: the project file can't be read, decoded or validated.
// It lists every problem found so `msctl config validate` can show them all;
// Error() gives the first on one line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid configuration"
	}
	s := e.Problems[0].String()
	if n := len(e.Problems) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more; see msctl config validate)", n)
	}
	return s
}

// ErrorKind marks the error as bad input (exit code 2).
func (e *Error) ErrorKind() errkind.Kind { return errkind.BadInput }

// problems collects Problems with the positions the decoder recorded.
type problems struct {
	source    string
	positions map[string]Pos
	list      []Problem
}

// at records a problem at the position of path (or its closest recorded
// parent, for a key that is missing altogether).
func (ps *problems) at(path, format string, args ...any) {
	p := Problem{Source: ps.source, Path: path, Message: fmt.Sprintf(format, args...)}
	for q := path; ; q = parentPath(q) {
		if pos, ok := ps.positions[q]; ok {
			p.Line, p.Column = pos.Line, pos.Column
			break
		}
		if q == "" {
			break
		}
	}
	ps.list = append(ps.list, p)
}

// written reports whether the file wrote path, even as 0, "" or null.
func (ps *problems) written(path string) bool {
	_, ok := ps.positions[path]
	return ok
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &Error{Problems: ps.list}
}

// parentPath returns the path one level up: services[1].ports -> services[1]
// -> services -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
