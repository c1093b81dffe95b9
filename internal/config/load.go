package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultFile is the project file msctl looks for in the working directory.
const DefaultFile = "msctl.yaml"

// DefaultPaths lists where msctl looks for the project file when --config is
// not given: ./msctl.yaml, then $XDG_CONFIG_HOME/msctl/config.yaml.
func DefaultPaths() []string {
	paths := []string{DefaultFile}
	if dir, err := os.UserConfigDir(); err == nil {
		paths = append(paths, filepath.Join(dir, "msctl", "config.yaml"))
	}
	return paths
}

// Find returns the project file to use: explicit if set (it must exist),
// else the first of DefaultPaths that exists.
func Find(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", &Error{Problems: []Problem{{Source: explicit, Message: describeOpenError(err)}}}
		}
		return explicit, nil
	}
	paths := DefaultPaths()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &Error{Problems: []Problem{{
		Source:  DefaultFile,
		Message: fmt.Sprintf("no project file found (looked for %s); run msctl init or pass --config", strings.Join(paths, " and ")),
	}}}
}

// Loaded is a project read from a file, with overrides, defaults applied and
// validated, and it remembers where every value came from.
type Loaded struct {
	Project *Project
	// File is the path the project was read from.
	File      string
	positions map[string]Pos
	overrides map[string]string
	// CanaryErr holds the canary blocks' problems of a project read by
	// LoadExceptCanary; nil when they have none.
	CanaryErr error
}

// Load reads the project file at path, applies the overrides, fills defaults
// and validates the result. Every problem is reported, each with its file,
// line and key; on any problem it returns *Error and no project.
func Load(path string, overrides []Override) (*Loaded, error) {
	return load(path, overrides, false)
}

// LoadExceptCanary is Load that sets the canary blocks' problems aside in
// Loaded.CanaryErr when they are the only ones. A canary in progress keeps
// the plan it started with, so what acts on one (abort, promote, status)
// must work while the file's canary block is being fixed.
func LoadExceptCanary(path string, overrides []Override) (*Loaded, error) {
	return load(path, overrides, true)
}

func load(path string, overrides []Override, exceptCanary bool) (*Loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []Problem{{Source: path, Message: describeOpenError(err)}}}
	}
	return parse(path, data, overrides, exceptCanary)
}

// Parse is Load for a file already in memory; name is used in messages.
func Parse(name string, data []byte, overrides []Override) (*Loaded, error) {
	return parse(name, data, overrides, false)
}

// canaryKey matches the keys of the project's and the services' canary
// blocks.
var canaryKey = regexp.MustCompile(`^(services\[\d+\]\.)?canary([.\[]|$)`)

func parse(name string, data []byte, overrides []Override, exceptCanary bool) (*Loaded, error) {
	ps := &problems{source: name, positions: map[string]Pos{}}
	var canary []Problem
	// failed reports the problems found so far. With exceptCanary, problems
	// all in canary blocks are set aside; any other fails with them all.
	failed := func() error {
		if exceptCanary && !slices.ContainsFunc(ps.list, func(p Problem) bool { return !canaryKey.MatchString(p.Path) }) {
			canary, ps.list = append(canary, ps.list...), nil
			return nil
		}
		if len(ps.list) == 0 {
			return nil
		}
		return &Error{Problems: append(canary, ps.list...)}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Problems: []Problem{{Source: name, Message: "the file is empty"}}}
		}
		return nil, &Error{Problems: []Problem{yamlSyntaxProblem(name, err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Problems: []Problem{{Source: name, Line: extra.Line, Message: "the file holds more than one YAML document"}}}
	}
	var p Project
	d := newDecoder(ps, &root)
	d.decode(&root, reflect.ValueOf(&p).Elem(), "")
	if d.overrun != nil {
		return nil, d.overrunError()
	}
	if err := failed(); err != nil {
		return nil, err
	}

	l := &Loaded{Project: &p, File: name, positions: ps.positions, overrides: map[string]string{}}
	for _, o := range overrides {
		s, err := lookupSetting(o.Key)
		if err != nil {
			return nil, err
		}
		l.overrides[o.Key] = o.Origin
		if err := s.set(&p, o.Value); err != nil {
			ps.list = append(ps.list, Problem{Source: o.Origin, Path: o.Key, Message: err.Error()})
		}
	}
	if err := failed(); err != nil {
		return nil, err
	}
	applyDefaults(&p, func(path string) bool {
		_, inFile := l.positions[path]
		_, overridden := l.overrides[path]
		return inFile || overridden
	})
	validate(&p, ps)
	for i, prob := range ps.list {
		// A bad overridden value is the flag's or variable's fault, not the file's.
		if origin, ok := l.overrides[prob.Path]; ok {
			ps.list[i] = Problem{Source: origin, Path: prob.Path, Message: prob.Message}
		}
	}
	if err := failed(); err != nil {
		return nil, err
	}
	if len(canary) > 0 {
		l.CanaryErr = &Error{Problems: canary}
	}
	return l, nil
}

// Origin says where the value at path came from: "flag --namespace",
// "env MSCTL_NAMESPACE", "msctl.yaml:7" or "default".
func (l *Loaded) Origin(path string) string {
	for q := path; ; q = parentPath(q) {
		if o, ok := l.overrides[q]; ok {
			return o
		}
		if q == "" {
			break
		}
	}
	if pos, ok := l.positions[path]; ok {
		return fmt.Sprintf("%s:%d", l.File, pos.Line)
	}
	return "default"
}

// Position returns where path was written in the file, if it was.
func (l *Loaded) Position(path string) (Pos, bool) {
	pos, ok := l.positions[path]
	return pos, ok
}

func yamlSyntaxProblem(name string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Source: name}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, scanErr := fmt.Sscanf(n, "%d", &p.Line); scanErr == nil {
				msg = after
			}
		}
	}
	p.Message = "malformed YAML: " + msg
	return p
}

func describeOpenError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err.Error()
		}
		return err.Error()
	}
}

// Only returns the project narrowed to the named services, in that order,
// with origins still pointing at the lines they came from.
func (l *Loaded) Only(names []string) *Loaded {
	p := *l.Project
	p.Services = nil
	out := &Loaded{Project: &p, File: l.File, positions: map[string]Pos{}, overrides: l.overrides}
	for k, v := range l.positions {
		if !strings.HasPrefix(k, "services[") {
			out.positions[k] = v
		}
	}
	for _, name := range names {
		i := slices.IndexFunc(l.Project.Services, func(s Service) bool { return s.Name == name })
		if i < 0 {
			continue
		}
		oldPrefix, newPrefix := fmt.Sprintf("services[%d]", i), fmt.Sprintf("services[%d]", len(p.Services))
		p.Services = append(p.Services, l.Project.Services[i])
		for k, v := range l.positions {
			if rest, ok := strings.CutPrefix(k, oldPrefix); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
				out.positions[newPrefix+rest] = v
			}
		}
	}
	return out
}
