package grpcchain

import (
	"context"
	"sync"

	"github.com/msctl/msctl/services/kit/auth"
)

// holder passes the context built by the inner interceptors (which carries
// the authenticated principal) back out to the logging interceptor.
type holder struct {
	mu    sync.Mutex
	inner context.Context
}

type holderKey struct{}

func withHolder(ctx context.Context, h *holder) context.Context {
	return context.WithValue(ctx, holderKey{}, h)
}

// remember records ctx in the holder of the call, if any.
func remember(ctx context.Context) {
	if h, ok := ctx.Value(holderKey{}).(*holder); ok {
		h.mu.Lock()
		h.inner = ctx
		h.mu.Unlock()
	}
}

// ctx returns outer plus the principal the inner context carried.
func (h *holder) ctx(outer context.Context) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inner == nil {
		return outer
	}
	if p, ok := auth.PrincipalFrom(h.inner); ok {
		return auth.WithPrincipal(outer, p)
	}
	return outer
}
