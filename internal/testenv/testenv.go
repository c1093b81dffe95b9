// Package testenv says which tests a run includes. `go test -short ./...`
// is the fast tier: a test that needs a real server (a Kubernetes control
// plane, PostgreSQL, Prometheus, a registry) or builds the services skips,
// saying what it needs. With MSCTL_REQUIRE_INTEGRATION=1, which `make
// test` and .ci/run set, every test runs whatever -short says, and a
// server that cannot be started fails the run.
package testenv

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// RequireVar is the variable that makes every test run.
const RequireVar = "MSCTL_REQUIRE_INTEGRATION"

// Fast reports whether this is the fast tier: -short, and integration not
// required.
func Fast() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	return testing.Short() && os.Getenv(RequireVar) != "1"
}

// Integration skips t in the fast tier; needs says what t needs.
func Integration(t testing.TB, needs string) {
	t.Helper()
	if Fast() {
		t.Skip(reason(needs))
	}
}

// SkipPackage, called first in a TestMain whose setup needs a server,
// reports whether the fast tier skips the whole package; it says so.
func SkipPackage(needs string) bool {
	if !Fast() {
		return false
	}
	fmt.Println("skipped: " + reason(needs))
	return true
}

func reason(needs string) string {
	return fmt.Sprintf("needs %s: skipped under -short (run without -short, or set %s=1)", needs, RequireVar)
}
