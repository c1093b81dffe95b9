package deploy

import (
	helmkube "helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release"
	"helm.sh/helm/v4/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// guardedKube is Helm's kube client with the run's lock checked before
// every write. Helm's rollback and uninstall take no context, and its
// upgrade goes on in the background after its context ends: this is what
// keeps a run that lost its lock from writing through them.
type guardedKube struct {
	helmkube.Interface
	check func() error
	// updated, when set, runs after Helm has applied an upgrade's objects
	// and before it waits for them.
	updated func(target helmkube.ResourceList)
}

func (g *guardedKube) Create(r helmkube.ResourceList, o ...helmkube.ClientCreateOption) (*helmkube.Result, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	return g.Interface.Create(r, o...)
}

func (g *guardedKube) Update(original, target helmkube.ResourceList, o ...helmkube.ClientUpdateOption) (*helmkube.Result, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	res, err := g.Interface.Update(original, target, o...)
	if err == nil && g.updated != nil {
		g.updated(target)
	}
	return res, err
}

func (g *guardedKube) Delete(r helmkube.ResourceList, p metav1.DeletionPropagation) (*helmkube.Result, []error) {
	if err := g.check(); err != nil {
		return nil, []error{err}
	}
	return g.Interface.Delete(r, p)
}

// GetWaiterWithOptions keeps the wrapped client's waiter options.
func (g *guardedKube) GetWaiterWithOptions(ws helmkube.WaitStrategy, opts ...helmkube.WaitOption) (helmkube.Waiter, error) {
	if c, ok := g.Interface.(helmkube.InterfaceWaitOptions); ok {
		return c.GetWaiterWithOptions(ws, opts...)
	}
	return g.Interface.GetWaiter(ws)
}

// guardedDriver is Helm's release storage with the lock checked before
// every write of a release record.
type guardedDriver struct {
	driver.Driver
	check func() error
}

func (g *guardedDriver) Create(key string, rls release.Releaser) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Driver.Create(key, rls)
}

func (g *guardedDriver) Update(key string, rls release.Releaser) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Driver.Update(key, rls)
}

func (g *guardedDriver) Delete(key string) (release.Releaser, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	return g.Driver.Delete(key)
}
