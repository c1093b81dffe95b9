package reload

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A content is loaded once however many polls see it, and one that does
// not load is logged once, not on every poll; the next good content loads.
func TestCheckLoadsEachNewContentOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good 1")
	var loaded []string
	apply := func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(string(data), "bad") {
			return errors.New("does not parse")
		}
		loaded = append(loaded, string(data))
		return nil
	}
	var logs bytes.Buffer
	w := New(slog.New(slog.NewTextHandler(&logs, nil)), File{Name: "KEYS", Paths: []string{path}, Apply: apply})

	steps := []struct {
		write string // "" leaves the file as it is
		want  string // loaded so far
	}{
		{"", ""},
		{"good 2", "good 2"},
		{"", "good 2"},
		{"bad", "good 2"},
		{"", "good 2"},
		{"", "good 2"},
		{"good 3", "good 2,good 3"},
	}
	for i, s := range steps {
		if s.write != "" {
			write(s.write)
		}
		w.Check()
		if got := strings.Join(loaded, ","); got != s.want {
			t.Fatalf("step %d: loaded %q, want %q", i, got, s.want)
		}
	}
	if n := strings.Count(logs.String(), "keys not reloaded"); n != 1 {
		t.Errorf("the bad content was logged %d times, want once:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "keys reloaded"); n != 2 {
		t.Errorf("%d reloads logged, want 2:\n%s", n, logs.String())
	}

	// A file that disappears is a bad content too; its return loads.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.Check()
	write("good 4")
	w.Check()
	if got := loaded[len(loaded)-1]; got != "good 4" {
		t.Errorf("after the file came back, loaded %q", got)
	}
}
