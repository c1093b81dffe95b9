package local

import (
	"fmt"
	"path/filepath"
)

// RunDirName is where, under a project's root, the run directory lives.
const RunDirName = ".msctl/run"

// RunDir is the run directory of the project whose msctl.yaml is in root.
func RunDir(root string) string { return filepath.Join(root, filepath.FromSlash(RunDirName)) }

// paths lays out a run directory.
type paths string

func (p paths) bin(service string) string { return filepath.Join(string(p), "bin", service) }
func (p paths) data() string              { return filepath.Join(string(p), "data") }
func (p paths) db(service string) string  { return filepath.Join(p.data(), service+".db") }
func (p paths) metrics() string           { return filepath.Join(p.data(), "metrics") }
func (p paths) logs() string              { return filepath.Join(string(p), "logs") }
func (p paths) keys() string              { return filepath.Join(string(p), "keys") }
func (p paths) record() string            { return filepath.Join(string(p), "supervisor.json") }
func (p paths) token() string             { return filepath.Join(string(p), "control.token") }
func (p paths) lock() string              { return filepath.Join(string(p), "supervisor.lock") }

// SupervisorLog is the log file of a detached supervisor in runDir.
func SupervisorLog(runDir string) string {
	return filepath.Join(paths(runDir).logs(), "supervisor.log")
}

// serviceLog is a process's log: the stable's, or its canary's. A
// promoted canary keeps writing to the file it started with.
func (p paths) serviceLog(service string, role Role) string {
	if role == Canary {
		return filepath.Join(p.logs(), fmt.Sprintf("%s.canary.log", service))
	}
	return filepath.Join(p.logs(), service+".log")
}
