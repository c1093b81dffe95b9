package canary

import (
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
)

// Event is one thing that happened to a canary, for progress lines, the
// --events NDJSON stream, and the CI summaries.
type Event struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	// Type is phase, step, traffic, check, action or retry.
	Type    string            `json:"type"`
	Phase   canarystate.Phase `json:"phase"`
	Step    int               `json:"step"`
	Message string            `json:"message"`
	Check   *analysis.Check   `json:"check,omitempty"`
}
