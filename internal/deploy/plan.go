package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Change is what a deploy would do to one object.
type Change struct {
	Service string `json:"service,omitempty"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	// Action is create, update or unchanged.
	Action string `json:"action"`
	// Diff is a unified diff of the live object against the server's
	// dry-run result, for updates.
	Diff string `json:"diff,omitempty"`
}

// Plan says what a deploy with opts would change, object by object, from
// server-side dry-run applies: admission and defaulting included, nothing
// stored.
func (d *Deployer) Plan(ctx context.Context, opts Options) ([]Change, error) {
	opts = opts.withDefaults()
	caps, err := d.preflight(ctx, opts.NoIstio)
	if err != nil {
		return nil, err
	}
	apis := caps.APIVersions
	weights := map[string]int{}
	services := opts.Services
	if len(services) == 0 {
		services = d.Project.ServiceNames()
	}
	for _, s := range services {
		w, err := d.CanaryWeight(ctx, s)
		if err != nil {
			return nil, err
		}
		weights[s] = w
	}
	res, err := render.Render(d.Project, render.Options{
		Services: services, ImageTag: opts.ImageTag, Images: opts.Images, APIVersions: apis, Values: opts.Values, CanaryWeights: weights,
	})
	if err != nil {
		return nil, err
	}
	nsExists, err := d.applier.Get(ctx, "v1", "Namespace", "", d.Project.Namespace)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, o := range res.Objects {
		if opts.NoIstio && o.Source == render.SourceIstio {
			continue
		}
		c := Change{Service: o.Service, Kind: o.GetKind(), Name: o.GetName()}
		apply := kube.ApplyOptions{DryRun: true}
		if o.Source == render.SourceChart {
			// Preview Helm's apply: its manager, and the ownership
			// annotations it adds to every object of a release.
			apply.FieldManager = helmFieldManager
			ann := o.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann["meta.helm.sh/release-name"] = o.Service
			ann["meta.helm.sh/release-namespace"] = d.Project.Namespace
			o.SetAnnotations(ann)
		}
		live, err := d.applier.Get(ctx, o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName())
		if err != nil {
			return nil, err
		}
		switch {
		case live == nil && nsExists == nil && o.GetKind() != "Namespace":
			// Nothing namespaced can be dry-run before its namespace exists.
			c.Action = "create"
		case live == nil:
			if _, err := d.applier.Apply(ctx, o.Unstructured, apply); err != nil {
				return nil, err
			}
			c.Action = "create"
		default:
			after, err := d.applier.Apply(ctx, o.Unstructured, apply)
			if err != nil {
				return nil, err
			}
			c.Diff, err = diff(live, after)
			if err != nil {
				return nil, err
			}
			c.Action = "update"
			if c.Diff == "" {
				c.Action = "unchanged"
			}
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// diff compares two versions of an object without the fields the server
// changes on every write.
func diff(before, after *unstructured.Unstructured) (string, error) {
	a, err := comparable(before)
	if err != nil {
		return "", err
	}
	b, err := comparable(after)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: "live", ToFile: "after deploy", Context: 2,
	})
}

func comparable(u *unstructured.Unstructured) (string, error) {
	c := u.DeepCopy()
	for _, f := range [][]string{
		{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "generation"},
		{"metadata", "uid"}, {"metadata", "creationTimestamp"}, {"status"},
	} {
		unstructured.RemoveNestedField(c.Object, f...)
	}
	b, err := yaml.Marshal(c.Object)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return strings.TrimSpace(string(b)) + "\n", nil
}
