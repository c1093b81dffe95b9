package local

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// processStart reads a process's start time (field 22 of /proc/PID/stat,
// in clock ticks since boot): with the pid it names one process, so a pid
// reused after the recorded process ended is never signalled. "" when the
// process does not run.
func processStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return "" // a zombie has ended; only its parent's wait is left
	}
	return f[19]
}

// DetachAttr starts a process in a session of its own, so it outlives the
// terminal and the command that started it (the detached supervisor).
func DetachAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// childAttr puts a service in its own process group: a Ctrl-C at the
// terminal reaches the supervisor, which stops the services in order,
// rather than every process at once.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
