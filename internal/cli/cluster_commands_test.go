package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/iostreams"
	"github.com/msctl/msctl/internal/kube"
)

// fakeDeployments answers the cluster commands from canned results and
// records what it was asked. The real library is tested against a control
// plane in internal/deploy/deploykube.
type fakeDeployments struct {
	results  []deploy.Result
	changes  []deploy.Change
	status   []deploy.ServiceStatus
	history  []deploy.Revision
	err      error
	deploy   deploy.Options
	rollback deploy.RollbackOptions
	destroy  deploy.DestroyOptions
}

func (f *fakeDeployments) Deploy(_ context.Context, o deploy.Options) ([]deploy.Result, error) {
	f.deploy = o
	for _, r := range f.results {
		o.Progress(deploy.Event{Service: r.Service, State: deploy.StateDeploying})
		o.Progress(deploy.Event{Service: r.Service, State: r.State, Message: r.Message})
	}
	return f.results, f.err
}
func (f *fakeDeployments) Plan(_ context.Context, o deploy.Options) ([]deploy.Change, error) {
	f.deploy = o
	return f.changes, f.err
}
func (f *fakeDeployments) Status(context.Context, []string) ([]deploy.ServiceStatus, error) {
	return f.status, f.err
}
func (f *fakeDeployments) History(context.Context, string) ([]deploy.Revision, error) {
	return f.history, f.err
}
func (f *fakeDeployments) Rollback(_ context.Context, _ string, o deploy.RollbackOptions) (deploy.Result, error) {
	f.rollback = o
	return f.results[0], f.err
}
func (f *fakeDeployments) Destroy(_ context.Context, o deploy.DestroyOptions) ([]deploy.Result, error) {
	f.destroy = o
	return f.results, f.err
}

// runFake runs msctl in a project dir with fake as the cluster.
func runFake(t *testing.T, fake *fakeDeployments, tty bool, args ...string) result {
	t.Helper()
	t.Chdir(projectDir(t, project))
	streams, _, out, errOut := iostreams.Test()
	streams.SetTTY(tty)
	f := newFactory(streams)
	f.Deployments = func(context.Context) (Deployments, error) { return fake, nil }
	code := execute(context.Background(), args, f)
	return result{code, out.String(), errOut.String(), out.Bytes()}
}

func TestDeployOutput(t *testing.T) {
	fake := &fakeDeployments{results: []deploy.Result{
		{Service: "user", State: deploy.StateDeployed, Revision: 3, Image: "localhost:5000/user:v2", Duration: 1200 * time.Millisecond},
		{Service: "order", State: deploy.StateUnchanged, Revision: 1, Image: "localhost:5000/order:v2"},
	}}
	r := runFake(t, fake, false, "deploy", "--tag", "v2", "--lock-ttl", "90s", "--steal-lock")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "SERVICE   STATE       REVISION   IMAGE                     TIME   MESSAGE\n" +
		"user      deployed    3          localhost:5000/user:v2    1.2s   \n" +
		"order     unchanged   1          localhost:5000/order:v2   0s     \n"
	if r.stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", r.stdout, want)
	}
	// Piped: timestamped progress lines on stderr, no escape codes.
	if !strings.Contains(r.stderr, "user") || strings.Contains(r.stderr, "\x1b[") {
		t.Errorf("progress off a terminal: %q", r.stderr)
	}
	if o := fake.deploy; o.ImageTag != "v2" || o.Lock.TTL != 90*time.Second || !o.Lock.Steal || o.Lock.Holder.Nonce == "" || o.Timeout != 5*time.Minute {
		t.Errorf("options %+v", o)
	}

	r = runFake(t, fake, false, "deploy", "--tag", "v2", "-o", "json")
	var got []deploy.Result
	if err := json.Unmarshal(r.stdoutBytes, &got); err != nil || len(got) != 2 || got[0].Revision != 3 {
		t.Errorf("json: %v\n%s", err, r.stdout)
	}

	r = runFake(t, fake, true, "deploy", "--tag", "v2")
	if r.code != 0 || !strings.Contains(r.stdout, "deployed") {
		t.Errorf("on a terminal: %+v", r)
	}
}

