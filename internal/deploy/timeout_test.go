package deploy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/client-go/util/flowcontrol"
)

// TestARateLimitedDeadlineIsATimeout: with --timeout 1s, client-go's rate
// limiter refuses the next request as soon as it sees the deadline cannot
// be met, before the deadline arrives; that is a timeout (exit 6), not a
// failure (exit 1).
func TestARateLimitedDeadlineIsATimeout(t *testing.T) {
	limiter := flowcontrol.NewTokenBucketRateLimiter(0.1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := limiter.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	err := limiter.Wait(ctx)
	if err == nil {
		t.Fatal("the limiter let a request through that it should refuse")
	}
	// As client-go's request.go wraps it, and kstatus after it.
	err = fmt.Errorf("failed to compute object status: shop_user_apps_Deployment: client rate limiter Wait returned an error: %w", err)
	if !timedOut(err, 10*time.Millisecond, time.Second) {
		t.Errorf("%v: not counted as a timeout", err)
	}
	if timedOut(fmt.Errorf("ImagePullBackOff"), 10*time.Millisecond, time.Second) {
		t.Error("a pod failure counted as a timeout")
	}
}
