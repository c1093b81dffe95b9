package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/iostreams"
)

func feed(p *progress) {
	for _, e := range []deploy.Event{
		{Service: "user", State: deploy.StateQueued},
		{Service: "user", State: deploy.StateDeploying},
		{Service: "order", State: deploy.StateQueued},
		{Service: "user", State: deploy.StateDeployed},
		{Service: "order", State: deploy.StateRolledBack, Message: "pod order-1 not ready"},
	} {
		p.Event(e)
	}
	p.Stop()
}

// In CI (no terminal) progress is plain timestamped lines, no escapes.
func TestProgressPlainLinesOffATerminal(t *testing.T) {
	streams, _, _, errOut := iostreams.Test()
	f := newFactory(streams)
	feed(f.newProgress([]string{"user", "order"}))
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ `)
	if len(lines) != 5 {
		t.Fatalf("want 5 lines, got %q", errOut.String())
	}
	for _, l := range lines {
		if !stamp.MatchString(l) || strings.Contains(l, "\x1b[") {
			t.Errorf("not a plain timestamped line: %q", l)
		}
	}
	if !strings.HasSuffix(lines[4], "order        rolled back: pod order-1 not ready") {
		t.Errorf("last line %q", lines[4])
	}
}

// On a terminal progress is one redrawn line per service with a mark.
func TestProgressLiveBlockOnATerminal(t *testing.T) {
	streams, _, _, errOut := iostreams.Test()
	streams.SetTTY(true)
	f := newFactory(streams)
	feed(f.newProgress([]string{"user", "order"}))
	out := errOut.String()
	final := out[strings.LastIndex(out, "\x1b[2K\x1b[32m✓"):]
	if !strings.Contains(final, "user         deployed") || !strings.Contains(final, "✗\x1b[0m order        rolled back") ||
		!strings.Contains(final, "pod order-1 not ready") {
		t.Errorf("final block %q", final)
	}
}

func TestProgressSilentWhenQuiet(t *testing.T) {
	streams, _, _, errOut := iostreams.Test()
	f := newFactory(streams)
	f.v.Set(keyQuiet, true)
	feed(f.newProgress([]string{"user", "order"}))
	if errOut.Len() != 0 {
		t.Errorf("quiet progress wrote %q", errOut.String())
	}
}
