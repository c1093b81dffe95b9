package local

import (
	"time"

	"github.com/msctl/msctl/internal/routes"
)

// Role is a process's part in its service's traffic.
type Role string

// The roles.
const (
	Stable Role = "stable"
	Canary Role = "canary"
)

// ProcessSpec is what a service's process runs: a binary, environment
// overrides on top of the service's own, and a label for people.
type ProcessSpec struct {
	// Binary is the executable's path; "" means the stable's binary.
	Binary string `json:"binary,omitempty"`
	// Env overrides the service's environment (msctl.yaml's env and the
	// runtime's wiring), e.g. FAULT_ERROR_RATE=0.2.
	Env map[string]string `json:"env,omitempty"`
	// Revision labels the build, e.g. a git ref or a digest.
	Revision string `json:"revision,omitempty"`
}

// equal reports whether two specs run the same thing.
func (s ProcessSpec) equal(o ProcessSpec) bool {
	if s.Binary != o.Binary || s.Revision != o.Revision || len(s.Env) != len(o.Env) {
		return false
	}
	for k, v := range s.Env {
		if w, ok := o.Env[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Instance is one running process of a service.
type Instance struct {
	PID int `json:"pid"`
	// Start is the process's start time as the kernel counts it; with the
	// pid it names the process.
	Start    string      `json:"start"`
	Ports    Ports       `json:"ports"`
	Ready    bool        `json:"ready"`
	Restarts int         `json:"restarts"`
	Spec     ProcessSpec `json:"spec"`
	Log      string      `json:"log"`
	Since    time.Time   `json:"since"`
}

// ServiceStatus is one service: its stable process, its canary if one
// runs, the gateway's traffic split between them, and the port of its
// mesh listener (where the services that call it connect).
type ServiceStatus struct {
	Name     string         `json:"name"`
	MeshPort int            `json:"meshPort"`
	Stable   *Instance      `json:"stable,omitempty"`
	Canary   *Instance      `json:"canary,omitempty"`
	Traffic  routes.Traffic `json:"traffic"`
}

// Status is the whole local runtime as its supervisor sees it.
type Status struct {
	RunDir     string          `json:"runDir"`
	Supervisor int             `json:"supervisorPID"`
	Started    time.Time       `json:"started"`
	GatewayURL string          `json:"gatewayURL"`
	MetricsURL string          `json:"metricsURL"`
	Services   []ServiceStatus `json:"services"`
}

// Service returns the named service's status, or nil.
func (s *Status) Service(name string) *ServiceStatus {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}
