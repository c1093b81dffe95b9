package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/deploy"
)

// progress shows per-service deploy states on stderr: a live block with a
// spinner and elapsed time on a terminal, plain timestamped lines otherwise
// (CI logs), nothing with --quiet.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	live    bool
	quiet   bool
	order   []string
	states  map[string]deploy.Event
	started map[string]time.Time
	took    map[string]time.Duration
	drawn   int
	frame   int
	stop    chan struct{}
	done    chan struct{}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (f *Factory) newProgress(services []string) *progress {
	p := &progress{
		w: f.IO.ErrOut, live: f.IO.IsStderrTTY() && f.IO.ColorEnabled(), quiet: f.Quiet(),
		order: services, states: map[string]deploy.Event{}, started: map[string]time.Time{}, took: map[string]time.Duration{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if p.live && !p.quiet {
		go p.tick()
	} else {
		close(p.done)
	}
	return p
}

// Event records a state change.
func (p *progress) Event(e deploy.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.started[e.Service]; !ok || e.State == deploy.StateDeploying {
		p.started[e.Service] = time.Now()
	}
	p.states[e.Service] = e
	if e.State.Finished() {
		p.took[e.Service] = time.Since(p.started[e.Service])
	}
	if p.quiet || p.live {
		return
	}
	line := fmt.Sprintf("%s %-12s %s", time.Now().UTC().Format(time.RFC3339), e.Service, e.State)
	if e.Message != "" {
		line += ": " + e.Message
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) tick() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.draw()
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frame++
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // back to the block's first line
	}
	for _, name := range p.order {
		e, ok := p.states[name]
		if !ok {
			continue
		}
		mark := spinner[p.frame%len(spinner)]
		switch e.State {
		case deploy.StateDeployed, deploy.StateUnchanged:
			mark = "\x1b[32m✓\x1b[0m"
		case deploy.StateFailed, deploy.StateRolledBack:
			mark = "\x1b[31m✗\x1b[0m"
		case deploy.StateQueued:
			mark = "·"
		}
		elapsed, ok := p.took[name]
		if !ok {
			elapsed = time.Since(p.started[name])
		}
		elapsed = elapsed.Round(100 * time.Millisecond)
		line := fmt.Sprintf("%s %-12s %-12s %6s", mark, name, e.State, elapsed)
		if e.Message != "" {
			line += "  " + e.Message
		}
		b.WriteString("\x1b[2K" + line + "\n")
	}
	p.drawn = len(p.states)
	io.WriteString(p.w, b.String())
}

// Stop draws the final state and ends the live display.
func (p *progress) Stop() {
	if p.live && !p.quiet {
		close(p.stop)
	}
	<-p.done
}
