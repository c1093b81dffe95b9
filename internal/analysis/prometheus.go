package analysis

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Sample is the one number a query gave, if any.
type Sample struct {
	Value float64
	// OK is false when there was no data: an empty result or NaN, which a
	// decision must never read as 0 or as failure.
	OK bool
}

// Querier evaluates an instant query; the analysis reads Prometheus only
// through it, so tests and the local runtime's engine can stand in.
type Querier interface {
	Query(ctx context.Context, query string, at time.Time) (Sample, error)
}

// Prometheus is a Querier on a Prometheus HTTP API.
type Prometheus struct {
	address string
	api     promv1.API
}

// NewPrometheus returns a client of the Prometheus HTTP API at address,
// e.g. http://prometheus.istio-system:9090. rt may be nil for Go's default
// transport.
func NewPrometheus(address string, rt http.RoundTripper) (*Prometheus, error) {
	c, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus address %q: %v", address, err)
	}
	return &Prometheus{address: address, api: promv1.NewAPI(c)}, nil
}

// Address is the API address, for messages.
func (p *Prometheus) Address() string { return p.address }

// Query runs query at the given time. An unreachable server or a query
// error is an error naming the address; a result of several series is an
// error too, since a check compares one number.
func (p *Prometheus) Query(ctx context.Context, query string, at time.Time) (Sample, error) {
	v, _, _, err := p.api.Query(ctx, query, at)
	if err != nil {
		return Sample{}, fmt.Errorf("prometheus at %s: %v", p.address, err)
	}
	s, err := sampleOf(v)
	if err != nil {
		return Sample{}, fmt.Errorf("prometheus at %s: %v", p.address, err)
	}
	return s, nil
}

// sampleOf reads the one number of a query's result.
func sampleOf(v model.Value) (Sample, error) {
	var f float64
	switch v := v.(type) {
	case model.Vector:
		switch len(v) {
		case 0:
			return Sample{}, nil
		case 1:
			f = float64(v[0].Value)
		default:
			return Sample{}, fmt.Errorf("query gave %d series, want one: aggregate them, e.g. with sum", len(v))
		}
	case *model.Scalar:
		f = float64(v.Value)
	default:
		return Sample{}, fmt.Errorf("query gave a %s, want an instant vector or a scalar", v.Type())
	}
	if math.IsNaN(f) {
		return Sample{}, nil
	}
	return Sample{Value: f, OK: true}, nil
}
