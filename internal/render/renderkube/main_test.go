package renderkube

import (
	"flag"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/internal/testcluster"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	testcluster.Main(m, &cluster, testcluster.Options{})
}

// monitoringAPIs are the optional APIs of the chart's conditional objects.
var monitoringAPIs = []string{
	"monitoring.coreos.com/v1/ServiceMonitor",
	"monitoring.coreos.com/v1/PrometheusRule",
	"autoscaling.k8s.io/v1/VerticalPodAutoscaler",
}

func bundled(t testing.TB) *config.Project {
	t.Helper()
	l, err := config.Load("../../../msctl.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Project
}

func mustRender(t *testing.T, p *config.Project, opts render.Options) *render.Result {
	t.Helper()
	res, err := render.Render(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
