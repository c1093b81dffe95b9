package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/errkind"
)

// Ask writes an action into a running canary's state for its driver to
// carry out, by compare-and-swap, and returns the state as written. A
// canary that is not in progress is an errkind.BadInput error.
func Ask(ctx context.Context, store canarystate.Store, service string, action canarystate.Action, full bool, by string, now time.Time) (*canarystate.State, error) {
	for range 10 {
		st, ver, err := store.Load(ctx)
		if err != nil {
			return nil, err
		}
		if st == nil || !st.Open() {
			return nil, errkind.BadInputf("no canary of %s is in progress", service)
		}
		if r := st.Request; r != nil && r.Action == canarystate.ActionAbort && action != canarystate.ActionAbort {
			return nil, errkind.BadInputf("an abort of the canary of %s by %s is pending; it wins over %s", service, r.By, action)
		}
		st.Request = &canarystate.Request{Action: action, Full: full, By: by, At: now}
		if _, err := store.Save(ctx, st, ver); errors.Is(err, canarystate.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("the canary state of %s keeps changing; try again", service)
}

// Acknowledged waits until the driver has taken the request (the state no
// longer holds it), polling every tick until ctx ends.
func Acknowledged(ctx context.Context, store canarystate.Store, tick time.Duration) (*canarystate.State, error) {
	for {
		st, _, err := store.Load(ctx)
		if err != nil {
			return nil, err
		}
		if st == nil || st.Request == nil {
			return st, nil
		}
		if err := sleep(ctx, tick); err != nil {
			return st, err
		}
	}
}
