package errkind

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

type lockErr struct{}

func (lockErr) Error() string   { return "locked" }
func (lockErr) ErrorKind() Kind { return LockHeld }

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"plain", errors.New("x"), Failure},
		{"marked", Mark(Timeout, errors.New("slow")), Timeout},
		{"wrapped marked", fmt.Errorf("deploy: %w", Mark(BadInput, errors.New("bad"))), BadInput},
		{"own type", fmt.Errorf("a: %w", lockErr{}), LockHeld},
		{"outermost wins", Mark(Paused, fmt.Errorf("a: %w", lockErr{})), Paused},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("%s: Of = %v, want %v", tc.name, got, tc.want)
		}
	}
	if Mark(Timeout, nil) != nil {
		t.Error("Mark(nil) must stay nil")
	}
	e := errors.New("inner")
	if m := Mark(Timeout, e); m.Error() != "inner" || !errors.Is(m, e) {
		t.Errorf("Mark changed the message or the chain: %v", m)
	}
}

// BadInputf keeps the cause that %w wraps.
func TestBadInputfKeepsTheCause(t *testing.T) {
	err := BadInputf("values file %q: %w", "x.yaml", fs.ErrNotExist)
	if Of(err) != BadInput || !errors.Is(err, fs.ErrNotExist) || err.Error() != `values file "x.yaml": file does not exist` {
		t.Errorf("%v: kind %v, wraps ErrNotExist %v", err, Of(err), errors.Is(err, fs.ErrNotExist))
	}
}
