package paging

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTokensRoundTripAndRefuseOthers(t *testing.T) {
	orders := Cursor{Prefix: "o1:", Method: "ListOrders"}
	users := Cursor{Prefix: "u1:", Method: "ListUsers", Valid: func(id string) error {
		if id != "u-1" {
			return errors.New("bad id")
		}
		return nil
	}}
	if id, err := orders.After(orders.Token("o-9")); err != nil || id != "o-9" {
		t.Fatalf("round trip: %q, %v", id, err)
	}
	if id, err := orders.After(""); err != nil || id != "" {
		t.Fatalf("no token: %q, %v", id, err)
	}
	for name, tc := range map[string]struct {
		c   Cursor
		tok string
	}{
		"another list's token": {orders, users.Token("u-1")},
		"not base64":           {orders, "!!!"},
		"empty id":             {orders, orders.Token("")},
		"id the list rejects":  {users, users.Token("u-2")},
	} {
		if _, err := tc.c.After(tc.tok); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

func TestPage(t *testing.T) {
	c := Cursor{Prefix: "x:"}
	id := func(s string) string { return s }
	rows, next := Page(c, []string{"a", "b", "c"}, 2, id)
	if len(rows) != 2 || next != c.Token("b") {
		t.Fatalf("a full page: %v, %q", rows, next)
	}
	rows, next = Page(c, []string{"a", "b"}, 2, id)
	if len(rows) != 2 || next != "" {
		t.Fatalf("the last page: %v, %q", rows, next)
	}
	if Size(0) != DefaultSize || Size(7) != 7 {
		t.Fatal("Size")
	}
}
