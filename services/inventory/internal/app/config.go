package app

import (
	"time"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host"
)

// Config is everything the inventory service reads from its environment:
// the variables every service reads, and its own.
type Config struct {
	host.Config

	// ReservationTTL is how long a reservation holds stock unless
	// committed; the sweeper looks for expired ones every SweepInterval
	// (reads and writes of a reservation also expire it when due).
	ReservationTTL, SweepInterval time.Duration
}

// DefaultSQLitePath is where `go run ./services/inventory` keeps its data
// with no setup.
func DefaultSQLitePath() string { return host.DefaultSQLitePath(Name, "inventory.db") }

// LoadConfig reads and validates the configuration; its error is one line
// naming every bad variable.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := config.New(lookup)
	c := Config{
		Config:         host.LoadConfig(e, Name, DefaultSQLitePath()),
		ReservationTTL: e.Duration("RESERVATION_TTL", 15*time.Minute, time.Second, 7*24*time.Hour),
		SweepInterval:  e.Duration("RESERVATION_SWEEP_INTERVAL", 30*time.Second, 10*time.Millisecond, time.Hour),
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
