package render

import (
	"fmt"
	"io/fs"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/manifests"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GrafanaDashboardLabel is the label Grafana's dashboard sidecar watches.
const GrafanaDashboardLabel = "grafana_dashboard"

// dashboardConfigMap ships the Grafana dashboard for the project's services.
func dashboardConfigMap(p *config.Project) (*corev1.ConfigMap, error) {
	data, err := fs.ReadFile(manifests.Monitoring, "monitoring/dashboard.json")
	if err != nil {
		return nil, fmt.Errorf("reading the embedded dashboard: %w", err)
	}
	m := meta(p, p.Name+"-dashboard", "")
	m.Labels[GrafanaDashboardLabel] = "1"
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: m,
		Data:       map[string]string{p.Name + ".json": string(data)},
	}, nil
}
