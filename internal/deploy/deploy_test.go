package deploy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

// These tests need no cluster; the ones against the real control plane
// are in ./deploykube.

func TestUnique(t *testing.T) {
	if got := fmt.Sprint(unique([]string{"user", "order", "user", "payment", "order"})); got != "[user order payment]" {
		t.Errorf("unique = %s", got)
	}
}

func TestReleaseDigest(t *testing.T) {
	a, err := releaseDigest(map[string]any{"image": map[string]any{"tag": "v1"}, "replicas": 2})
	if err != nil {
		t.Fatal(err)
	}
	same, _ := releaseDigest(map[string]any{"replicas": 2, "image": map[string]any{"tag": "v1"}})
	other, _ := releaseDigest(map[string]any{"image": map[string]any{"tag": "v2"}, "replicas": 2})
	if a != same || a == other || len(a) != 32 {
		t.Errorf("digests %q %q %q: want equal values equal, other values different, 32 hex", a, same, other)
	}
}

// Helm lists release records by name: v10 before v2.
func TestSortRevisions(t *testing.T) {
	var rels []*releasev1.Release
	for _, v := range []int{1, 10, 11, 12, 2, 3, 9} {
		rels = append(rels, &releasev1.Release{Version: v})
	}
	sortRevisions(rels)
	var got []int
	for _, r := range rels {
		got = append(got, r.Version)
	}
	if fmt.Sprint(got) != "[1 2 3 9 10 11 12]" {
		t.Errorf("sorted %v", got)
	}
}

func TestStillBusy(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	pending := func(labels map[string]string, age time.Duration) *releasev1.Release {
		r := &releasev1.Release{Version: 4, Labels: labels, Info: &releasev1.Info{Status: rcommon.StatusPendingUpgrade, LastDeployed: now.Add(-age)}}
		return r
	}
	ours := map[string]string{TimeoutLabel: "300", HolderLabel: "abcd1234", RevisionLabel: "4"}
	// A rollback to revision 2 carries revision 2's labels: another run's.
	rollingBack := func(description string, age time.Duration) *releasev1.Release {
		r := pending(map[string]string{TimeoutLabel: "60", HolderLabel: "0000aaaa", RevisionLabel: "2"}, age)
		r.Info.Status, r.Info.Description = rcommon.StatusPendingRollback, description
		return r
	}
	// What Helm writes for a helm CLI upgrade after msctl's revision 3: a
	// copy of msctl's labels, revision and all.
	copied := map[string]string{TimeoutLabel: "300", HolderLabel: "abcd1234", RevisionLabel: "3"}
	for _, tc := range []struct {
		name     string
		rel      *releasev1.Release
		from     string
		gone     bool
		wantBusy string
	}{
		{"helm CLI or a GitOps controller", pending(nil, time.Hour), "", false, "not written by msctl"},
		{"helm CLI upgrade over msctl's labels", pending(copied, time.Hour), "abcd1234", true, "not written by msctl"},
		{"msctl run within its deadline", pending(ours, time.Minute), "", false, "may go on until 2026-11-25T12:04:00Z"},
		{"msctl run past its deadline", pending(ours, 6*time.Minute), "", false, ""},
		{"the dead holder's own revision", pending(ours, time.Minute), "abcd1234", true, ""},
		{"a stolen lock's holder may live", pending(ours, time.Minute), "abcd1234", false, "may go on"},
		{"another run's revision", pending(ours, time.Minute), "ffff0000", true, "may go on"},
		{"this run's own failed attempt", pending(map[string]string{TimeoutLabel: "300", HolderLabel: "0123beef", RevisionLabel: "4"}, time.Minute), "", false, ""},
		{"msctl's rollback within its deadline", rollingBack(rollbackDescription(2, "abcd1234", 5*time.Minute), time.Minute), "", false, "may go on until 2026-11-25T12:04:00Z"},
		{"msctl's killed rollback", rollingBack(rollbackDescription(2, "abcd1234", 5*time.Minute), time.Minute), "abcd1234", true, ""},
		{"msctl's rollback past its deadline", rollingBack(rollbackDescription(2, "abcd1234", 5*time.Minute), 6*time.Minute), "", false, ""},
		{"a helm CLI rollback", rollingBack("Rollback to 2", time.Minute), "abcd1234", true, "not written by msctl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			busy := stillBusy("user", tc.rel, "0123beef", tc.from, tc.gone, now)
			switch {
			case tc.wantBusy == "" && busy != nil:
				t.Errorf("busy: %v", busy)
			case tc.wantBusy != "" && (busy == nil || !strings.Contains(busy.Error(), tc.wantBusy)):
				t.Errorf("got %v, want a message with %q", busy, tc.wantBusy)
			case busy != nil && (strings.Contains(busy.Error(), "\n") || !strings.HasPrefix(busy.Error(), "another operation is in progress on release user since 2026-11-25T")):
				t.Errorf("message %q", busy.Error())
			}
		})
	}
}

func TestDescribeMissing(t *testing.T) {
	missing := []kube.Permission{
		{Verb: "get", Resource: "namespaces"},
		{Verb: "get", Resource: "services", Namespace: "shop"}, {Verb: "create", Resource: "services", Namespace: "shop"},
		{Verb: "get", Group: "apps", Resource: "deployments", Namespace: "shop"}, {Verb: "create", Group: "apps", Resource: "deployments", Namespace: "shop"},
		{Verb: "patch", Group: "networking.istio.io", Resource: "virtualservices", Namespace: "shop"},
	}
	want := "you may not get namespaces (cluster-wide); get/create services, deployments.apps; patch virtualservices.networking.istio.io (namespace shop)"
	if got := describeMissing(missing, "shop"); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestFailedKind(t *testing.T) {
	timedOut := &Failed{Results: []Result{{Service: "a", State: StateDeployed}, {Service: "b", State: StateRolledBack, TimedOut: true}}}
	failed := &Failed{Results: []Result{{Service: "b", State: StateFailed, Message: "boom"}}}
	if errkind.Of(timedOut) != errkind.Timeout || errkind.Of(failed) != errkind.Failure {
		t.Errorf("kinds %v %v", errkind.Of(timedOut), errkind.Of(failed))
	}
	if !errors.As(fmt.Errorf("x: %w", failed), new(*Failed)) || failed.Error() != "deploy failed: b (boom)" {
		t.Errorf("message %q", failed.Error())
	}
	for s, want := range map[State]bool{StateFailed: true, StateRolledBack: true, StateDeployed: false, StateUnchanged: false} {
		if s.Failed() != want {
			t.Errorf("%s.Failed() = %v", s, !want)
		}
	}
}
