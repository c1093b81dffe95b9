// Package render turns a project into the Kubernetes objects a cluster
// needs: the service chart rendered through Helm's engine, Istio rules built
// as typed istio.io/client-go objects, and monitoring objects. It is the one
// rendering path: dry runs, deploys and every canary step call it, with the
// canary's traffic (Traffic: weights, A/B matches, mirroring) as an input.
// It never talks to a cluster.
package render

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/routes"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/imageref"
	"helm.sh/helm/v4/pkg/chart/common"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Options tune one rendering.
type Options struct {
	// Services limits the output to these services; empty means all.
	Services []string
	// Traffic maps a service to its canary's traffic: weight, A/B match
	// and mirroring. A service without an entry (here or in CanaryWeights)
	// has no canary: 100/0 stable/canary.
	Traffic map[string]routes.Traffic
	// CanaryWeights is shorthand for Traffic with a weight alone; a service
	// may be in one of the two, not both.
	CanaryWeights map[string]int
	// ImageTag is the tag of every service image; default "latest".
	ImageTag string
	// Images are whole image references per service, e.g. by digest from
	// a build; an entry wins over ImageTag, and one without a repository
	// takes the service's.
	Images map[string]imageref.Ref
	// Values are extra chart values applied to every service, in order:
	// -f files then --set, as helm does.
	Values []map[string]any
	// KubeVersion and APIVersions stand in for the cluster's, as with
	// `helm template --kube-version --api-versions`.
	KubeVersion string
	APIVersions []string
}

// Source says which part of msctl produced an object.
type Source string

// The sources of rendered objects.
const (
	SourceChart      Source = "chart"
	SourceIstio      Source = "istio"
	SourceMonitoring Source = "monitoring"
	SourceProject    Source = "project"
)

// Object is one rendered Kubernetes object.
type Object struct {
	// Service is the service the object belongs to; "" for objects the
	// whole project shares (namespace, gateway, mesh policies, dashboard).
	Service string
	Source  Source
	*unstructured.Unstructured
}

// Result is everything rendered, in a stable order: project-wide objects,
// then each service's in the project file's order.
type Result struct {
	Objects []Object
}

// Render renders the project. Bad input (unknown services, weights or
// mirror percentages outside 0-100, a match Istio would refuse, values the
// chart's schema rejects) is an errkind.BadInput error.
func Render(p *config.Project, opts Options) (*Result, error) {
	services, err := selectServices(p, opts.Services)
	if err != nil {
		return nil, err
	}
	traffic, err := opts.trafficFor(p)
	if err != nil {
		return nil, err
	}
	for name := range opts.Images {
		s := p.Service(name)
		if s == nil {
			return nil, errkind.BadInputf("image for unknown service %q", name)
		}
		if err := opts.Image(p, s).Validate(); err != nil {
			return nil, errkind.BadInputf("%s: %w", name, err)
		}
	}
	if opts.ImageTag == "" {
		opts.ImageTag = defaultTag
	}
	if len(opts.Values) > 0 {
		for _, s := range services {
			if err := checkSagaTimeout(p, s, serviceValues(p, s, opts.Image(p, s), opts.Values)); err != nil {
				return nil, err
			}
		}
	}
	caps, err := capabilities(opts.KubeVersion, opts.APIVersions)
	if err != nil {
		return nil, err
	}

	res := &Result{}
	project, err := ProjectObjects(p)
	if err != nil {
		return nil, err
	}
	res.Objects = append(res.Objects, project...)
	// Services render independently; do them side by side.
	perService := make([][]Object, len(services))
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		wg.Go(func() {
			perService[i], errs[i] = renderService(p, s, opts, traffic[s.Name], caps)
		})
	}
	wg.Wait()
	for i := range services {
		if errs[i] != nil {
			return nil, errs[i]
		}
		res.Objects = append(res.Objects, perService[i]...)
	}
	return res, nil
}

// defaultTag is the image tag when neither ImageTag nor Images gives one.
const defaultTag = "latest"

// Image is the image this rendering gives s: its entry in Images, else the
// service's repository at ImageTag.
func (o Options) Image(p *config.Project, s *config.Service) imageref.Ref {
	if img, ok := o.Images[s.Name]; ok {
		if img.Repository == "" {
			img.Repository = ServiceImage(p, s, "").Repository
		}
		return img
	}
	return ServiceImage(p, s, cmp.Or(o.ImageTag, defaultTag))
}

func renderService(p *config.Project, s *config.Service, opts Options, t routes.Traffic, caps *common.Capabilities) ([]Object, error) {
	objs, err := renderChart(p, s, opts, caps)
	if err != nil {
		return nil, err
	}
	istioObjs, err := serviceIstioObjects(p, s, t)
	if err != nil {
		return nil, err
	}
	return append(objs, istioObjs...), nil
}

// checkSagaTimeout holds the SAGA_TIMEOUT that -f and --set leave to the
// rule the project file's own is held to.
func checkSagaTimeout(p *config.Project, s *config.Service, values map[string]any) error {
	env, _ := values["env"].(map[string]any)
	raw, ok := env["SAGA_TIMEOUT"]
	if !ok {
		return nil
	}
	badSaga, msg := config.SagaTimeoutProblem(time.Duration(s.Timeout), fmt.Sprint(raw))
	switch {
	case msg == "":
		return nil
	case badSaga:
		return errkind.BadInputf("%s: env.SAGA_TIMEOUT from -f or --set: %s", s.Name, msg)
	}
	return errkind.BadInputf("%s: env.SAGA_TIMEOUT from -f or --set against services[%d].timeout: %s", s.Name, slices.Index(p.ServiceNames(), s.Name), msg)
}

func selectServices(p *config.Project, names []string) ([]*config.Service, error) {
	if len(names) == 0 {
		out := make([]*config.Service, len(p.Services))
		for i := range p.Services {
			out[i] = &p.Services[i]
		}
		return out, nil
	}
	var out []*config.Service
	for _, n := range names {
		s := p.Service(n)
		if s == nil {
			return nil, errkind.BadInputf("unknown service %q (the project has: %s)", n, strings.Join(p.ServiceNames(), ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	// Keep the project's order whatever order the names came in.
	slices.SortFunc(out, func(a, b *config.Service) int {
		return cmp.Compare(slices.Index(p.ServiceNames(), a.Name), slices.Index(p.ServiceNames(), b.Name))
	})
	return out, nil
}

// YAML writes the objects as one multi-document YAML stream.
func (r *Result) YAML() ([]byte, error) { return encodeObjects(r.Objects) }
