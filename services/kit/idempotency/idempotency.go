// Package idempotency carries a client's idempotency key for a call that
// creates something: the HTTP convention's Idempotency-Key header, the
// same key as gRPC metadata, and a key made up for a caller that sent
// none, so that a retry of the same request (by the kit's downstream
// client, or by a client repeating what it was told) is recognised
// instead of acting twice. It never decides what a repeated key means;
// the service that stores the key does.
package idempotency

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"
)

const (
	// Header is the HTTP request and response header.
	Header = "Idempotency-Key"
	// MetadataKey is the gRPC metadata the gateway forwards Header as.
	MetadataKey = "idempotency-key"
	// GeneratedHeader carries, from Middleware to the gateway, a key made
	// up for a request that had no Header; the gateway forwards it as
	// GeneratedMetadataKey. A key of the caller's own, in the body or in
	// Header, wins over it.
	GeneratedHeader      = "Idempotency-Key-Generated"
	GeneratedMetadataKey = "idempotency-key-generated"
)

// New returns a fresh key: a UUID, time-ordered so stored keys index well.
func New() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	return uuid.NewString()
}

// FromIncoming returns the key a gRPC caller sent as metadata and the one
// the gateway made up, each "" if absent.
func FromIncoming(ctx context.Context) (sent, generated string) {
	first := func(key string) string {
		if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return first(MetadataKey), first(GeneratedMetadataKey)
}

// Middleware makes up a key (GeneratedHeader) for every POST that has no
// Idempotency-Key header; one a caller sent under GeneratedHeader is
// dropped. The service answers with the key it used, so a caller that
// sent none learns the key to retry with.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(GeneratedHeader)
		if r.Method == http.MethodPost && r.Header.Get(Header) == "" {
			r.Header.Set(GeneratedHeader, New())
		}
		next.ServeHTTP(w, r)
	})
}
