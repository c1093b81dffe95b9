package storage

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotStarted is what a service answers, as Unavailable (503), until
// its database is open (the kit's chain refuses calls with it), so
// clients retry instead of seeing a crash loop.
var ErrNotStarted = errors.New("database not ready yet (starting)")

// APIError answers an error a service's own error mapping did not
// recognise: a call whose own context ended gets that status; anything
// else is logged under what and answered UNAVAILABLE with answer, never
// with its internals.
func APIError(ctx context.Context, logger *slog.Logger, what string, err error, answer string) error {
	if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	logger.ErrorContext(ctx, what, "error", err)
	return status.Error(codes.Unavailable, answer)
}
