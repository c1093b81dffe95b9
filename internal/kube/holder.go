package kube

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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
	// Scope is the boot and the pid namespace the PID means something in;
	// "" where unknown. Containers may share a host name, not a scope.
	Scope string
	Nonce string
}

// The Lease annotations that carry a holder's process, so that a rerun on
// the same machine can tell that the holder is gone.
const (
	annotationHost  = "msctl.dev/holder-host"
	annotationPID   = "msctl.dev/holder-pid"
	annotationStart = "msctl.dev/holder-start"
	annotationNonce = "msctl.dev/holder-nonce"
	annotationScope = "msctl.dev/holder-scope"
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
	start, _ := processStart(os.Getpid())
	return Holder{Name: name, Host: host, PID: os.Getpid(), Start: start, Scope: processScope(), Nonce: hex.EncodeToString(b)}
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
	return map[string]string{annotationHost: h.Host, annotationPID: strconv.Itoa(h.PID), annotationStart: h.Start,
		annotationNonce: h.Nonce, annotationScope: h.Scope}
}

// holderGone reports whether a Lease's annotations name a process that is
// known not to run: one of this machine's boot and pid namespace (scope)
// whose pid is gone, or is now another process (its start time differs).
// Anything less certain (another machine, another container with the same
// host name, a /proc that hides other users' processes) is not gone: the
// Lease lapses by watching instead.
func holderGone(ann map[string]string, host, scope string) bool {
	if host == "" || scope == "" || ann[annotationHost] != host || ann[annotationScope] != scope {
		return false
	}
	pid, err := strconv.Atoi(ann[annotationPID])
	if err != nil || pid <= 0 || !canInspectProcesses {
		return false
	}
	start, err := processStart(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true
	case err != nil:
		return false
	}
	return ann[annotationStart] != "" && start != ann[annotationStart]
}

// processScope names this boot and pid namespace: a pid is only
// comparable within one.
func processScope() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// processStart reads a process's start time (field 22 of /proc/PID/stat).
// A process that does not run is an error satisfying fs.ErrNotExist.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) may hold spaces; fields count from the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unreadable", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: unreadable", pid)
	}
	return f[19], nil
}
