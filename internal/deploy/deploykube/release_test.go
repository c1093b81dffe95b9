package deploykube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestPlanShowsChangesAndChangesNothing(t *testing.T) {
	d := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	changes, err := d.Plan(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		// The test's namespace exists already; the deploy adds its labels.
		if want := map[bool]string{true: "update", false: "create"}[c.Kind == "Namespace"]; c.Action != want {
			t.Errorf("before any deploy: %s %s/%s, want %s", c.Action, c.Kind, c.Name, want)
		}
	}
	if _, err := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, "user", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the dry run created the Deployment: %v", err)
	}
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	changes, err = d.Plan(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != "unchanged" {
			t.Errorf("after deploying the same: %s %s/%s\n%s", c.Action, c.Kind, c.Name, c.Diff)
		}
	}
	changes, err = d.Plan(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	var sawImage bool
	for _, c := range changes {
		if c.Kind == "Deployment" && c.Action == "update" && strings.Contains(c.Diff, "+        image: localhost:5000/user:v2") {
			sawImage = true
		}
	}
	if !sawImage {
		t.Errorf("the plan for v2 does not show the Deployment's new image: %+v", changes)
	}
}

func TestStatusHistoryRollbackDestroy(t *testing.T) {
	d := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deployOK(t, d, deploy.Options{Services: []string{"order"}, ImageTag: "v1"})
	deployOK(t, d, deploy.Options{Services: []string{"order"}, ImageTag: "v2"})

	st, err := d.Status(ctx, []string{"order"})
	if err != nil {
		t.Fatal(err)
	}
	s := st[0]
	if s.Revision != 2 || s.Release != "deployed" || !strings.HasSuffix(s.Image, ":v2") || s.Ready != 3 || s.Desired != 3 ||
		s.StableWeight != 100 || s.CanaryWeight != 0 || len(s.Drift) != 0 {
		t.Fatalf("status %+v", s)
	}
	// A hand edit of a VirtualService shows as drift.
	vs, err := d.Applier().Get(ctx, "networking.istio.io/v1", "VirtualService", d.Project.Namespace, "order")
	if err != nil {
		t.Fatal(err)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	routes[0].(map[string]any)["timeout"] = "99s"
	_ = unstructured.SetNestedSlice(vs.Object, routes, "spec", "http")
	vs.SetManagedFields(nil)
	vs.SetResourceVersion("")
	if _, err := d.Applier().Apply(ctx, vs, kube.ApplyOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	st, _ = d.Status(ctx, []string{"order"})
	if len(st[0].Drift) != 1 || st[0].Drift[0] != "VirtualService/order differs" {
		t.Errorf("drift after a hand edit: %v", st[0].Drift)
	}

	hist, err := d.History(ctx, "order")
	if err != nil || len(hist) != 2 || !strings.HasSuffix(hist[0].Image, ":v1") || hist[1].Status != "deployed" {
		t.Fatalf("history %+v, %v", hist, err)
	}
	if _, err := d.History(ctx, "payment"); !errors.As(err, new(*deploy.NotDeployedError)) {
		t.Errorf("history of an undeployed service: %v", err)
	}

	r, err := d.Rollback(ctx, "order", deploy.RollbackOptions{Lock: holder("test")})
	if err != nil || r.Revision != 3 || !strings.HasSuffix(r.Image, ":v1") {
		t.Fatalf("rollback: %+v, %v", r, err)
	}
	st, _ = d.Status(ctx, []string{"order"})
	if !strings.HasSuffix(st[0].Image, ":v1") || len(st[0].Drift) != 0 {
		t.Errorf("after rollback: %+v (the Istio objects are re-applied, so no drift)", st[0])
	}
	if _, err := d.Rollback(ctx, "order", deploy.RollbackOptions{Revision: 99, Lock: holder("test")}); !errors.As(err, new(*deploy.NoSuchRevisionError)) {
		t.Errorf("rollback to a missing revision: %v", err)
	}

	// Another run holding a lock of a service to destroy stops the
	// destroy before it removes anything, order included.
	other, err := d.Lock(ctx, "user", holder("other-run"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Destroy(ctx, deploy.DestroyOptions{Services: []string{"order", "user"}, Lock: holder("test")}); !errors.As(err, new(*kube.LockHeldError)) {
		t.Fatalf("destroy with user locked by another run: %v", err)
	}
	if st, err := d.Status(ctx, []string{"order"}); err != nil || st[0].Release != "deployed" {
		t.Fatalf("order after a locked-out destroy: %+v, %v", st, err)
	}
	if err := other.Delete(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := d.Destroy(ctx, deploy.DestroyOptions{Services: []string{"order"}, Project: true, Lock: holder("test")}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, "order", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment left behind: %v", err)
	}
	res, _ := render.Render(d.Project, render.Options{Services: []string{"order"}})
	objs, _ := render.ProjectObjects(d.Project)
	for _, o := range append(res.Objects, objs...) {
		if o.GetKind() == "Namespace" {
			continue
		}
		if live, err := d.Applier().Get(ctx, o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName()); err != nil || live != nil {
			t.Errorf("%s/%s left behind (%v)", o.GetKind(), o.GetName(), err)
		}
	}
	secrets, _ := d.Cluster.Clientset.CoreV1().Secrets(d.Project.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	leases, _ := d.Cluster.Clientset.CoordinationV1().Leases(d.Project.Namespace).List(ctx, metav1.ListOptions{})
	if len(secrets.Items) != 0 || len(leases.Items) != 0 {
		t.Errorf("left behind: %d release secrets, %d leases", len(secrets.Items), len(leases.Items))
	}
}
