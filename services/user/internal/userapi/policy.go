package userapi

import (
	"github.com/msctl/msctl/services/kit/auth"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// Permissions of the user service.
const (
	PermRead   auth.Permission = "users.read"
	PermWrite  auth.Permission = "users.write"
	PermDelete auth.Permission = "users.delete"
	PermStream auth.Permission = "users.stream"
)

// Policy is the user service's whole RBAC table: which role may do what,
// and what each RPC needs. A test checks every RPC is listed.
var Policy = auth.Policy{
	Roles: map[string][]auth.Permission{
		"admin": {PermRead, PermWrite, PermDelete, PermStream},
		// Other services (order, payment) read users and follow changes.
		"service": {PermRead, PermStream},
		"support": {PermRead, PermWrite},
		"reader":  {PermRead},
	},
	Methods: map[string]auth.Permission{
		userv1.UserService_GetUser_FullMethodName:            PermRead,
		userv1.UserService_ListUsers_FullMethodName:          PermRead,
		userv1.UserService_CreateUser_FullMethodName:         PermWrite,
		userv1.UserService_UpdateUser_FullMethodName:         PermWrite,
		userv1.UserService_DeleteUser_FullMethodName:         PermDelete,
		userv1.UserService_StreamUserActivity_FullMethodName: PermStream,
	},
}
