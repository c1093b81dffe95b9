package canary

import (
	"context"

	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/routes"
)

// Traffic sets how a service's requests split between stable and canary.
// Setting the same split twice is harmless.
type Traffic interface {
	Set(ctx context.Context, t routes.Traffic) error
}

// Releases are the stable's and the canary's workloads. Every method is
// idempotent, so a resumed driver may repeat what a killed one did.
type Releases interface {
	// Stable is the stable workload's image and revision.
	Stable(ctx context.Context) (imageref.Ref, int, error)
	// DeployCanary runs the canary workload at img, ready. A failure a
	// retry may clear (the API server unreachable for a moment, the release
	// held by another operation) is a *TransientError: the driver retries
	// it and never rolls a canary back for it.
	DeployCanary(ctx context.Context, img imageref.Ref) error
	// RemoveCanary stops the canary workload.
	RemoveCanary(ctx context.Context) error
	// Promote makes img the stable's image, ready, and returns the
	// stable's new revision.
	Promote(ctx context.Context, img imageref.Ref) (int, error)
}

// Lock is the service's lock as the driver needs it.
type Lock interface {
	// Check fails once the lock may no longer be held.
	Check() error
	// Holder is the identity the lock is held under.
	Holder() string
}

// TransientError is a failure of a port that says nothing about the
// canary: trying again may succeed.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }
