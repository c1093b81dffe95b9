package app

import (
	"time"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host"
)

// Config is everything the user service reads from its environment: the
// variables every service reads, and its own.
type Config struct {
	host.Config

	// EventsPollInterval is how often an activity stream looks for new
	// events (EVENTS_POLL_INTERVAL).
	EventsPollInterval time.Duration
}

// DefaultSQLitePath is where `go run ./services/user` keeps its data with
// no setup.
func DefaultSQLitePath() string { return host.DefaultSQLitePath(Name, "users.db") }

// LoadConfig reads and validates the configuration; its error is one line
// naming every bad variable.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := config.New(lookup)
	c := Config{
		Config:             host.LoadConfig(e, Name, DefaultSQLitePath()),
		EventsPollInterval: e.Duration("EVENTS_POLL_INTERVAL", 250*time.Millisecond, 10*time.Millisecond, time.Minute),
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
