package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
)

func TestExitCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("deploying: %w", err) }
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitFailure},
		{&UsageError{Err: errors.New("bad flag")}, ExitUsage},
		{wrap(&config.Error{Problems: []config.Problem{{Source: "msctl.yaml", Message: "x"}}}), ExitUsage},
		{wrap(&kube.ConfigError{Err: errors.New("no context")}), ExitUsage},
		{wrap(&deploy.NoSuchRevisionError{Service: "user", Revision: 9}), ExitUsage},
		{wrap(&kube.LockHeldError{Name: "msctl-user", Holder: "ci"}), ExitLockHeld},
		{wrap(context.DeadlineExceeded), ExitTimedOut},
		{&deploy.Failed{Results: []deploy.Result{{Service: "user", State: deploy.StateRolledBack, TimedOut: true}}}, ExitTimedOut},
		{&deploy.Failed{Results: []deploy.Result{{Service: "user", State: deploy.StateFailed}}}, ExitFailure},
		{wrap(&kube.UnreachableError{Context: "prod", Host: "https://x", Err: errors.New("refused")}), ExitFailure},
		{context.Canceled, ExitInterrupted},
		{&silentError{code: ExitUsage}, ExitUsage},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
