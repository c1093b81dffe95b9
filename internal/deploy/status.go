package deploy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/render"
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
	rels, err := d.releases(nil, nil)
	if err != nil {
		return nil, err
	}
	var out []ServiceStatus
	for _, name := range services {
		st := ServiceStatus{Service: name, Release: "not deployed"}
		rel, err := rels.last(name)
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
	for _, o := range res.Istio(name) {
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
func (d *Deployer) History(_ context.Context, service string) ([]Revision, error) {
	rels, err := d.releases(nil, nil)
	if err != nil {
		return nil, err
	}
	hist, err := rels.history(service)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, err
	}
	if len(hist) == 0 {
		return nil, &NotDeployedError{Service: service}
	}
	out := make([]Revision, 0, len(hist))
	for _, rel := range hist {
		out = append(out, Revision{
			Revision: rel.Version, Updated: rel.Info.LastDeployed, Status: string(rel.Info.Status),
			Image: render.ImageFromValues(rel.Config).String(), Description: rel.Info.Description,
		})
	}
	return out, nil
}

// NotDeployedError says a service has no release in the namespace.
type NotDeployedError struct{ Service string }

func (e *NotDeployedError) Error() string {
	return fmt.Sprintf("service %q has no release in this namespace", e.Service)
}

// ErrorKind marks a service with no release as bad input to commands that
// need one.
func (e *NotDeployedError) ErrorKind() errkind.Kind { return errkind.BadInput }
