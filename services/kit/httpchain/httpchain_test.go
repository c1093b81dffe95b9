package httpchain

import (
	"log/slog"
	"testing"
	"time"
)

func TestLevel(t *testing.T) {
	slow := 100 * time.Millisecond
	quiet := Options{Quiet: func(p string) bool { return p == "/metrics" }}
	cases := []struct {
		code int
		d    time.Duration
		path string
		want slog.Level
	}{
		{200, time.Millisecond, "/api/v1/users/1", slog.LevelDebug},
		{200, slow, "/api/v1/users/1", slog.LevelInfo},
		{401, time.Millisecond, "/api/v1/users/1", slog.LevelInfo},
		{404, time.Millisecond, "/api/v1/users/1", slog.LevelInfo},
		{503, time.Millisecond, "/api/v1/users/1", slog.LevelError},
		{200, slow, "/metrics", slog.LevelDebug},
		{500, time.Millisecond, "/metrics", slog.LevelError},
	}
	for _, c := range cases {
		if got := level(c.code, c.d, c.path, quiet, slow); got != c.want {
			t.Errorf("level(%d, %v, %s) = %v, want %v", c.code, c.d, c.path, got, c.want)
		}
	}
}
