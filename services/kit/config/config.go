// Package config reads a service's typed settings from environment
// variables and collects every bad value, so main can stop start-up with
// one clear line instead of failing later on a zero value.
//
// It never prints or exits; values of variables marked secret never appear
// in errors.
package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msctl/msctl/services/kit/validation"
)

// Env reads variables through a lookup function (os.LookupEnv in main, a
// map in tests) and remembers the problems it finds.
type Env struct {
	lookup func(string) (string, bool)
	errs   []string
	// noted, set only under Describe, hears each variable read and its
	// default.
	noted func(name, def string)
}

// New returns an Env reading through lookup.
func New(lookup func(string) (string, bool)) *Env {
	e := &Env{lookup: lookup}
	if id, ok := lookup(describeKey); ok {
		if fn, ok := describing.Load(id); ok {
			e.noted = fn.(func(name, def string))
		}
	}
	return e
}

// Var is a variable a service reads and its default ("" for none).
type Var struct{ Name, Default string }

// describeKey is asked of a lookup by New: Describe's lookup answers with
// the id of its recorder. No environment variable can have this name.
const describeKey = "\x00describe"

var (
	describing sync.Map // id -> func(name, def string)
	describes  atomic.Int64
)

// Describe runs load over an empty environment and returns the variables
// it reads, in the order read, with the defaults of those read through an
// Env, for a --help. Variables read only when another one is set are not
// listed.
func Describe[C any](load func(func(string) (string, bool)) (C, error)) []Var {
	id := strconv.FormatInt(describes.Add(1), 10)
	var vars []Var
	seen := map[string]bool{}
	note := func(name, def string) {
		if !seen[name] {
			seen[name] = true
			vars = append(vars, Var{Name: name, Default: def})
		}
	}
	describing.Store(id, note)
	defer describing.Delete(id)
	_, _ = load(func(k string) (string, bool) {
		if k == describeKey {
			return id, true
		}
		note(k, "") // read directly, not through an Env
		return "", false
	})
	return vars
}

// FromMap is a lookup over a fixed map, for tests.
func FromMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// get reads name; def is its default as text, for Describe.
func (e *Env) get(name, def string) (string, bool) {
	if e.noted != nil {
		e.noted(name, def)
	}
	v, ok := e.lookup(name)
	if !ok {
		return "", false
	}
	v = strings.TrimSpace(v)
	return v, v != ""
}

// Failf records a problem with a variable.
func (e *Env) Failf(name, format string, args ...any) {
	e.errs = append(e.errs, name+": "+fmt.Sprintf(format, args...))
}

// String returns the variable or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name, def); ok {
		return v
	}
	return def
}

// Int returns an integer variable within [lo, hi].
func (e *Env) Int(name string, def, lo, hi int) int {
	v, ok := e.get(name, strconv.Itoa(def))
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Failf(name, "%q is not an integer", v)
		return def
	}
	if n < lo || n > hi {
		e.Failf(name, "%d is outside [%d, %d]", n, lo, hi)
		return def
	}
	return n
}

// Float returns a number variable within [lo, hi].
func (e *Env) Float(name string, def, lo, hi float64) float64 {
	v, ok := e.get(name, strconv.FormatFloat(def, 'g', -1, 64))
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.Failf(name, "%q is not a number", v)
		return def
	}
	if f < lo || f > hi {
		e.Failf(name, "%g is outside [%g, %g]", f, lo, hi)
		return def
	}
	return f
}

// Duration returns a Go duration ("250ms", "20s") within [lo, hi].
func (e *Env) Duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := e.get(name, def.String())
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.Failf(name, "%q is not a duration (for example 500ms or 20s)", v)
		return def
	}
	if d < lo || d > hi {
		e.Failf(name, "%s is outside [%s, %s]", d, lo, hi)
		return def
	}
	return d
}

// Bool returns a boolean variable (true/false, 1/0, yes/no).
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name, strconv.FormatBool(def))
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	e.Failf(name, "%q is not a boolean (true or false)", v)
	return def
}

// Addr returns a listen address "host:port" (host may be empty, port 0
// picks a free one).
func (e *Env) Addr(name, def string) string {
	v := e.String(name, def)
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		e.Failf(name, "%q is not host:port", v)
		return def
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		e.Failf(name, "port %q is not a number in [0, 65535]", port)
		return def
	}
	return v
}

// Target returns a gRPC dial target: host:port, where host may be a DNS
// name such as user.shop.svc, optionally after the dns:/// or
// passthrough:/// scheme, or a unix socket (unix:path or unix:///path).
// A bad target is refused here rather than on the first call through it.
func (e *Env) Target(name, def string) string {
	v := e.String(name, def)
	if err := checkTarget(v); err != nil {
		e.Failf(name, "%q %v", v, err)
		return def
	}
	return v
}

func checkTarget(v string) error {
	if rest, ok := strings.CutPrefix(v, "unix:"); ok {
		if strings.TrimPrefix(rest, "//") == "" {
			return errors.New("names no socket path")
		}
		return nil
	}
	hostPort := v
	for _, scheme := range []string{"dns://", "passthrough://"} {
		if rest, ok := strings.CutPrefix(v, scheme); ok {
			// dns://resolver-authority/host:port: the address follows the
			// last slash.
			_, hostPort, ok = strings.Cut(rest, "/")
			if !ok {
				return fmt.Errorf("is not %shost:port", scheme+"/")
			}
			break
		}
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || host == "" || strings.ContainsAny(host, "/ ") {
		return errors.New("is not host:port (for example user:9090 or dns:///user.shop.svc:9090)")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("has port %q, not a number in [1, 65535]", port)
	}
	return nil
}

// Error is a problem with one variable found after the environment was
// read, such as a key file it names that cannot be loaded; command.Run
// answers it like a bad value, with one line and exit code 2.
type Error struct {
	Var string
	Err error
}

// Invalid returns an *Error blaming name for err.
func Invalid(name string, err error) *Error { return &Error{Var: name, Err: err} }

func (e *Error) Error() string {
	if e.Err == nil {
		return "invalid configuration: " + e.Var
	}
	return "invalid configuration: " + e.Var + ": " + validation.OneLine(e.Err.Error())
}

func (e *Error) Unwrap() error { return e.Err }

// Err reports every problem found so far on one line, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return errors.New("invalid configuration: " + strings.Join(e.errs, "; "))
}
