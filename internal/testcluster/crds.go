package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// fieldManager owns what the harness applies, should a test look at managedFields.
const fieldManager = "msctl-testcluster"

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs server-side applies every CustomResourceDefinition in files
// and waits until all are established, that is, their resources are served.
func installCRDs(ctx context.Context, cfg *rest.Config, files []string) error {
	var crds []*unstructured.Unstructured
	for _, f := range files {
		objs, err := readObjects(f)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			}
		}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	res := dyn.Resource(crdResource)

	// A few applies in flight overlap the round trips without swamping two cores.
	sem := make(chan struct{}, 4)
	errs := make([]error, len(crds))
	var wg sync.WaitGroup
	for i, crd := range crds {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// The API server may still be starting: retry until ctx ends.
			var last error
			err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
				_, last = res.Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
				if apierrors.IsInvalid(last) || apierrors.IsBadRequest(last) {
					return false, last // a broken manifest: retrying will not help
				}
				return last == nil, nil
			})
			if err != nil {
				errs[i] = fmt.Errorf("apply CRD %s: %w (last error: %v)", crd.GetName(), err, last)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	pending := make(map[string]bool, len(crds))
	for _, crd := range crds {
		pending[crd.GetName()] = true
	}
	return waitEstablished(ctx, res, pending)
}

// waitEstablished watches CRDs until none in pending lacks the Established
// condition. A watch without a resource version starts with every existing
// CRD, so none established before the watch is missed.
func waitEstablished(ctx context.Context, res dynamic.ResourceInterface, pending map[string]bool) error {
	for len(pending) > 0 {
		w, err := res.Watch(ctx, metav1.ListOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return notEstablished(ctx, pending)
			}
			return fmt.Errorf("watch CRDs: %w", err)
		}
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && established(u) {
				delete(pending, u.GetName())
			}
			if len(pending) == 0 {
				break
			}
		}
		w.Stop()
		if len(pending) > 0 && ctx.Err() != nil {
			return notEstablished(ctx, pending)
		}
	}
	return nil
}

func notEstablished(ctx context.Context, pending map[string]bool) error {
	names := make([]string, 0, len(pending))
	for n := range pending {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Errorf("CRDs not established: %v: %w", names, context.Cause(ctx))
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// readObjects reads every object of a multi-document YAML file.
func readObjects(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}
