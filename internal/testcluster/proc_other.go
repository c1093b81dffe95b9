//go:build !linux

package testcluster

import "syscall"

// componentSysProcAttr puts a component in its own process group. Without
// Linux's Pdeathsig a component can outlive a test binary that is killed
// outright; Stop and the signal handling in Main still clean up.
func componentSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
