package deploy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/msctl/msctl/internal/render"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceStatus is what the cluster says about one service.
type ServiceStatus struct {
	Service  string `json:"service"`
	Revision int    `json:"revision"`
	// Release is the Helm release status: deployed, failed, pending-upgrade,
	// or "not deployed".
	Release string `json:"release"`
	Image   string `json:"image,omitempty"`
	Ready   int32  `json:"ready"`
	Desired int32  `json:"desired"`
	// StableWeight and CanaryWeight are the VirtualService's split.
	StableWeight int `json:"stableWeight"`
	CanaryWeight int `json:"canaryWeight"`
	// Drift lists the Istio objects whose spec differs from what msctl
	// would render now; empty means in sync.
	Drift []string `json:"drift,omitempty"`
}

// Status reads each service's release, Deployment and Istio objects.
func (d *Deployer) Status(ctx context.Context, services []string) ([]ServiceStatus, error) {
	if len(services) == 0 {
		services = d.Project.ServiceNames()
	}
	cfg, err := d.helm(nil)
	if err != nil {
		return nil, err
	}
	var out []ServiceStatus
	for _, name := range services {
		st := ServiceStatus{Service: name, Release: "not deployed"}
		rel, err := lastRelease(cfg, name)
		if err != nil {
			return nil, err
		}
		if rel != nil {
			st.Revision, st.Release = rel.Version, string(rel.Info.Status)
		}
		dep, err := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, err
		default:
			st.Image = dep.Spec.Template.Spec.Containers[0].Image
			st.Ready = dep.Status.ReadyReplicas
			st.Desired = dep.Status.Replicas
			if dep.Spec.Replicas != nil {
				st.Desired = *dep.Spec.Replicas
			}
		}
		if st.CanaryWeight, err = d.CanaryWeight(ctx, name); err != nil {
			return nil, err
		}
		st.StableWeight = 100 - st.CanaryWeight
		if rel != nil {
			if st.Drift, err = d.istioDrift(ctx, name, st.CanaryWeight); err != nil {
				return nil, err
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// istioDrift compares the live Istio objects' specs with a fresh render.
func (d *Deployer) istioDrift(ctx context.Context, name string, weight int) ([]string, error) {
	res, err := render.Render(d.Project, render.Options{Services: []string{name}, CanaryWeights: map[string]int{name: weight}})
	if err != nil {
		return nil, err
	}
	var drift []string
	for _, o := range res.Objects {
		if o.Source != render.SourceIstio {
			continue
		}
		live, err := d.applier.Get(ctx, o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName())
		if err != nil {
			return nil, err
		}
		id := o.GetKind() + "/" + o.GetName()
		switch {
		case live == nil:
			drift = append(drift, id+" missing")
		case !reflect.DeepEqual(live.Object["spec"], o.Object["spec"]):
			drift = append(drift, id+" differs")
		}
	}
	return drift, nil
}

// Revision is one entry of a service's release history.
type Revision struct {
	Revision    int       `json:"revision"`
	Updated     time.Time `json:"updated"`
	Status      string    `json:"status"`
	Image       string    `json:"image"`
	Description string    `json:"description"`
}

// History lists a service's release revisions, oldest first.
func (d *Deployer) History(ctx context.Context, service string) ([]Revision, error) {
	cfg, err := d.helm(nil)
	if err != nil {
		return nil, err
	}
	h := action.NewHistory(cfg)
	rels, err := h.Run(service)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, &NotDeployedError{Service: service}
	}
	if err != nil {
		return nil, err
	}
	var out []Revision
	for _, r := range rels {
		rel := asRelease(r)
		if rel == nil {
			continue
		}
		out = append(out, Revision{
			Revision: rel.Version, Updated: rel.Info.LastDeployed, Status: string(rel.Info.Status),
			Image: imageOf(rel.Config), Description: rel.Info.Description,
		})
	}
	return out, nil
}

// NotDeployedError says a service has no release in the namespace.
type NotDeployedError struct{ Service string }

func (e *NotDeployedError) Error() string {
	return fmt.Sprintf("service %q has no release in this namespace", e.Service)
}

func imageOf(values map[string]any) string {
	img, _ := values["image"].(map[string]any)
	repo, _ := img["repository"].(string)
	tag, _ := img["tag"].(string)
	if repo == "" {
		return ""
	}
	return repo + ":" + tag
}

func tagOf(values map[string]any) string {
	img, _ := values["image"].(map[string]any)
	tag, _ := img["tag"].(string)
	return tag
}
