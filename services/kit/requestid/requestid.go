// Package requestid carries one id per request through the context, taken
// from the caller when it sent a sane one, so logs of the gateway, the gRPC
// server and downstream services can be joined.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the HTTP header and gRPC metadata key (lower case) of the id.
const Header = "x-request-id"

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the id in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// New returns a random 128-bit id in hex.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// Accept returns the caller's id when it is short and printable, so a
// client cannot stuff logs through it, and a new id otherwise.
func Accept(id string) string {
	if id == "" || len(id) > 128 {
		return New()
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return New()
		}
	}
	return id
}
