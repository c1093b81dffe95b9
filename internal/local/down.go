package local

import (
	"os"
	"syscall"
	"time"
)

// DownResult says what Down stopped.
type DownResult struct {
	RunDir string `json:"runDir"`
	// Stopped lists the pids that were running and were stopped.
	Stopped []int `json:"stopped"`
	// Purged says the run directory's data and logs were removed.
	Purged bool `json:"purged"`
}

// Down stops the supervisor of runDir and every process it recorded:
// SIGTERM, then SIGKILL after grace. It signals only recorded pids whose
// start time still matches, so it works after the supervisor was killed
// and never hits a process that reused a pid. With purge it also removes
// the data (databases, metrics) and logs. Nothing running is bad input.
func Down(runDir string, grace time.Duration, purge bool) (*DownResult, error) {
	res := &DownResult{RunDir: runDir}
	r, err := readRecord(runDir)
	if err != nil && !purge {
		return nil, err
	}
	if r != nil {
		all := r.processes()
		for _, id := range all {
			if id.alive() {
				res.Stopped = append(res.Stopped, id.PID)
			}
		}
		for _, id := range all {
			stopProcess(id, grace)
		}
		_ = os.Remove(paths(runDir).record())
		_ = os.Remove(paths(runDir).token())
	}
	if purge {
		for _, d := range []string{paths(runDir).data(), paths(runDir).logs(), paths(runDir).keys()} {
			if err := os.RemoveAll(d); err != nil {
				return nil, err
			}
		}
		res.Purged = true
	}
	return res, nil
}

// stopProcess signals one recorded process: SIGTERM, then SIGKILL once
// grace has passed, checking before each signal that the pid still names
// the process recorded.
func stopProcess(id procID, grace time.Duration) {
	if !id.alive() {
		return
	}
	_ = syscall.Kill(id.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !id.alive() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if id.alive() {
		_ = syscall.Kill(id.PID, syscall.SIGKILL)
	}
	for range 100 {
		if !id.alive() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
