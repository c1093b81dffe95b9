package app

import (
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/storage"
)

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"defaults: local SQLite", nil, ""},
		{"postgres", map[string]string{"DATABASE_URL": "postgres://u:secret@db:5432/users"}, ""},
		{"unknown scheme hides the URL", map[string]string{"DATABASE_URL": "mysql://u:secret@db/users"}, "DATABASE_URL: scheme must be postgres:// or sqlite://"},
		{"relative sqlite path", map[string]string{"DATABASE_URL": "sqlite://users.db"}, "sqlite:///absolute/path"},
		{"fault rate above 1", map[string]string{"FAULT_ERROR_RATE": "2"}, "FAULT_ERROR_RATE: 2 is outside [0, 1]"},
		{"bad delay", map[string]string{"FAULT_DELAY": "soon"}, `FAULT_DELAY: "soon" is not a duration`},
		{"bad port", map[string]string{"GRPC_ADDR": ":99999"}, "GRPC_ADDR: port"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"jwt without issuer", map[string]string{"AUTH_JWKS_FILE": "/jwks.json"}, "AUTH_JWT_ISSUER: is required"},
		{"dev mode with real keys", map[string]string{"AUTH_JWKS_FILE": "/j", "AUTH_JWT_ISSUER": "i", "AUTH_DEV_MODE": "true"}, "AUTH_DEV_MODE: cannot be combined"},
		{"delay not shorter than grace", map[string]string{"SHUTDOWN_DELAY": "30s", "SHUTDOWN_GRACE": "10s"}, "SHUTDOWN_DELAY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(config.FromMap(tc.env))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.env == nil && (!c.DatabaseDefaulted || c.Database.Dialect != storage.SQLite || c.GRPCAddr != ":9090") {
					t.Fatalf("defaults: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %v, want it to contain %q and no secret", err, tc.err)
			}
		})
	}
}
