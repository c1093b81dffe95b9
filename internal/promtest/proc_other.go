//go:build !linux

package promtest

import "syscall"

// serverSysProcAttr puts the server in its own process group. Without
// Linux's Pdeathsig a server can outlive a test binary that is killed
// outright; test cleanup still stops it.
func serverSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
