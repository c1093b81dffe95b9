package canarykube

import (
	"testing"

	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/canarystate/storetest"
	"k8s.io/client-go/kubernetes"
)

// The ConfigMap store keeps the same contract as the local file store,
// against a real API server.
func TestConfigMapStoreContract(t *testing.T) {
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := cluster.Namespace(t)
	storetest.Run(t, func() canarystate.Store {
		return &canarystate.ConfigMapStore{Client: cs, Namespace: ns, Service: "user"}
	})
}
