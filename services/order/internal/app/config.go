package app

import (
	"time"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/experiments"
	"github.com/msctl/msctl/services/kit/host"
	"github.com/msctl/msctl/services/order/internal/deps"
)

// Config is everything the order service reads from its environment: the
// variables every service reads, and its own.
type Config struct {
	host.Config

	// Deps says where user, inventory and payment are (USER_ADDR,
	// INVENTORY_ADDR, PAYMENT_ADDR) and the per-call timeout and breaker
	// settings; the API key to call them with comes from the kit's
	// DOWNSTREAM_API_KEY_FILE.
	Deps deps.Config
	// ResumeInterval is how often unfinished sagas are resumed (also once
	// at start-up); SagaTimeout bounds how long CreateOrder waits for its
	// saga before leaving the rest to the resumer.
	ResumeInterval, SagaTimeout time.Duration
	// Experiment is the checkout-flow experiment; CHECKOUT_FLOW_STATUS and
	// CHECKOUT_FLOW_ONE_PAGE_PERCENT shape it.
	Experiment experiments.Experiment
}

// ExperimentID is the one experiment the order service runs.
const ExperimentID = "checkout-flow"

// DefaultSQLitePath is where `go run ./services/order` keeps its data with
// no setup.
func DefaultSQLitePath() string { return host.DefaultSQLitePath(Name, "order.db") }

// LoadConfig reads and validates the configuration; its error is one line
// naming every bad variable.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := config.New(lookup)
	c := Config{
		Config: host.LoadConfig(e, Name, DefaultSQLitePath()),
		Deps: deps.Config{
			UserAddr:         e.Target("USER_ADDR", "dns:///user:9090"),
			InventoryAddr:    e.Target("INVENTORY_ADDR", "dns:///inventory:9090"),
			PaymentAddr:      e.Target("PAYMENT_ADDR", "dns:///payment:9090"),
			Timeout:          e.Duration("DOWNSTREAM_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute),
			FailureThreshold: uint32(e.Int("BREAKER_FAILURES", 5, 1, 1000)),
			OpenFor:          e.Duration("BREAKER_OPEN_FOR", 10*time.Second, 100*time.Millisecond, 10*time.Minute),
		},
		ResumeInterval: e.Duration("SAGA_RESUME_INTERVAL", 10*time.Second, 50*time.Millisecond, time.Hour),
		SagaTimeout:    e.Duration("SAGA_TIMEOUT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
	}
	onePage := e.Int("CHECKOUT_FLOW_ONE_PAGE_PERCENT", 50, 0, 100)
	c.Experiment = experiments.Experiment{
		ID:       ExperimentID,
		Status:   experiments.Status(e.String("CHECKOUT_FLOW_STATUS", string(experiments.StatusRunning))),
		Variants: []experiments.Variant{{Name: "control", Percent: 100 - onePage}, {Name: "one_page", Percent: onePage}},
	}
	if err := c.Experiment.Validate(); err != nil {
		e.Failf("CHECKOUT_FLOW_STATUS", "%v", err)
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
