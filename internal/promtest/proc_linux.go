package promtest

import "syscall"

// serverSysProcAttr puts the server in its own process group, so Stop can
// signal it and anything it forks at once, and asks the kernel to kill it
// when the test binary dies, so a panic, a test timeout or SIGKILL leaves no
// server behind. Pdeathsig fires when the thread that started the child
// exits; the Go runtime only ends threads of goroutines that exit while
// locked to one, which this package never does.
func serverSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
