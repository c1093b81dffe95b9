package app

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/experiments"
	"github.com/msctl/msctl/services/kit/logging"
	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/order/internal/deps"
)

// Config is everything the order service reads from its environment.
type Config struct {
	GRPCAddr, HTTPAddr, AdminAddr string

	Database storage.Location
	// DatabaseDefaulted says DATABASE_URL was unset and the local SQLite
	// file is used, which start-up logs.
	DatabaseDefaulted bool

	LogLevel string

	// ShutdownDelay keeps serving after readiness turns false, so load
	// balancers notice before connections close; ShutdownGrace bounds the
	// whole drain.
	ShutdownDelay, ShutdownGrace time.Duration

	ReadinessInterval, ReadinessTimeout time.Duration

	// Deps says where user, inventory and payment are (USER_ADDR,
	// INVENTORY_ADDR, PAYMENT_ADDR), the API key to call them with
	// (DOWNSTREAM_API_KEY) and the per-call timeout and breaker settings.
	Deps deps.Config
	// ResumeInterval is how often unfinished sagas are resumed (also once
	// at start-up); SagaTimeout bounds how long CreateOrder waits for its
	// saga before leaving the rest to the resumer.
	ResumeInterval, SagaTimeout time.Duration
	// Experiment is the checkout-flow experiment; CHECKOUT_FLOW_STATUS and
	// CHECKOUT_FLOW_ONE_PAGE_PERCENT shape it.
	Experiment experiments.Experiment

	MaxBodyBytes int64
	Pprof        bool

	JWTPublicKeyFile, JWKSFile, JWTIssuer, JWTAudience string
	APIKeysFile                                        string
	DevMode                                            bool

	FaultErrorRate float64
	FaultDelay     time.Duration
}

// ExperimentID is the one experiment the order service runs.
const ExperimentID = "checkout-flow"

// DefaultSQLitePath is where `go run ./services/order` keeps its data with
// no setup: the user's cache directory (or the temp directory when there
// is none), never the working tree.
func DefaultSQLitePath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "msctl", "order", "order.db")
}

// LoadConfig reads and validates the configuration; its error is one line
// naming every bad variable.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := config.New(lookup)
	c := Config{
		GRPCAddr:          e.Addr("GRPC_ADDR", ":9090"),
		HTTPAddr:          e.Addr("HTTP_ADDR", ":8080"),
		AdminAddr:         e.Addr("ADMIN_ADDR", ":8081"),
		LogLevel:          e.String("LOG_LEVEL", "info"),
		ShutdownDelay:     e.Duration("SHUTDOWN_DELAY", 0, 0, time.Minute),
		ShutdownGrace:     e.Duration("SHUTDOWN_GRACE", 20*time.Second, time.Second, 10*time.Minute),
		ReadinessInterval: e.Duration("READINESS_INTERVAL", 2*time.Second, 100*time.Millisecond, time.Minute),
		ReadinessTimeout:  e.Duration("READINESS_TIMEOUT", time.Second, 10*time.Millisecond, 30*time.Second),
		Deps: deps.Config{
			UserAddr:         e.String("USER_ADDR", "dns:///user:9090"),
			InventoryAddr:    e.String("INVENTORY_ADDR", "dns:///inventory:9090"),
			PaymentAddr:      e.String("PAYMENT_ADDR", "dns:///payment:9090"),
			APIKey:           e.String("DOWNSTREAM_API_KEY", ""),
			Timeout:          e.Duration("DOWNSTREAM_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute),
			FailureThreshold: uint32(e.Int("BREAKER_FAILURES", 5, 1, 1000)),
			OpenFor:          e.Duration("BREAKER_OPEN_FOR", 10*time.Second, 100*time.Millisecond, 10*time.Minute),
		},
		ResumeInterval:   e.Duration("SAGA_RESUME_INTERVAL", 10*time.Second, 50*time.Millisecond, time.Hour),
		SagaTimeout:      e.Duration("SAGA_TIMEOUT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
		MaxBodyBytes:     int64(e.Int("MAX_BODY_BYTES", 1<<20, 1<<10, 64<<20)),
		Pprof:            e.Bool("ADMIN_PPROF", false),
		JWTPublicKeyFile: e.String("AUTH_JWT_PUBLIC_KEY_FILE", ""),
		JWKSFile:         e.String("AUTH_JWKS_FILE", ""),
		JWTIssuer:        e.String("AUTH_JWT_ISSUER", ""),
		JWTAudience:      e.String("AUTH_JWT_AUDIENCE", "order"),
		APIKeysFile:      e.String("AUTH_API_KEYS_FILE", ""),
		DevMode:          e.Bool("AUTH_DEV_MODE", false),
		FaultErrorRate:   e.Float("FAULT_ERROR_RATE", 0, 0, 1),
		FaultDelay:       e.Duration("FAULT_DELAY", 0, 0, time.Minute),
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
	if _, ok := logging.ParseLevel(c.LogLevel); !ok {
		e.Failf("LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	raw := e.String("DATABASE_URL", "")
	if raw == "" {
		c.DatabaseDefaulted = true
		raw = "sqlite://" + filepath.ToSlash(DefaultSQLitePath())
	}
	loc, err := storage.Parse(raw)
	if err != nil {
		e.Failf("DATABASE_URL", "%v", err) // never echo the URL: it may hold a password
	}
	c.Database = loc
	jwt := c.JWTPublicKeyFile != "" || c.JWKSFile != ""
	switch {
	case jwt && c.JWTIssuer == "":
		e.Failf("AUTH_JWT_ISSUER", "is required with AUTH_JWT_PUBLIC_KEY_FILE or AUTH_JWKS_FILE")
	case jwt && c.DevMode:
		e.Failf("AUTH_DEV_MODE", "cannot be combined with AUTH_JWT_PUBLIC_KEY_FILE or AUTH_JWKS_FILE")
	}
	if c.ReadinessTimeout >= c.ReadinessInterval {
		e.Failf("READINESS_TIMEOUT", "%s must be shorter than READINESS_INTERVAL (%s)", c.ReadinessTimeout, c.ReadinessInterval)
	}
	if c.ShutdownDelay >= c.ShutdownGrace {
		e.Failf("SHUTDOWN_DELAY", "%s must be shorter than SHUTDOWN_GRACE (%s)", c.ShutdownDelay, c.ShutdownGrace)
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// errNotStarted is what calls get before the database is open.
var errNotStarted = errors.New("database not ready yet (starting)")
