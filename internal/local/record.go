package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/errkind"
)

// recordVersion is the version of the record's encoding.
const recordVersion = 1

// record is what the supervisor writes to the run directory whenever a
// process starts or stops: enough for another msctl to reach its control
// API, and for Down to stop every process without it.
type record struct {
	Version    int             `json:"version"`
	Supervisor procID          `json:"supervisor"`
	Started    time.Time       `json:"started"`
	Control    string          `json:"control"` // http://127.0.0.1:PORT
	GatewayURL string          `json:"gatewayURL"`
	MetricsURL string          `json:"metricsURL"`
	Services   []ServiceStatus `json:"services"`
}

// procID names one process: its pid and its start time, which together
// survive pid reuse.
type procID struct {
	PID   int    `json:"pid"`
	Start string `json:"start"`
}

// alive reports whether the process recorded is still the one running.
func (p procID) alive() bool {
	return p.PID > 0 && p.Start != "" && processStart(p.PID) == p.Start
}

func readRecord(runDir string) (*record, error) {
	b, err := os.ReadFile(paths(runDir).record())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNothingRuns(runDir)
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", paths(runDir).record(), err)
	}
	if r.Version > recordVersion {
		return nil, fmt.Errorf("%s was written by a newer msctl (version %d)", paths(runDir).record(), r.Version)
	}
	return &r, nil
}

func writeRecord(runDir string, r *record) error {
	r.Version = recordVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(paths(runDir).record(), b, 0o600)
}

func errNothingRuns(runDir string) error {
	return errkind.BadInputf("nothing runs in %s; start it with msctl up -d", runDir)
}

// processes lists every process a record names, the supervisor first: it
// stops its services in order, and would restart one stopped under it.
func (r *record) processes() []procID {
	out := []procID{r.Supervisor}
	for _, s := range r.Services {
		for _, in := range []*Instance{s.Canary, s.Stable} {
			if in != nil && in.PID > 0 {
				out = append(out, procID{in.PID, in.Start})
			}
		}
	}
	return out
}
