package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/msctl/msctl/internal/logtail"
)

// component is one running server of the control plane. Its stdout and
// stderr go to <name>.log in the cluster's dir.
type component struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been waited for
	err     error         // the exit status; read it after exited is closed
}

func startComponent(dir, name, bin string, args, extraEnv []string) (*component, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = componentSysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &component{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = logf.Close()
		close(c.exited)
	}()
	return c, nil
}

// pgid is the component's process group: Setpgid made the component its leader.
func (c *component) pgid() int { return c.cmd.Process.Pid }

// stop kills the component's process group, so anything the component
// forked goes too, and returns once the component has been reaped. There is
// no graceful stop: the cluster's data is thrown away, and the API server's
// graceful shutdown would cost every test package a second.
func (c *component) stop() {
	_ = syscall.Kill(-c.pgid(), syscall.SIGKILL)
	<-c.exited
}

// exitError describes a component that exited on its own, with the end of its log.
func (c *component) exitError() error {
	return fmt.Errorf("%s exited: %v\n%s", c.name, c.err, c.logTail())
}

// logTail returns the last lines of the component's log for error messages.
func (c *component) logTail() string { return logtail.Of(c.logPath) }
