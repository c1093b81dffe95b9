package deploy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Transient reports whether err is a failure that says nothing of what was
// deployed and that trying again may clear: the API server overloaded,
// unreachable or restarting, a write that lost a race, or a release held by
// another operation. A workload that does not become ready is not one.
func Transient(err error) bool {
	// A deadline is the wait's: the workload was not ready in time. (It
	// is also a net.Error, so this comes first.)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var busy *OperationInProgressError
	var netErr net.Error
	switch {
	case errors.As(err, &busy),
		apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsConflict(err),
		apierrors.IsUnexpectedServerError(err),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &netErr):
		return true
	}
	// Helm formats some errors with %s, which drops the chain.
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset by peer", "http2: server sent GOAWAY", "the object has been modified; please apply your changes"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