func TestDeployFailureExitCodes(t *testing.T) {
	timedOut := []deploy.Result{{Service: "user", State: deploy.StateRolledBack, TimedOut: true,
		Message: "not ready within 1s: Deployment user has 0 of 2 replicas ready; rolled back to revision 1"}}
	for _, tc := range []struct {
		name string
		fake *fakeDeployments
		code int
		line string
	}{
		{"timeout", &fakeDeployments{results: timedOut, err: &deploy.Failed{Results: timedOut}}, ExitTimedOut,
			"msctl: deploy failed: user (not ready within 1s: Deployment user has 0 of 2 replicas ready; rolled back to revision 1)\n"},
		{"lock held", &fakeDeployments{err: &kube.LockHeldError{Name: "msctl-user", Holder: "ci (h pid 1, ab)", TTL: time.Minute}}, ExitLockHeld,
			`msctl: msctl-user is locked by "ci (h pid 1, ab)" since 0001-01-01T00:00:00Z; the lock lapses 1m0s after its holder stops renewing (--steal-lock takes it over)` + "\n"},
		{"another operation", &fakeDeployments{err: &deploy.OperationInProgressError{Release: "user", Revision: 4, Status: "pending-upgrade", Detail: "not written by msctl"}}, ExitFailure,
			"msctl: another operation is in progress on release user since 0001-01-01T00:00:00Z (revision 4 is pending-upgrade; not written by msctl)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runFake(t, tc.fake, false, "deploy", "user", "--tag", "v2", "-q")
			if r.code != tc.code || !strings.HasSuffix(r.stderr, tc.line) {
				t.Errorf("exit %d (want %d), stderr %q\nwant suffix %q", r.code, tc.code, r.stderr, tc.line)
			}
		})
	}
}

func TestDryRunOutput(t *testing.T) {
	fake := &fakeDeployments{changes: []deploy.Change{
		{Kind: "Deployment", Name: "user", Action: "update", Diff: "-        image: u:v1\n+        image: u:v2\n"},
		{Kind: "Service", Name: "user", Action: "unchanged"},
	}}
	r := runFake(t, fake, false, "deploy", "--tag", "v2", "--dry-run")
	want := "update Deployment/user\n-        image: u:v1\n+        image: u:v2\n0 to create, 1 to update, 1 unchanged (dry run: nothing was changed)\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
}

func TestStatusOutput(t *testing.T) {
	fake := &fakeDeployments{status: []deploy.ServiceStatus{
		{Service: "user", Revision: 2, Release: "deployed", Image: "r/user:v2", Ready: 2, Desired: 2, StableWeight: 90, CanaryWeight: 10},
		{Service: "order", Release: "not deployed"},
	}}
	r := runFake(t, fake, false, "status")
	want := "SERVICE   REVISION   RELEASE        IMAGE       READY   STABLE/CANARY   ISTIO\n" +
		"user      2          deployed       r/user:v2   2/2     90/10           in sync\n" +
		"order     -          not deployed               0/0     0/0             -\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	r = runFake(t, fake, false, "status", "-o", "json")
	var got []deploy.ServiceStatus
	if err := json.Unmarshal(r.stdoutBytes, &got); err != nil || got[0].CanaryWeight != 10 {
		t.Errorf("json: %v %s", err, r.stdout)
	}
}

// Helm's failure descriptions span lines: one line per revision in the
// table, the whole text in JSON.
func TestHistoryOutput(t *testing.T) {
	long := "Upgrade \"user\" failed: resource Deployment/shop/user not ready.\nstatus: InProgress\nmessage: Available: 0/2 " + strings.Repeat("x", 100)
	updated := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fake := &fakeDeployments{history: []deploy.Revision{
		{Revision: 1, Updated: updated, Status: "superseded", Image: "r/user:v1", Description: "msctl deploy v1"},
		{Revision: 2, Updated: updated, Status: "failed", Image: "r/user:v2", Description: long},
	}}
	r := runFake(t, fake, false, "history", "user")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasSuffix(lines[2], "…") || !strings.Contains(lines[2], `Upgrade "user" failed: resource Deployment/shop/user not ready. status: InProgr`) {
		t.Errorf("exit %d, table:\n%s", r.code, r.stdout)
	}
	r = runFake(t, fake, false, "history", "user", "-o", "json")
	var got []deploy.Revision
	if err := json.Unmarshal(r.stdoutBytes, &got); err != nil || got[1].Description != long {
		t.Errorf("json lost the description: %v %s", err, r.stdout)
	}
}

func TestRollbackAndDestroyOptions(t *testing.T) {
	fake := &fakeDeployments{results: []deploy.Result{{Service: "user", State: deploy.StateDeployed, Revision: 4, Message: "rolled back to revision 2"}}}
	r := runFake(t, fake, false, "rollback", "user", "2", "--timeout", "2m", "--lock-ttl", "10s")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled back to revision 2") {
		t.Fatalf("rollback: %+v", r)
	}
	if o := fake.rollback; o.Revision != 2 || o.Timeout != 2*time.Minute || o.Lock.TTL != 10*time.Second || o.Lock.Steal {
		t.Errorf("rollback options %+v", o)
	}
	fake.results = []deploy.Result{{Service: "user", State: deploy.StateDestroyed}, {Service: "order", State: deploy.StateDestroyed}}
	r = runFake(t, fake, false, "destroy", "--all", "--yes", "-o", "json")
	if r.code != 0 || fake.destroy.Project != true || strings.Join(fake.destroy.Services, ",") != "user,order" {
		t.Errorf("destroy: %+v, options %+v", r, fake.destroy)
	}
	fake.err = errors.New("boom")
	if r := runFake(t, fake, false, "destroy", "user", "--yes"); r.code != ExitFailure {
		t.Errorf("failed destroy exit %d", r.code)
	}
}
