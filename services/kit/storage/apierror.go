package storage

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotStarted is what a store answers until its database is open; the
// services' APIs report it, like any storage failure, as Unavailable
// (503), so clients retry instead of seeing a crash loop.
var ErrNotStarted = errors.New("database not ready yet (starting)")

// APIError answers an error a service's own error mapping did not
// recognise: a call whose own context ended gets that status; a call made
// before the database opened gets UNAVAILABLE with ErrNotStarted's text
// (brief, readiness is still off, nothing to log); anything else is
// logged under what and answered UNAVAILABLE with answer, never with its
// internals.
func APIError(ctx context.Context, logger *slog.Logger, what string, err error, answer string) error {
	switch {
	case (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, ErrNotStarted):
		return status.Error(codes.Unavailable, err.Error())
	}
	logger.ErrorContext(ctx, what, "error", err)
	return status.Error(codes.Unavailable, answer)
}
