package deploykube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/testcluster"
	"helm.sh/helm/v4/pkg/action"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

// Helm's storage lists release records by name (v10 before v2): history is
// oldest first and a rollback without a revision goes to the one before
// the current, past revision 9.
func TestHistoryPastRevisionNine(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	for i := 1; i <= 12; i++ {
		deployOK(t, d, deploy.Options{Services: []string{"payment"}, ImageTag: fmt.Sprintf("v%d", i), Wait: false})
	}
	hist, err := d.History(ctx, "payment")
	if err != nil {
		t.Fatal(err)
	}
	// Helm keeps the last 10.
	if len(hist) != 10 {
		t.Fatalf("%d revisions: %+v", len(hist), hist)
	}
	for i, h := range hist {
		if h.Revision != i+3 || !strings.HasSuffix(h.Image, fmt.Sprintf(":v%d", i+3)) {
			t.Errorf("entry %d: revision %d image %s, want %d and v%d", i, h.Revision, h.Image, i+3, i+3)
		}
	}
	r, err := d.Rollback(ctx, "payment", deploy.RollbackOptions{Lock: holder("test")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision != 13 || !strings.HasSuffix(r.Image, ":v11") || r.Message != "rolled back to revision 11" {
		t.Errorf("rollback: %+v", r)
	}
}

// A deadline too short to be met: exit 6 with one line naming the service,
// the deadline and what was not ready; the rollback gets its own deadline
// and leaves the previous revision deployed.
func TestDeployTimeoutRollsBackOnItsOwnDeadline(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	res, err := d.Deploy(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v2", Wait: true, Atomic: true,
		Timeout: time.Second, Lock: holder("test"),
		Values: []map[string]any{{"podLabels": map[string]any{testcluster.FailReadinessLabel: "true"}}}})
	if errkind.Of(err) != errkind.Timeout {
		t.Fatalf("kind %v: %v", errkind.Of(err), err)
	}
	msg := err.Error()
	t.Logf("reported: %s", msg)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "user (not ready within 1s: ") || strings.Contains(msg, "rate limiter") ||
		!strings.Contains(msg, "rolled back to revision 1") {
		t.Errorf("message %q", msg)
	}
	if res[0].State != deploy.StateRolledBack || !res[0].TimedOut {
		t.Errorf("result %+v", res[0])
	}
	st, err := d.Status(ctx, []string{"user"})
	if err != nil || st[0].Release != "deployed" || st[0].Revision != 3 || !strings.HasSuffix(st[0].Image, ":v1") {
		t.Errorf("after the timeout: %+v %v", st, err)
	}
}

// A release pending under another operation is left alone: helm, a GitOps
// controller, or an msctl run within its deadline. One msctl wrote whose
// deadline has passed is mended.
func TestPendingReleaseOfAnotherOperation(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	cfg := action.NewConfiguration()
	if err := cfg.Init(d.Cluster.Getter, d.Project.Namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	// pend makes the newest revision a pending upgrade written by Helm
	// (which copies the labels of the revision before, msctl's included)
	// or by an msctl run.
	pend := func(byMsctl bool, age time.Duration) {
		t.Helper()
		last, err := cfg.Releases.Last("user")
		if err != nil {
			t.Fatal(err)
		}
		rel := *last.(*releasev1.Release)
		info := *rel.Info
		rel.Info = &info
		if rel.Info.Status.IsPending() {
			if _, err := cfg.Releases.Delete("user", rel.Version); err != nil {
				t.Fatal(err)
			}
		} else {
			rel.Version++
		}
		if byMsctl {
			rel.Labels = map[string]string{deploy.TimeoutLabel: "300", deploy.HolderLabel: "0123abcd", deploy.RevisionLabel: strconv.Itoa(rel.Version)}
		}
		rel.Info.Status, rel.Info.LastDeployed = rcommon.StatusPendingUpgrade, time.Now().Add(-age)
		if err := cfg.Releases.Create(&rel); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		byMsctl bool
		age     time.Duration
		want    string
	}{
		{"helm upgrade in progress", false, time.Hour, "not written by msctl"},
		{"an msctl run within its deadline", true, time.Minute, "written by an msctl run that may go on until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pend(tc.byMsctl, tc.age)
			_, err := d.Deploy(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v2", Wait: true, Lock: holder("test")})
			if !errors.As(err, new(*deploy.Failed)) || !strings.Contains(err.Error(), "another operation is in progress on release user since") ||
				!strings.Contains(err.Error(), tc.want) || errkind.Of(err) != errkind.Failure {
				t.Fatalf("deploy over it: %v", err)
			}
			st, _ := d.Status(ctx, []string{"user"})
			if st[0].Release != "pending-upgrade" || !strings.HasSuffix(st[0].Image, ":v1") {
				t.Errorf("the pending revision was touched: %+v", st[0])
			}
		})
	}
	pend(true, 6*time.Minute)
	res := deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v2"})
	if res[0].State != deploy.StateDeployed {
		t.Errorf("over an abandoned msctl revision: %+v", res)
	}
}

// A platform engineer's plain helm CLI operates msctl's releases: upgrade
// with --reuse-values, rollback, uninstall, all with helm's defaults; msctl
// deploys over the result.
func TestHelmCLIOperatesMsctlReleases(t *testing.T) {
	d := setup(t)
	helm := testcluster.HelmCLI(t)
	ns := d.Project.Namespace
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v2"})
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(helm, append(args, "--namespace", ns, "--kubeconfig", cluster.Kubeconfig())...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("upgrade", "user", "../../../manifests/charts/service", "--reuse-values", "--set", "image.tag=hotfix", "--wait", "--timeout", "1m")
	// Helm copied msctl's labels into its revision, digest included: msctl
	// must not take the hotfix for its own v2.
	if res := deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v2"}); res[0].State != deploy.StateDeployed {
		t.Fatalf("msctl deploy v2 over helm's hotfix: %+v", res)
	}
	if st, _ := d.Status(context.Background(), []string{"user"}); !strings.HasSuffix(st[0].Image, ":v2") {
		t.Fatalf("after msctl deploy v2 the stable runs %s", st[0].Image)
	}
	run("rollback", "user", "1", "--wait", "--timeout", "1m")
	st, err := d.Status(context.Background(), []string{"user"})
	if err != nil || st[0].Release != "deployed" || !strings.HasSuffix(st[0].Image, ":v1") {
		t.Fatalf("after helm rollback: %+v %v", st, err)
	}
	res := deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v4"})
	if res[0].State != deploy.StateDeployed {
		t.Fatalf("msctl after helm: %+v", res)
	}
	run("uninstall", "user", "--wait", "--timeout", "1m")
	res = deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v4"})
	if res[0].State != deploy.StateDeployed || res[0].Revision != 1 {
		t.Fatalf("msctl after helm uninstall: %+v", res)
	}
}
