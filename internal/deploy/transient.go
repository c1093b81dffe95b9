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
	var c *classified
	if errors.As(err, &c) {
		return c.transient
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
	for _, s := range []string{
		"connection refused", "connection reset by peer", "http2: server sent GOAWAY", "i/o timeout", "TLS handshake timeout",
		"the object has been modified; please apply your changes", "the server is currently unable to handle the request",
		"Too many requests", "etcdserver: request timed out",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// explained is err told as msg, its kind decided on err itself: msg may
// quote pod events, whose "connection refused" is the canary's own fault.
// A wait that ran out of time is never transient.
func explained(err error, timedOut bool, msg string) error {
	return &classified{msg: msg, err: err, transient: !timedOut && Transient(err)}
}

// classified is an error explained for people whose kind was decided on
// the error before the explanation: an explanation may quote pod events,
// which say "connection refused" of a canary that does not listen.
type classified struct {
	msg       string
	err       error
	transient bool
}

func (c *classified) Error() string { return c.msg }
func (c *classified) Unwrap() error { return c.err }
