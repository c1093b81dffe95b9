package kube

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Holder identifies one msctl process in a Lease. Name is for people (the
// CI job, or user@host); Host, PID and Start tell whether the process still
// runs, and Nonce makes the identity unique even between two jobs of one CI
// run, which share the job's name.
type Holder struct {
	Name  string
	Host  string
	PID   int
	Start string // the process's start time in clock ticks since boot; "" where unknown
	Nonce string
}

// The Lease annotations that carry a holder's process, so that a rerun on
// the same machine can tell that the holder is gone.
const (
	annotationHost  = "msctl.dev/holder-host"
	annotationPID   = "msctl.dev/holder-pid"
	annotationStart = "msctl.dev/holder-start"
	annotationNonce = "msctl.dev/holder-nonce"
)

// CurrentHolder identifies this process. name is what people read; when
// empty it comes from the CI system's variables (looked up with getenv), or
// is user@host.
func CurrentHolder(name string, getenv func(string) string) Holder {
	host, _ := os.Hostname()
	if name == "" {
		name = ciJob(getenv)
	}
	if name == "" {
		u := "unknown"
		if cur, err := user.Current(); err == nil {
			u = cur.Username
		}
		name = u + "@" + host
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return Holder{Name: name, Host: host, PID: os.Getpid(), Start: processStart(os.Getpid()), Nonce: hex.EncodeToString(b)}
}

// ciJob names the CI job this process runs in, or "".
func ciJob(getenv func(string) string) string {
	if id := getenv("GITHUB_RUN_ID"); id != "" {
		s := "github-actions run " + id
		if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" {
			s += "-" + a
		}
		if j := getenv("GITHUB_JOB"); j != "" {
			s += " job " + j
		}
		return s
	}
	for _, ci := range []struct{ name, env string }{
		{"gitlab job", "CI_JOB_ID"}, {"buildkite job", "BUILDKITE_JOB_ID"},
		{"jenkins", "BUILD_TAG"}, {"circleci job", "CIRCLE_WORKFLOW_JOB_ID"},
	} {
		if v := getenv(ci.env); v != "" {
			return ci.name + " " + v
		}
	}
	return ""
}

// Identity is the Lease's holderIdentity: unique per process, readable.
func (h Holder) Identity() string {
	return fmt.Sprintf("%s (%s pid %d, %s)", h.Name, h.Host, h.PID, h.Nonce)
}

func (h Holder) annotations() map[string]string {
	return map[string]string{annotationHost: h.Host, annotationPID: strconv.Itoa(h.PID), annotationStart: h.Start, annotationNonce: h.Nonce}
}

// holderGone reports whether a Lease's annotations name a process of this
// host that no longer runs. A pid now used by another process counts as
// gone: its start time differs.
func holderGone(ann map[string]string, host string) bool {
	if host == "" || ann[annotationHost] != host {
		return false
	}
	pid, err := strconv.Atoi(ann[annotationPID])
	if err != nil || pid <= 0 {
		return false
	}
	start, known := processStartKnown(pid)
	if !known {
		return false
	}
	return start == "" || (ann[annotationStart] != "" && start != ann[annotationStart])
}

// processStartKnown returns pid's start time, "" when no such process
// runs, and whether this platform can tell at all.
func processStartKnown(pid int) (string, bool) {
	if !canInspectProcesses {
		return "", false
	}
	return processStart(pid), true
}

// processStart reads a process's start time (field 22 of /proc/PID/stat),
// or "" if it does not run.
func processStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields count from the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}
