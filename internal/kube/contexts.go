package kube

import (
	"slices"

	"k8s.io/client-go/tools/clientcmd"
)

// Contexts lists the context names of the kubeconfig that client-go's
// loading rules pick: explicit if set, else KUBECONFIG, else ~/.kube/config.
func Contexts(explicit string) ([]string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = explicit
	cfg, err := rules.Load()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfg.Contexts))
	for name := range cfg.Contexts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
