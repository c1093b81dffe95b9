package host

import (
	"os"
	"path/filepath"
	"time"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/logging"
	"github.com/msctl/msctl/services/kit/storage"
)

// Config is the part of a service's environment that every service reads
// the same way; a service's own Config embeds it and adds its variables.
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
	MaxBodyBytes                        int64
	Pprof                               bool

	// JWTAudience is one audience or a comma-separated list, any one of
	// which a token must name.
	JWTPublicKeyFile, JWKSFile, JWTIssuer, JWTAudience string
	APIKeysFile                                        string
	DevMode                                            bool
	// DownstreamAPIKeyFile holds the API key the service calls its
	// dependencies with.
	DownstreamAPIKeyFile string
	// KeysReloadInterval is how often the key files are checked for new
	// content (a rotated Secret), which replaces the keys in use.
	KeysReloadInterval time.Duration
	// Limits bound failed authentications per client address, each JWT
	// subject's calls and all calls of the process.
	Limits auth.Limits

	FaultErrorRate float64
	FaultDelay     time.Duration
	// FaultExitAfter ends the process, with an error, that long after it
	// starts: a build that crash-loops.
	FaultExitAfter time.Duration
}

// HostConfig returns c; embedded in a service's Config it hands the common
// part to kit/command.
func (c Config) HostConfig() Config { return c }

// DefaultSQLitePath is where a service keeps its data when DATABASE_URL is
// unset: the user's cache directory (or the temp directory when there is
// none), never the working tree, so `go run` needs no setup.
func DefaultSQLitePath(service, file string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "msctl", service, file)
}

// LoadConfig reads the common variables through e and records every bad
// value and every bad combination on e; the caller reads its own variables
// on the same Env and then asks e.Err(), so start-up fails with one line.
// service is the default JWT audience; sqlitePath is the database used
// when DATABASE_URL is unset.
func LoadConfig(e *config.Env, service, sqlitePath string) Config {
	c := Config{
		GRPCAddr:             e.Addr("GRPC_ADDR", ":9090"),
		HTTPAddr:             e.Addr("HTTP_ADDR", ":8080"),
		AdminAddr:            e.Addr("ADMIN_ADDR", ":8081"),
		LogLevel:             e.String("LOG_LEVEL", "info"),
		ShutdownDelay:        e.Duration("SHUTDOWN_DELAY", 0, 0, time.Minute),
		ShutdownGrace:        e.Duration("SHUTDOWN_GRACE", 20*time.Second, time.Second, 10*time.Minute),
		ReadinessInterval:    e.Duration("READINESS_INTERVAL", 2*time.Second, 100*time.Millisecond, time.Minute),
		ReadinessTimeout:     e.Duration("READINESS_TIMEOUT", time.Second, 10*time.Millisecond, 30*time.Second),
		MaxBodyBytes:         int64(e.Int("MAX_BODY_BYTES", 1<<20, 1<<10, 64<<20)),
		Pprof:                e.Bool("ADMIN_PPROF", false),
		JWTPublicKeyFile:     e.String("AUTH_JWT_PUBLIC_KEY_FILE", ""),
		JWKSFile:             e.String("AUTH_JWKS_FILE", ""),
		JWTIssuer:            e.String("AUTH_JWT_ISSUER", ""),
		JWTAudience:          e.String("AUTH_JWT_AUDIENCE", service),
		APIKeysFile:          e.String("AUTH_API_KEYS_FILE", ""),
		DevMode:              e.Bool("AUTH_DEV_MODE", false),
		DownstreamAPIKeyFile: e.String("DOWNSTREAM_API_KEY_FILE", ""),
		KeysReloadInterval:   e.Duration("KEYS_RELOAD_INTERVAL", 10*time.Second, 100*time.Millisecond, 10*time.Minute),
		FaultErrorRate:       e.Float("FAULT_ERROR_RATE", 0, 0, 1),
		FaultDelay:           e.Duration("FAULT_DELAY", 0, 0, time.Minute),
		FaultExitAfter:       e.Duration("FAULT_EXIT_AFTER", 0, 0, 24*time.Hour),
	}
	c.Limits = auth.Limits{
		FailuresPerSecond: e.Float("AUTH_FAILURES_PER_SECOND", 1, 0, 1e6),
		FailureBurst:      e.Int("AUTH_FAILURE_BURST", 50, 1, 1e6),
		SubjectPerSecond:  e.Float("AUTH_JWT_RATE_PER_SECOND", 100, 0, 1e6),
		SubjectBurst:      e.Int("AUTH_JWT_BURST", 200, 1, 1e6),
		GlobalPerSecond:   e.Float("RATE_LIMIT_PER_SECOND", 50000, 0, 1e7),
		GlobalBurst:       e.Int("RATE_LIMIT_BURST", 50000, 1, 1e7),
	}
	if _, ok := logging.ParseLevel(c.LogLevel); !ok {
		e.Failf("LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	raw := e.String("DATABASE_URL", "")
	if raw == "" {
		c.DatabaseDefaulted = true
		raw = "sqlite://" + filepath.ToSlash(sqlitePath)
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
	return c
}
