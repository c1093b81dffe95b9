package userapi

import (
	"testing"

	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// TestPolicyCoversEveryRPC stops a new RPC from shipping without a
// permission: the policy fails closed, so it would be unusable, not open.
func TestPolicyCoversEveryRPC(t *testing.T) {
	var methods []string
	sd := userv1.UserService_ServiceDesc
	for _, m := range sd.Methods {
		methods = append(methods, "/"+sd.ServiceName+"/"+m.MethodName)
	}
	for _, s := range sd.Streams {
		methods = append(methods, "/"+sd.ServiceName+"/"+s.StreamName)
	}
	if len(methods) != 6 {
		t.Fatalf("found %d RPCs, want 6", len(methods))
	}
	if err := Policy.Covers(methods); err != nil {
		t.Fatal(err)
	}
}
