package experiments

import "github.com/prometheus/client_golang/prometheus"

// Exposures counts users shown a variant, so the A/B split is visible in
// Prometheus next to the service's RED metrics.
type Exposures struct {
	total *prometheus.CounterVec
}

// NewExposures registers experiment_exposures_total{experiment,variant} on
// reg (the service's own registry, never the global one). It fails if the
// metric is already registered there.
func NewExposures(reg prometheus.Registerer) (*Exposures, error) {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "experiment_exposures_total",
		Help: "Times a user was served a variant of an experiment.",
	}, []string{"experiment", "variant"})
	if err := reg.Register(total); err != nil {
		return nil, err
	}
	return &Exposures{total: total}, nil
}

// Record counts one exposure.
func (x *Exposures) Record(experiment, variant string) {
	x.total.WithLabelValues(experiment, variant).Inc()
}
