package userclient

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// pages is a fake UserServiceClient serving n users in pages, failing the
// page at failAt (0: never).
type pages struct {
	userv1.UserServiceClient
	n, failAt int
	calls     int
}

func (p *pages) ListUsers(_ context.Context, req *userv1.ListUsersRequest, _ ...grpc.CallOption) (*userv1.ListUsersResponse, error) {
	p.calls++
	if p.calls == p.failAt {
		return nil, status.Error(codes.Unavailable, "down")
	}
	start := 0
	if req.PageToken != "" {
		fmt.Sscanf(req.PageToken, "%d", &start)
	}
	resp := &userv1.ListUsersResponse{}
	for i := start; i < p.n && i < start+int(req.PageSize); i++ {
		resp.Users = append(resp.Users, &userv1.User{Id: fmt.Sprint(i)})
	}
	if start+int(req.PageSize) < p.n {
		resp.NextPageToken = fmt.Sprint(start + int(req.PageSize))
	}
	return resp, nil
}

func TestListUsers(t *testing.T) {
	cases := []struct {
		name             string
		n, failAt, stop  int
		wantUsers, calls int
		wantErr          bool
	}{
		{"empty", 0, 0, 0, 0, 1, false},
		{"exact pages", 6, 0, 0, 6, 2, false},
		{"partial last page", 7, 0, 0, 7, 3, false},
		{"error on the second page is yielded once", 7, 2, 0, 3, 2, true},
		{"break stops fetching", 9, 0, 4, 4, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &pages{n: tc.n, failAt: tc.failAt}
			c := &Client{api: fake}
			got, errs := 0, 0
			for u, err := range c.ListUsers(context.Background(), ListOptions{PageSize: 3}) {
				if err != nil {
					errs++
					if status.Code(err) != codes.Unavailable || u != nil {
						t.Fatalf("yielded %v, %v", u, err)
					}
					continue
				}
				if u.Id != fmt.Sprint(got) {
					t.Fatalf("user %s out of order at %d", u.Id, got)
				}
				got++
				if tc.stop > 0 && got == tc.stop {
					break
				}
			}
			if got != tc.wantUsers || fake.calls != tc.calls || (errs == 1) != tc.wantErr || errs > 1 {
				t.Fatalf("users %d calls %d errors %d; want %d, %d, error %v", got, fake.calls, errs, tc.wantUsers, tc.calls, tc.wantErr)
			}
		})
	}
}
