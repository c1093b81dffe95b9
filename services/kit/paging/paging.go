// Package paging is how the services' list RPCs page: an opaque token
// naming the last id of the previous page, and one row fetched beyond the
// page to tell whether another follows. It knows nothing of any store.
package paging

import (
	"encoding/base64"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultSize applies when a request sets no page size.
const DefaultSize = 50

// Cursor is one list's token format.
type Cursor struct {
	// Prefix is part of every token, so another list's token is refused.
	Prefix string
	// Method names the list RPC in the error for a bad token.
	Method string
	// Valid, if set, also checks the id a token carries.
	Valid func(id string) error
}

// Token encodes the cursor after id; opaque to clients.
func (c Cursor) Token(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Prefix + id))
}

// After returns the id a request's page starts after: "" for no token,
// an INVALID_ARGUMENT status for a token this list did not issue.
func (c Cursor) After(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	id, ok := strings.CutPrefix(string(raw), c.Prefix)
	if err != nil || !ok || id == "" || c.Valid != nil && c.Valid(id) != nil {
		return "", status.Errorf(codes.InvalidArgument, "page_token: not a token from a previous %s response", c.Method)
	}
	return id, nil
}

// Size is the page size a request asked for, DefaultSize for none; the
// store is asked for one row more.
func Size(requested int32) int {
	if requested == 0 {
		return DefaultSize
	}
	return int(requested)
}

// Page cuts rows, fetched with a limit of size+1, to the page and returns
// the next page's token, "" on the last page.
func Page[T any](c Cursor, rows []T, size int, id func(T) string) ([]T, string) {
	if len(rows) <= size {
		return rows, ""
	}
	rows = rows[:size]
	return rows, c.Token(id(rows[size-1]))
}
