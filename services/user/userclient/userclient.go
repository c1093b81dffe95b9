// Package userclient is the Go client of the user service, for the other
// services and msctl's tests. It wraps the generated stub with the calls
// people actually make, most usefully ListUsers, which pages transparently.
//
// Connection management (one connection per dependency, breakers, retries)
// is the caller's, through services/kit/downstream; this package takes any
// grpc.ClientConnInterface.
package userclient

import (
	"context"
	"iter"

	"google.golang.org/grpc"

	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// Idempotent lists the methods a retrying client may repeat safely.
var Idempotent = map[string]bool{
	userv1.UserService_GetUser_FullMethodName:   true,
	userv1.UserService_ListUsers_FullMethodName: true,
	// UpdateUser and DeleteUser carry an expected version, so a repeat of a
	// call that did land fails with Aborted instead of changing twice;
	// CreateUser is not safe to repeat (it could succeed twice with a
	// different email normalisation in between).
}

// Client calls the user service.
type Client struct {
	api userv1.UserServiceClient
}

// New returns a Client over conn.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{api: userv1.NewUserServiceClient(conn)}
}

// API is the generated client, for calls this package does not wrap.
func (c *Client) API() userv1.UserServiceClient { return c.api }

// Get returns one user.
func (c *Client) Get(ctx context.Context, id string) (*userv1.User, error) {
	return c.api.GetUser(ctx, &userv1.GetUserRequest{Id: id})
}

// Create registers a user.
func (c *Client) Create(ctx context.Context, email, fullName string, prefs *userv1.Preferences) (*userv1.User, error) {
	return c.api.CreateUser(ctx, &userv1.CreateUserRequest{Email: email, FullName: fullName, Preferences: prefs})
}

// ListOptions filter ListUsers.
type ListOptions struct {
	// PageSize is how many users each underlying call fetches (0: the
	// server's default).
	PageSize int32
	Status   userv1.Status
}

// ListUsers yields every user, fetching pages as the loop needs them.
// A failed page is yielded as (nil, err) once and ends the sequence;
// breaking out of the loop stops fetching.
//
//	for u, err := range client.ListUsers(ctx, userclient.ListOptions{}) {
//		if err != nil { return err }
//		...
//	}
func (c *Client) ListUsers(ctx context.Context, opts ListOptions) iter.Seq2[*userv1.User, error] {
	return func(yield func(*userv1.User, error) bool) {
		token := ""
		for {
			resp, err := c.api.ListUsers(ctx, &userv1.ListUsersRequest{PageSize: opts.PageSize, PageToken: token, Status: opts.Status})
			if err != nil {
				yield(nil, err)
				return
			}
			for _, u := range resp.GetUsers() {
				if !yield(u, nil) {
					return
				}
			}
			token = resp.GetNextPageToken()
			if token == "" {
				return
			}
		}
	}
}
