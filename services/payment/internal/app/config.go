package app

import (
	"strings"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host"
)

// Config is everything the payment service reads from its environment:
// the variables every service reads, and its own.
type Config struct {
	host.Config

	// DeclineRate (PAYMENT_DECLINE_RATE, 0 to 1) and DeclineCards
	// (PAYMENT_DECLINE_CARDS, comma-separated tokens) make the simulated
	// processor decline, for tests and demos of the saga's compensation.
	// Off by default.
	DeclineRate  float64
	DeclineCards []string
}

// DefaultSQLitePath is where `go run ./services/payment` keeps its data
// with no setup.
func DefaultSQLitePath() string { return host.DefaultSQLitePath(Name, "payment.db") }

// LoadConfig reads and validates the configuration; its error is one line
// naming every bad variable.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	e := config.New(lookup)
	c := Config{
		Config:      host.LoadConfig(e, Name, DefaultSQLitePath()),
		DeclineRate: e.Float("PAYMENT_DECLINE_RATE", 0, 0, 1),
	}
	for card := range strings.SplitSeq(e.String("PAYMENT_DECLINE_CARDS", ""), ",") {
		switch card = strings.TrimSpace(card); {
		case card == "":
		case len(card) > 128:
			e.Failf("PAYMENT_DECLINE_CARDS", "a token is longer than 128 bytes")
		default:
			c.DeclineCards = append(c.DeclineCards, card)
		}
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}
