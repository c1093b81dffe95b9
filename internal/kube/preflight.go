package kube

import (
	"context"
	"fmt"
	"sort"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Permission is one thing msctl needs to be allowed to do.
type Permission struct {
	Verb      string
	Group     string
	Resource  string
	Namespace string
}

func (p Permission) String() string {
	res := p.Resource
	if p.Group != "" {
		res += "." + p.Group
	}
	if p.Namespace == "" {
		return p.Verb + " " + res
	}
	return fmt.Sprintf("%s %s in %s", p.Verb, res, p.Namespace)
}

// MissingPermissions asks the API server (SelfSubjectAccessReview) about
// each permission and returns the ones denied, in the order given.
func (c *Cluster) MissingPermissions(ctx context.Context, perms []Permission) ([]Permission, error) {
	var (
		mu       sync.Mutex
		missing  []Permission
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for _, p := range perms {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			review, err := c.Clientset.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: p.Verb, Group: p.Group, Resource: p.Resource, Namespace: p.Namespace,
				}},
			}, metav1.CreateOptions{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == nil:
				firstErr = fmt.Errorf("checking permission to %s: %w", p, err)
			case err == nil && !review.Status.Allowed:
				missing = append(missing, p)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// In the order asked, so messages group resources the way callers listed them.
	sort.SliceStable(missing, func(i, j int) bool { return indexOf(perms, missing[i]) < indexOf(perms, missing[j]) })
	return missing, nil
}

// APIVersions lists what the cluster serves as group/version/Kind strings,
// the form Helm's capabilities and `--api-versions` use.
func (c *Cluster) APIVersions(ctx context.Context) ([]string, error) {
	_, lists, err := c.Clientset.Discovery().ServerGroupsAndResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering the cluster's APIs: %w", err)
	}
	var out []string
	for _, l := range lists {
		gv, perr := schema.ParseGroupVersion(l.GroupVersion)
		if perr != nil {
			continue
		}
		out = append(out, gv.String())
		for _, r := range l.APIResources {
			out = append(out, gv.String()+"/"+r.Kind)
		}
	}
	sort.Strings(out)
	return out, nil
}

func indexOf(perms []Permission, p Permission) int {
	for i, q := range perms {
		if q == p {
			return i
		}
	}
	return -1
}
