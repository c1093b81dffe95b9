package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestTransient(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"API server unreachable", fmt.Errorf("helm: %w", dial), true},
		{"API server unreachable, chain dropped", fmt.Errorf("upgrade: %s", dial), true},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), true},
		{"API server restarting", apierrors.NewServiceUnavailable("restarting"), true},
		{"lost a write race", apierrors.NewConflict(deployments, "user-canary", errors.New("modified")), true},
		{"release of another operation", &OperationInProgressError{Release: "user-canary"}, true},
		{"not ready in time", fmt.Errorf("resource not ready: %w", context.DeadlineExceeded), false},
		{"crash loop", errors.New("Deployment user-canary not ready: pod user-canary-x: CrashLoopBackOff"), false},
		{"forbidden", apierrors.NewForbidden(deployments, "user-canary", errors.New("no")), false},
		{"invalid", apierrors.NewBadRequest("spec.replicas: Invalid value"), false},
		{"readiness explained with a pod event", explained(errors.New("resource not ready, name: user-canary, kind: Deployment, status: InProgress"), false,
			`canary release user-canary: Deployment user-canary not ready: pod x: Readiness probe failed: dial tcp 10.0.0.1:8080: connect: connection refused`), false},
		{"a wait out of time, however it reads", explained(fmt.Errorf("client rate limiter Wait returned an error: %s", dial), true, "canary release user-canary: not ready"), false},
		{"a blip, explained", explained(fmt.Errorf("helm: %w", dial), false, "canary release user-canary: Deployment user-canary has 0 of 2 replicas ready"), true},
		{"API server overloaded, chain dropped", errors.New("upgrade: the server is currently unable to handle the request (get deployments.apps user-canary)"), true},
		{"none", nil, false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
