package config

import (
	"strings"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"good values", map[string]string{"N": "5", "D": "2s", "F": "0.5", "B": "true", "A": "127.0.0.1:0"}, ""},
		{"not an int", map[string]string{"N": "five"}, `N: "five" is not an integer`},
		{"int out of range", map[string]string{"N": "99"}, "N: 99 is outside [1, 10]"},
		{"bad duration", map[string]string{"D": "2"}, `D: "2" is not a duration`},
		{"rate above one", map[string]string{"F": "1.5"}, "F: 1.5 is outside [0, 1]"},
		{"bad bool", map[string]string{"B": "maybe"}, `B: "maybe" is not a boolean`},
		{"bad addr", map[string]string{"A": "9090"}, `A: "9090" is not host:port`},
		{"target with a DNS name", map[string]string{"T": "user.shop.svc:9090"}, ""},
		{"target with a scheme", map[string]string{"T": "dns:///user:9090"}, ""},
		{"target with a resolver authority", map[string]string{"T": "dns://10.0.0.10:53/user:9090"}, ""},
		{"target on a unix socket", map[string]string{"T": "unix:///run/user.sock"}, ""},
		{"target IPv6", map[string]string{"T": "[::1]:9090"}, ""},
		{"target nonsense", map[string]string{"T": "nonsense"}, `T: "nonsense" is not host:port`},
		{"target without host", map[string]string{"T": ":9090"}, `T: ":9090" is not host:port`},
		{"target port zero", map[string]string{"T": "user:0"}, `T: "user:0" has port "0"`},
		{"target port too big", map[string]string{"T": "dns:///user:70000"}, `has port "70000"`},
		{"target scheme without address", map[string]string{"T": "dns:///"}, `T: "dns:///" is not host:port`},
		{"target unix without path", map[string]string{"T": "unix:"}, "names no socket path"},
		{"two problems on one line", map[string]string{"N": "x", "B": "y"}, `N: "x" is not an integer; B: "y"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := New(FromMap(tc.env))
			e.Int("N", 1, 1, 10)
			e.Duration("D", time.Second, 0, time.Minute)
			e.Float("F", 0, 0, 1)
			e.Bool("B", false)
			e.Addr("A", ":8080")
			e.Target("T", "dns:///user:9090")
			err := e.Err()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line containing %q", err, tc.wantErr)
			}
		})
	}
}
