package local

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/msctl/msctl/internal/logtail"
)

// process is one service process the supervisor keeps running: started,
// gated on readiness, restarted with backoff when it exits on its own.
type process struct {
	service string
	slot    int
	ports   Ports
	spec    ProcessSpec // as asked; spec.Binary may be ""
	binary  string
	env     []string
	logPath string
	// changed is called after every start, readiness change and exit, for
	// the supervisor to record it.
	changed func()
	log     func(msg string, args ...any)

	mu       sync.Mutex
	role     Role
	child    *child
	ready    bool
	restarts int
	since    time.Time
	stopping bool
	// Made with the process, before it is published to the supervisor:
	// a Close racing a canary's start may stop it before start runs.
	stopCh chan struct{}
	done   chan struct{} // closed when supervise returns
}

// child is one run of the process's binary.
type child struct {
	id     procID
	exited chan struct{}
	err    error // valid once exited is closed
}

func (p *process) instance() *Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := &Instance{Ports: p.ports, Ready: p.ready, Restarts: p.restarts, Spec: p.spec, Log: p.logPath, Since: p.since}
	if p.child != nil {
		in.PID, in.Start = p.child.id.PID, p.child.id.Start
	}
	return in
}

// spawn starts the binary once, its output appended to the log file.
func (p *process) spawn() (*child, error) {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(p.binary)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.name(), err)
	}
	c := &child{id: procID{PID: cmd.Process.Pid, Start: processStart(cmd.Process.Pid)}, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	p.mu.Lock()
	p.child, p.ready, p.since = c, false, time.Now()
	p.mu.Unlock()
	p.changed()
	return c, nil
}

// name is how messages name the process: "payment", "payment (canary)".
func (p *process) name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.role == Canary {
		return p.service + " (canary)"
	}
	return p.service
}

// start runs the process and waits until it is ready; a process that exits
// or stays unready past the timeout is named with its log's last lines.
func (p *process) start(ctx context.Context, timeout time.Duration) error {
	c, err := p.spawn()
	if err == nil {
		if err = p.waitReady(ctx, c, timeout); err != nil {
			p.kill(c, time.Second)
		}
	}
	if err != nil {
		p.mu.Lock()
		p.stopping = true
		p.mu.Unlock()
		close(p.done)
		return err
	}
	go p.supervise(c)
	return nil
}

var readyClient = &http.Client{Timeout: time.Second}

func (p *process) waitReady(ctx context.Context, c *child, timeout time.Duration) error {
	url := "http://" + addr(p.ports.Admin) + "/health/ready"
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := readyClient.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.mu.Lock()
				p.ready = true
				p.mu.Unlock()
				p.changed()
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited at start (%v)\n%s", p.name(), c.err, logtail.Of(p.logPath))
		case <-deadline.C:
			return fmt.Errorf("%s was not ready within %s (%s)\n%s", p.name(), timeout, url, logtail.Of(p.logPath))
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stopCh:
			return errors.New(p.name() + " was stopped before it was ready")
		case <-tick.C:
		}
	}
}

// supervise restarts the process whenever it exits on its own, waiting
// longer after each quick crash (0.5 s doubling up to 10 s; a run of a
// minute resets it).
func (p *process) supervise(c *child) {
	defer close(p.done)
	backoff := 500 * time.Millisecond
	for {
		select {
		case <-c.exited:
		case <-p.stopCh:
			return
		}
		p.mu.Lock()
		ran := time.Since(p.since)
		p.ready = false
		p.restarts++
		n := p.restarts
		p.mu.Unlock()
		p.changed()
		if ran > time.Minute {
			backoff = 500 * time.Millisecond
		}
		p.log("service exited; restarting", "service", p.name(), "pid", c.id.PID, "exit", fmt.Sprint(c.err), "restart", n, "in", backoff.String())
		for {
			select {
			case <-p.stopCh:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			next, err := p.spawn()
			if err != nil {
				p.log("service could not be restarted", "service", p.name(), "err", err.Error())
				continue
			}
			c = next
			break
		}
		go func(c *child) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := p.waitReady(ctx, c, time.Minute); err == nil {
				p.log("service restarted and ready", "service", p.name(), "pid", c.id.PID, "restarts", n)
			}
		}(c)
	}
}

// stop ends the process for good: SIGTERM, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.stopping = true
	close(p.stopCh)
	p.mu.Unlock()
	<-p.done
	p.mu.Lock()
	c := p.child
	p.mu.Unlock()
	if c != nil {
		p.kill(c, grace)
	}
	p.mu.Lock()
	p.ready = false
	p.mu.Unlock()
}

// kill stops one run of the binary: SIGTERM, then SIGKILL after grace.
func (p *process) kill(c *child, grace time.Duration) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(c.id.PID, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(c.id.PID, syscall.SIGKILL)
		<-c.exited
	}
}
