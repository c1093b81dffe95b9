package userapi

import (
	"testing"

	"github.com/msctl/msctl/services/kit/auth"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// TestPolicyCoversEveryRPC stops a new RPC from shipping without a
// permission: the policy fails closed, so it would be unusable, not open.
func TestPolicyCoversEveryRPC(t *testing.T) {
	methods := auth.Methods(&userv1.UserService_ServiceDesc)
	if len(methods) != 6 {
		t.Fatalf("found %d RPCs, want 6", len(methods))
	}
	if err := Policy.Covers(methods); err != nil {
		t.Fatal(err)
	}
}
