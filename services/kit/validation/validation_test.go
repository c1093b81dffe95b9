package validation

import (
	"errors"
	"io"
	"testing"
)

func TestJoin(t *testing.T) {
	a, b := errors.New("order_id: is required"), errors.New("idempotency_key: is required")
	cases := []struct {
		name string
		errs []error
		want string // "" means nil
	}{
		{"none", nil, ""},
		{"all nil", []error{nil, nil}, ""},
		{"one", []error{nil, a}, "order_id: is required"},
		{"two on one line", []error{a, nil, b}, "order_id: is required; idempotency_key: is required"},
		{"a nested errors.Join is flattened", []error{errors.Join(a, b), io.EOF}, "order_id: is required; idempotency_key: is required; EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Join(tc.errs...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Join = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Join = %v, want %q", err, tc.want)
			}
			for _, e := range tc.errs {
				if e != nil && !errors.Is(err, e) {
					t.Errorf("errors.Is(Join, %v) = false", e)
				}
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	cases := map[string]string{
		"one line":       "one line",
		"a\nb":           "a; b",
		"a\r\n\n  b  \n": "a; b",
		"":               "",
	}
	for in, want := range cases {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
